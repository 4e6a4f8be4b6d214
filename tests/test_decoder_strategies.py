"""zero-shot, lora and qlora on tiny random models (offline, seconds): the shared-prompt KV-cache
scoring equals scoring full sequences, calibration and demonstrations behave, adapters and the head
are the only things trained, 4-bit layers are really 4-bit, and qlora's pre-load check names
bitsandbytes when it cannot run."""

from __future__ import annotations

import importlib.metadata
import sys

import numpy as np
import pytest
import torch

from bench.engine.context import RunContext
from bench.data.task import Split, TaskData
from bench.core.errors import BenchError
from bench.core.params import validate_params
from bench.engine.models import ModelRef
from bench.engine.trackers import Tracker
from strategies.common import load_classifier, load_tokenizer
from strategies.lora import LoRA
from strategies.peft_common import (LoRAParams, add_lora, classifier_head_names, default_target_modules)
from strategies.qlora import QLoRA, QLoRAParams, load_4bit_classifier, prepare_for_training
from strategies.zero_shot import (CUSTOM_ANSWER_PREFIX, TEMPLATES, LabelScorer, PromptBuilder, ZeroShot,
                                  ZeroShotParams, calibrate, content_free_prior, draw_demonstrations,
                                  resolve_template, verbalizer_list)

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


@pytest.fixture(scope="module")
def task() -> TaskData:
    rng = np.random.default_rng(0)
    return TaskData("tiny-topics", LABELS, make_split(8, rng), make_split(4, rng), make_split(4, rng))


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


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def context(task, folder, architecture="decoder", seed=0) -> RunContext:
    model = ModelRef(name="tiny", source=str(folder), provenance="test", architecture=architecture)
    return RunContext(task, model, seed, "cpu", Tracker(quiet=True))


# ---------------------------------------------------------------- zero-shot


def full_sequence_scores(model, prompt_ids, label_ids):
    """The slow reference: each label appended to the whole prompt, run from scratch."""
    out = []
    with torch.no_grad():
        for lab in label_ids:
            logp = torch.log_softmax(model(torch.tensor([prompt_ids + lab])).logits[0].float(), -1)
            out.append(sum(logp[len(prompt_ids) - 1 + j, t].item() for j, t in enumerate(lab)))
    return np.array(out)


@pytest.mark.parametrize("chat", [True, False])
def test_shared_prompt_kv_cache_scores_equal_full_sequences(tmp_path, task, chat):
    from transformers import AutoModelForCausalLM

    folder = save_tiny_llama(tmp_path, chat=chat)
    tok = load_tokenizer(str(folder))
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    # multi-token labels of different lengths, so the batched label pass pads and masks
    words = ["team match goal", "chip", "market shares"]
    demos = draw_demonstrations(task.train, 2, seed=0)
    builder = PromptBuilder(tok, *TEMPLATES["question"], words, demos, max_length=8)
    prompts = builder.encode_all(task.test.texts[:3] + [""])
    for prefix in (builder.shared_prefix_ids(), []):  # with the run-wide prefix cache, and without
        scorer = LabelScorer(model, builder.label_ids(), prefix)
        for ids in prompts:
            np.testing.assert_allclose(scorer.score(ids), full_sequence_scores(model, ids, builder.label_ids()),
                                       atol=1e-4)
    assert len(builder.shared_prefix_ids()) > 10  # demonstrations and instructions are shared


def test_texts_are_truncated_to_max_length(task, tiny_llama):
    tok = load_tokenizer(str(tiny_llama))
    builder = PromptBuilder(tok, "{text}", "Category:", LABELS, [], max_length=3)
    assert [len(tok(t, add_special_tokens=False)["input_ids"]) for t in builder.truncate(task.test.texts)] == \
        [3] * len(task.test)


def test_prompt_ends_with_the_answer_prefix_and_labels_follow_a_space(task, tiny_llama):
    assert resolve_template("news", None) == TEMPLATES["news"]
    assert resolve_template("news", "Label:") == (TEMPLATES["news"][0], "Label:")
    assert resolve_template("Text: {text}", None) == ("Text: {text}", CUSTOM_ANSWER_PREFIX)
    tok = load_tokenizer(str(tiny_llama))
    builder = PromptBuilder(tok, "Text: {text}", "Answer:", LABELS, [(task.train.texts[0], 1)], max_length=64)
    prompt = builder.render("goal team")
    assert prompt.endswith("<|im_start|>assistant\nAnswer:")  # through the chat template
    assert "<|im_start|>assistant\nAnswer: tech<|im_end|>" in prompt  # the demonstration, answered
    assert builder.label_ids() == [tok(" " + w, add_special_tokens=False)["input_ids"] for w in LABELS]


