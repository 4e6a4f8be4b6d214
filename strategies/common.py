"""Pieces shared by the strategies that fine-tune a sequence-classification model."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.context import RunContext
from bench.tokens import Encoded, encode
from bench.training import TrainSettings, count_params, fit, pad_id_of, predict
from strategies.base import StrategyResult


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
    from transformers.utils import logging as hf_logging

    labels = ctx.data.labels
    torch.manual_seed(ctx.seed)  # the new head's initialization is part of the run
    # transformers prints a load-report table for the head the checkpoint lacks: expected here,
    # so one line of ours replaces it (a real load problem still raises)
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={n: i for i, n in enumerate(labels)}, **kwargs)
    finally:
        hf_logging.set_verbosity(level)
    model.config.pad_token_id = tokenizer.pad_token_id
    ctx.tracker.log(f"{type(model).__name__}: new {len(labels)}-class head initialized with seed {ctx.seed}")
    return model


def train_and_evaluate(ctx: RunContext, model, tokenizer, p, extra_cost=None) -> StrategyResult:
    """The sequence every fine-tuning strategy shares: the untrained model (random head) on the
    eval split as the baseline, training with per-epoch validation (best epoch kept), then the
    trained model on the eval split. `p` carries max_length and the TrainSettings fields;
    `extra_cost(model)` adds strategy-specific cost figures (e.g. adapter size)."""
    data = encode_splits(ctx, tokenizer, p.max_length)
    pad = pad_id_of(tokenizer)
    # its own phase, so the eval phase's time matches the eval tokens counted (tokens/s and MFU)
    with ctx.tracker.phase("baseline"):
        baseline, _ = predict(model, data.eval, ctx, pad, desc="baseline (untrained head)", count_as=None)
    settings = TrainSettings(p.lr, p.epochs, p.batch_size, p.weight_decay, p.warmup_ratio, p.class_weights)
    fit(model, data.train, data.val, ctx, settings, pad, len(ctx.data.labels))
    with ctx.tracker.phase("eval"):
        preds, _ = predict(model, data.eval, ctx, pad)
    trainable, total = count_params(model)
    return StrategyResult(preds.tolist(), trainable, total, baseline_predictions=baseline.tolist(),
                          extra_cost=extra_cost(model) if extra_cost else {})
