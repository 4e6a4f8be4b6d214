"""Pieces shared by the strategies that fine-tune a sequence-classification model."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.context import RunContext
from bench.tokens import Encoded, encode


@dataclass
class EncodedSplits:
    train: Encoded
    val: Encoded
    eval: Encoded


def load_tokenizer(path: str, decoder: bool | None = None):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:  # Llama-style tokenizers ship without one
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    return tok


def encode_splits(ctx: RunContext, tokenizer, max_length: int) -> EncodedSplits:
    d = ctx.data
    with ctx.tracker.phase("prepare"):
        return EncodedSplits(encode(tokenizer, d.train.texts, d.train.labels, max_length),
                             encode(tokenizer, d.val.texts, d.val.labels, max_length),
                             encode(tokenizer, ctx.eval.texts, ctx.eval.labels, max_length))


def load_classifier(path: str, ctx: RunContext, tokenizer, **kwargs):
    """AutoModelForSequenceClassification with a fresh head of len(labels) classes, in fp32
    (autocast does the bf16 math); the pad id is set so decoders find each row's last token."""
    from transformers import AutoModelForSequenceClassification

    labels = ctx.data.labels
    torch.manual_seed(ctx.seed)  # the new head's initialization is part of the run
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)}, **kwargs)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model