def test_calibration_removes_the_content_free_bias():
    # the model prefers label 0 for everything, content-free texts included
    scores = np.log(np.array([[0.6, 0.3, 0.1], [0.9, 0.05, 0.05]]))
    content_free = np.log(np.array([[0.7, 0.2, 0.1], [0.8, 0.1, 0.1]]))
    assert scores.argmax(1).tolist() == [0, 0]
    prior = content_free_prior(content_free)
    np.testing.assert_allclose(prior, [0.75, 0.15, 0.1])
    # 0.6/0.75 < 0.3/0.15: the first example's evidence is for label 1; the second stays label 0
    assert calibrate(scores, prior).argmax(1).tolist() == [1, 0]
    # a flat prior changes nothing
    assert calibrate(scores, np.full(3, 1 / 3)).argmax(1).tolist() == [0, 0]


def test_demonstrations_are_seeded_and_cover_every_class_first(task):
    first = draw_demonstrations(task.train, 4, seed=3)
    assert first == draw_demonstrations(task.train, 4, seed=3)
    assert first != draw_demonstrations(task.train, 4, seed=4)
    assert sorted(y for _, y in first[:3]) == [0, 1, 2]
    assert all(text in task.train.texts for text, _ in first)
    assert draw_demonstrations(task.train, 0, seed=0) == []
    with pytest.raises(BenchError, match="k_shot"):
        draw_demonstrations(task.train, len(task.train) + 1, seed=0)


def test_verbalizers_must_name_every_label_once():
    assert verbalizer_list(LABELS, None) == LABELS
    assert verbalizer_list(LABELS, {"sports": "sport", "tech": "technology", "business": "money"}) == \
        ["sport", "technology", "money"]
    with pytest.raises(BenchError, match="missing"):
        verbalizer_list(LABELS, {"sports": "sport"})
    with pytest.raises(BenchError, match="repeat"):
        verbalizer_list(LABELS, {"sports": "x", "tech": "x", "business": "y"})


def test_zero_shot_run(task, tiny_llama):
    ctx = context(task, tiny_llama)
    result = ZeroShot().run(ctx, ZeroShotParams(k_shot=2, max_length=16))
    assert len(result.predictions) == len(task.test)
    assert set(result.predictions) <= {0, 1, 2}
    assert result.trainable_params == 0 and result.baseline_predictions is None
    from transformers import AutoModelForCausalLM

    assert result.total_params == AutoModelForCausalLM.from_pretrained(tiny_llama).num_parameters()
    assert ctx.tracker.counters["eval_examples"] == len(task.test)
    assert ctx.tracker.counters["eval_tokens"] > len(task.test) * 16
    assert {"load", "prepare", "eval"} <= set(ctx.tracker.time_s)


def test_zero_shot_checks_before_loading():
    zs = ZeroShot()
    encoder = ModelRef(name="minilm", source="/x", provenance="test", architecture="encoder")
    with pytest.raises(BenchError, match="decoder"):
        zs.check(ZeroShotParams(), encoder)
    decoder = ModelRef(name="tiny", source="/x", provenance="test", architecture="decoder")
    with pytest.raises(BenchError, match="template"):
        zs.check(ZeroShotParams(template="no placeholder here"), decoder)
    zs.check(ZeroShotParams(template="Text: {text}\nTopic ({labels}):"), decoder)


# ---------------------------------------------------------------- lora / qlora


def assert_only_adapters_and_head_train(peft_model, head: str):
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or f"{head}.modules_to_save" in n for n in trainable), trainable
    assert any(f"{head}.modules_to_save" in n for n in trainable)  # the head is trained in full
    assert sum(p.numel() for n, p in peft_model.named_parameters() if n in trainable) == \
        peft_model.get_nb_trainable_parameters()[0]
    peft_model.train()
    ids = torch.randint(5, 40, (2, 7))
    peft_model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.sum().backward()
    with_grad = {n for n, p in peft_model.named_parameters() if p.grad is not None}
    assert with_grad == trainable


def test_target_modules_and_head_are_detected(task, tiny_llama, tiny_bert):
    llama = load_classifier(str(tiny_llama), context(task, tiny_llama), load_tokenizer(str(tiny_llama)))
    assert default_target_modules(llama) == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert classifier_head_names(llama) == ["score"]
    bert = load_classifier(str(tiny_bert), context(task, tiny_bert, "encoder"), load_tokenizer(str(tiny_bert)))
    assert default_target_modules(bert) == ["query", "key", "value"]
    assert classifier_head_names(bert) == ["classifier"]
    assert_only_adapters_and_head_train(add_lora(bert, LoRAParams(r=4), log=lambda _: None), "classifier")


