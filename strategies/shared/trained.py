"""Fine-tuning a sequence-classification model on the shared training loop: loading the model with a
fresh head, the mixed-precision policy, the baseline-train-evaluate sequence, and `TrainedStrategy`,
whose subclasses only say how to build their model."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, ContextManager

from bench.engine.context import RunContext
from bench.engine.tokens import Encoded, encode
from bench.engine.training import TrainParams, classifier_objective, count_params, fit, pad_id_of, predict
from strategies.shared.base import Served, Strategy, StrategyResult


@dataclass
class Built:
    """What `TrainedStrategy.build` returns: the model on its device, ready to train, its tokenizer,
    and cost figures measured while building (e.g. a quantized base's footprint)."""

    model: Any
    tokenizer: Any
    cost: dict = field(default_factory=dict)


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


def load_classifier(path: str, ctx: RunContext, tokenizer, dtype=None, **kwargs):
    """AutoModelForSequenceClassification with a fresh head of len(labels) classes, loaded in
    `dtype` (fp32 unless told: transformers 5 would otherwise keep a bf16 checkpoint, every real
    Llama 3, in bf16), straight onto a CUDA device (no host copy of the weights); the pad id is set
    so decoders find each row's last token. What trains is cast to fp32 by `keep_trainable_fp32`."""
    import torch
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    kwargs["dtype"] = torch.float32 if dtype is None else dtype
    if ctx.device.startswith("cuda"):
        kwargs.setdefault("device_map", {"": ctx.device})
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


def classifier_head_names(model) -> list[str]:
    """Top-level modules with weights outside the backbone: `score` on Llama-like models,
    `classifier` on BERT-like ones. They are trained in full and never quantized."""
    base = model.base_model_prefix
    return [name for name, child in model.named_children()
            if name != base and next(child.parameters(), None) is not None]


def keep_trainable_fp32(model) -> int:
    """Cast every trainable parameter that is not fp32 to fp32, in place; returns how many were cast.

    The mixed-precision policy of every trained strategy: the weights AdamW updates (heads, LoRA
    adapters, all of full-ft) stay fp32 and bf16 autocast does the math. An update smaller than
    half a bf16 ulp rounds away (tests/unit/engine/test_precision.py shows it on a bf16 head). peft's
    modules_to_save copies the head in the base's dtype, hence the cast here."""
    import torch

    cast = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
            cast += 1
    return cast


def dtype_name(param) -> str:
    if type(param).__name__ == "Params4bit":  # bitsandbytes packs two 4-bit values per uint8
        return f"nf4 (packed {str(param.dtype).removeprefix('torch.')})"
    return str(param.dtype).removeprefix("torch.")


def precision_policy(model, bf16: bool) -> dict:
    """What the record states about numerics: the autocast dtype, and parameter counts by dtype of
    what trains and of what stays frozen (read off the model, not assumed)."""
    trainable: dict[str, int] = {}
    frozen: dict[str, int] = {}
    for param in model.parameters():
        side = trainable if param.requires_grad else frozen
        side[dtype_name(param)] = side.get(dtype_name(param), 0) + param.numel()
    return {"compute": "bf16 autocast" if bf16 else "fp32", "trainable": trainable, "frozen": frozen}


def train_and_evaluate(ctx: RunContext, model, tokenizer, p: TrainParams, extra_cost=None) -> StrategyResult:
    """The sequence every fine-tuning strategy shares: the untrained model (random head) on the
    eval split as the baseline, training with per-epoch validation (best epoch kept), then the
    trained model on the eval split. `extra_cost(model)` adds strategy-specific cost figures
    (e.g. the adapter's size)."""
    from bench.engine.device import use_bf16

    cast = keep_trainable_fp32(model)
    if cast:
        ctx.tracker.log(f"{cast} trainable tensor(s) cast to fp32 (autocast does the bf16 math)")
    policy = precision_policy(model, use_bf16(ctx.device, ctx.precision))
    data = encode_splits(ctx, tokenizer, p.max_length)
    pad = pad_id_of(tokenizer)
    # its own phase, so the eval phase's time matches the eval tokens counted (tokens/s and MFU)
    with ctx.tracker.phase("baseline"):
        baseline, _ = predict(model, data.eval, ctx, pad, desc="baseline (untrained head)", count_as=None)
    fit(model, classifier_objective(data.train, data.val, ctx, p, pad), ctx, p)
    with ctx.tracker.phase("eval"):
        preds, _ = predict(model, data.eval, ctx, pad)
    trainable, total = count_params(model)
    cost = {"precision": policy, **(extra_cost(model) if extra_cost else {})}
    return StrategyResult(preds.tolist(), trainable, total, baseline_predictions=baseline.tolist(),
                          extra_cost=cost)


class TrainedStrategy(Strategy):
    """A strategy that trains a sequence-classification model with the shared loop: it says how to
    build the model (`build`, timed as "load"); the harness trains and evaluates it. `bench perf`'s
    profile leg builds it the same way, so what it profiles is what runs."""

    def build(self, ctx: RunContext, p) -> Built:
        """The model on ctx.device, ready to train, and its tokenizer."""
        raise NotImplementedError

    def extra_cost(self, model) -> dict:
        """Cost figures of this strategy's own (e.g. the adapter's size), measured after training."""
        return {}

    def training(self, model, p) -> ContextManager:
        """A context held around training and evaluation, for what a method adds to the shared loop
        (adalora's optimizer-step hooks, lora-8bit's log filter); none by default."""
        return contextlib.nullcontext()

    def served(self, ctx: RunContext, built: Built, p) -> Served | None:
        """The trained model as served (StrategyResult.served); None where a subclass builds none."""
        return None

    def run(self, ctx: RunContext, p) -> StrategyResult:
        with ctx.tracker.phase("load"):
            built = self.build(ctx, p)
        with self.training(built.model, p):
            result = train_and_evaluate(ctx, built.model, built.tokenizer, p,
                                        extra_cost=lambda model: {**built.cost, **self.extra_cost(model)})
        result.served = self.served(ctx, built, p)
        return result
