"""Tiny random models and tasks built in seconds, offline: a word-level Llama with a chat
template, a three-topic task, and the RunContext a strategy receives."""

from __future__ import annotations

import numpy as np
import torch

from bench.data.task import Split, TaskData
from bench.engine.context import RunContext
from bench.engine.models import ModelRef
from bench.engine.trackers import Tracker
from strategies.zero_shot import (
    TEMPLATES,
)

LABELS = ["sports", "tech", "business"]


TOPIC_WORDS = {
    "sports": "team match goal coach league season player win score cup",
    "tech": "software chip phone computer code internet data robot app cloud",
    "business": "market shares profit bank company stocks deal price trade sales",
}


FILLER = "the a of in on and said today new year people after over"


CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


TINY = dict(num_hidden_layers=2, intermediate_size=64, max_position_embeddings=1024)


def make_split(n_per_class: int, rng: np.random.Generator) -> Split:
    texts, labels = [], []
    for y, label in enumerate(LABELS):
        for _ in range(n_per_class):
            words = rng.choice(TOPIC_WORDS[label].split(), 6).tolist() + rng.choice(FILLER.split(), 4).tolist()
            texts.append(" ".join(rng.permutation(words)))
            labels.append(y)
    order = rng.permutation(len(texts))
    return Split([texts[i] for i in order], np.asarray(labels, dtype=np.int64)[order],
                 [str(i) for i in order])


def word_level_tokenizer(chat: bool):
    """A whitespace word-level tokenizer over the test's words (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "<|im_start|>", "<|im_end|>"]
    prompts = " ".join(" ".join(preset) for preset in TEMPLATES.values())
    corpus = " ".join([*TOPIC_WORDS.values(), FILLER, prompts, "N/A [MASK] Answer: system user assistant"])
    words = sorted({piece for piece, _ in pre_tokenizers.Whitespace().pre_tokenize_str(corpus)})
    vocab = {tok: i for i, tok in enumerate(specials + words)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()  # special tokens are split out before this
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>",
                                  bos_token="<s>", eos_token="<|im_end|>",
                                  additional_special_tokens=["<|im_start|>"])
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    return tok


def save_tiny_llama(folder, chat: bool = True):
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = word_level_tokenizer(chat)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                      pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, **TINY)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def context(task, folder, architecture="decoder", seed=0) -> RunContext:
    model = ModelRef(name="tiny", source=str(folder), provenance="test", architecture=architecture)
    return RunContext(task, model, seed, "cpu", Tracker(quiet=True))


def tiny_task(train: int = 8, val: int = 4, test: int = 4, seed: int = 0) -> TaskData:
    rng = np.random.default_rng(seed)
    return TaskData("tiny-topics", LABELS, make_split(train, rng), make_split(val, rng), make_split(test, rng))


def add_lora(model, p):
    """LoRA placed on `model` as the lora strategy places it (head in full), quietly."""
    from strategies.shared.adapters import place_adapter
    from strategies.shared.lora_adapters import lora_config

    return place_adapter(model, lora_config(p, model), "lora")