def test_lora_run_on_a_decoder(task, tiny_llama, monkeypatch):
    import bench.engine.training

    swaps = []
    real = bench.engine.training.use_fast_dropout
    monkeypatch.setattr(bench.engine.training, "use_fast_dropout", lambda m: swaps.append(real(m)) or swaps[-1])
    ctx = context(task, tiny_llama)
    result = LoRA().run(ctx, LoRAParams(r=4, alpha=8, epochs=2, batch_size=8, max_length=16))
    assert swaps and swaps[0][0] >= 2  # training on the CPU drew the adapters' dropout masks with numpy
    assert len(result.predictions) == len(result.baseline_predictions) == len(task.test)
    assert 0 < result.trainable_params < result.total_params
    assert result.extra_cost["adapter_bytes"] > result.trainable_params * 4  # fp32 weights plus config
    assert [e["epoch"] for e in ctx.tracker.history] == [1, 2]


def test_lora_gradients_reach_only_adapters_and_head(task, tiny_llama):
    ctx = context(task, tiny_llama)
    model = load_classifier(str(tiny_llama), ctx, load_tokenizer(str(tiny_llama)))
    assert_only_adapters_and_head_train(add_lora(model, LoRAParams(r=4), log=lambda _: None), "score")


def test_qlora_base_is_4bit_and_only_adapters_and_head_train(task, tiny_llama):
    import bitsandbytes as bnb

    ctx = context(task, tiny_llama)
    model = load_4bit_classifier(ctx, str(tiny_llama), load_tokenizer(str(tiny_llama)))
    q_proj = model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj, bnb.nn.Linear4bit)
    assert q_proj.weight.dtype == torch.uint8 and q_proj.weight.quant_type == "nf4"
    assert q_proj.weight.numel() == 64 * 64 // 2  # two 4-bit values per byte
    assert q_proj.weight.quant_state.nested  # double quantization
    assert type(model.score) is torch.nn.Linear and model.score.weight.dtype == torch.float32
    peft_model = add_lora(prepare_for_training(model, gradient_checkpointing=True), LoRAParams(r=4),
                          log=lambda _: None)
    assert_only_adapters_and_head_train(peft_model, "score")
    trainable, total = peft_model.get_nb_trainable_parameters()
    full = load_classifier(str(tiny_llama), ctx, load_tokenizer(str(tiny_llama)))
    # 4-bit weights counted by their real element count; peft's total holds the base (its frozen
    # original head included) plus the adapters and the head's trained copy
    assert total == full.num_parameters() + trainable


def test_qlora_run(task, tiny_llama):
    ctx = context(task, tiny_llama)
    result = QLoRA().run(ctx, QLoRAParams(r=4, alpha=8, epochs=1, batch_size=8, max_length=16))
    assert len(result.predictions) == len(result.baseline_predictions) == len(task.test)
    assert 0 < result.trainable_params < result.total_params
    assert result.extra_cost["adapter_bytes"] > 0
    assert result.extra_cost["quantized_footprint_mb"] > 0


def test_qlora_check_names_bitsandbytes_when_it_cannot_run(monkeypatch):
    qlora, model, params = QLoRA(), ModelRef("tiny", "/x", "test", "decoder"), QLoRAParams()
    qlora.check(params, model)  # installed here

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # as if not importable
    with pytest.raises(BenchError, match="bitsandbytes.*not installed"):
        qlora.check(params, model)
    monkeypatch.delitem(sys.modules, "bitsandbytes")

    real_version = importlib.metadata.version

    def version(name, old=None):
        if name != "bitsandbytes":
            return real_version(name)
        if old is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return old

    monkeypatch.setattr(importlib.metadata, "version", version)
    with pytest.raises(BenchError, match="bitsandbytes.*not installed"):
        qlora.check(params, model)
    monkeypatch.setattr(importlib.metadata, "version", lambda name: version(name, old="0.42.0"))
    with pytest.raises(BenchError, match=r"bitsandbytes>=0\.47.*0\.42\.0"):
        qlora.check(params, model)


def test_lora_params_are_checked_before_loading():
    model = ModelRef("tiny", "/x", "test", "decoder")
    with pytest.raises(BenchError, match="parameter 'r' of 'lora' is 0, out of range: .*>= 1"):  # the field's bounds
        validate_params(LoRA(), {"r": 0})
    with pytest.raises(BenchError, match="target_modules"):
        QLoRA().check(QLoRAParams(target_modules=[]), model)
    LoRA().check(LoRAParams(target_modules="q_proj,v_proj"), model)
