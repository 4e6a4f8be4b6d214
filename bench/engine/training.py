"""The training and evaluation loop shared by every trained strategy (full-ft, lora, qlora, the
PEFT family), the profile leg of `bench perf` and feature extraction: one hyperparameter base
(`TrainParams`), one training loop (`fit`, over an `Objective`: a classifier's cross-entropy or a
strategy's own loss), one optimizer step (`optimizer_step`), one length-sorted forward loop
(`forward_sorted`), one best-epoch keeper (`BestEpoch`). Length-grouped batches with dynamic
padding, bf16 autocast where the device has it, optional class-weighted loss, validation every
epoch with the best epoch kept.

torch is imported where it is used, not with this module: the strategies' parameters (TrainParams,
`retuned`) live here, and the CLI checks them before any run needs torch."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from bench.engine.context import RunContext
from bench.engine.device import autocast, use_bf16
from bench.core.errors import Diverged
from bench.core.params import param
from bench.engine.kernels import SpeedParams
from bench.engine.tokens import Encoded

if TYPE_CHECKING:
    import torch

MEGABATCH = 50  # batches per length-sorted chunk: similar lengths together, order still random
EVAL_BATCH_SIZE = 32
MAX_GRAD_NORM = 1.0


@dataclass
class TrainParams(SpeedParams):
    """The hyperparameters every trained strategy shares, declared once with their bounds. A
    strategy's Params subclasses this and gives its own measured defaults with `retuned`."""

    lr: float = param(1e-4, gt=0, le=1)
    epochs: int = param(1, ge=1)
    batch_size: int = param(8, ge=1)
    max_length: int = param(128, ge=2)  # tokens per text; longer texts are truncated
    weight_decay: float = param(0.01, ge=0, le=1)
    warmup_ratio: float = param(0.1, ge=0, le=1)
    class_weights: bool = False  # loss weighted by inverse class frequency (imbalanced data)


def retuned(name: str, default: Any):
    """TrainParams' field `name` with another default and the same bounds (for a subclass)."""
    return field(default=default, metadata=TrainParams.__dataclass_fields__[name].metadata)


def pad_batch(rows: list[list[int]], pad_id: int, device: str) -> dict[str, torch.Tensor]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):  # right padding; HF's seq-cls heads find the last real token
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}


def train_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle, sort each chunk of MEGABATCH batches by length, cut into batches, shuffle those:
    far less padding than random batches, still a fresh order every epoch."""
    order = rng.permutation(len(lengths))
    chunk = batch_size * MEGABATCH
    batches = []
    for s in range(0, len(order), chunk):
        part = order[s: s + chunk]
        part = part[np.argsort(-lengths[part], kind="stable")]
        batches += [part[i: i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def token_budget_batches(lengths: np.ndarray, max_tokens: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches by a token budget (a GPU's work per step is its padded tokens, not its rows): shuffle,
    sort each chunk by length (longest first), cut each batch where rows x its longest row would pass
    `max_tokens`, shuffle the batches. Every row exactly once; a row longer than the budget on its own
    is a batch of one (max_length bounds it)."""
    order = rng.permutation(len(lengths))
    if not len(order):
        return []
    rows_per_batch = max(1, max_tokens // max(1, int(np.ceil(lengths.mean()))))
    chunk = rows_per_batch * MEGABATCH
    batches = []
    for s in range(0, len(order), chunk):
        part = order[s: s + chunk]
        part = part[np.argsort(-lengths[part], kind="stable")]
        start = 0
        while start < len(part):
            take = max(1, max_tokens // max(1, int(lengths[part[start]])))  # the first row is the longest
            batches.append(part[start: start + take])
            start += take
    return [batches[i] for i in rng.permutation(len(batches))]


def pad_id_of(tokenizer) -> int:
    pid = tokenizer.pad_token_id
    if pid is None:
        pid = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    return int(pid)


def forward_sorted(model, data: Encoded, ctx: RunContext, pad_id: int, read: Callable[[Any, dict], torch.Tensor],
                   batch_size: int = EVAL_BATCH_SIZE, desc: str = "evaluating",
                   count_as: str | None = "eval") -> np.ndarray:
    """Every row through `model` in length-sorted batches (each pads little), under autocast where
    the device has bf16; `read(output, batch)` turns the model's output into one row of floats per
    example. Rows come back in `data`'s order; `count_as` names the token counters (FLOPs, MFU)."""
    import torch

    was_training = model.training
    model.eval()
    bf16 = use_bf16(ctx.device, ctx.precision)
    lengths = data.lengths()
    order = np.argsort(-lengths, kind="stable")
    out = None
    bar = ctx.tracker.progress(total=len(data), desc=desc, unit="ex")
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            idx = order[s: s + batch_size]
            batch = pad_batch([data.input_ids[i] for i in idx], pad_id, ctx.device)
            with autocast(ctx.device, bf16):
                rows = read(model(**batch), batch).float().cpu().numpy()
            if out is None:
                out = np.empty((len(data), rows.shape[1]), dtype=np.float32)
            out[idx] = rows
            bar.update(len(idx))
    bar.close()
    if count_as:
        ctx.tracker.count(f"{count_as}_examples", len(data))
        ctx.tracker.count(f"{count_as}_tokens", int(lengths.sum()))
    model.train(was_training)
    return out if out is not None else np.empty((0, 0), dtype=np.float32)


def predict(model, data: Encoded, ctx: RunContext, pad_id: int, batch_size: int = EVAL_BATCH_SIZE,
            desc: str = "evaluating", weights: torch.Tensor | None = None,
            count_as: str | None = "eval") -> tuple[np.ndarray, float]:
    """Class ids and mean loss of a sequence-classification model."""
    import torch
    import torch.nn.functional as F

    logits = forward_sorted(model, data, ctx, pad_id, lambda out, batch: out.logits, batch_size, desc, count_as)
    if not len(data):
        return np.empty(0, dtype=np.int64), 0.0
    w = weights.cpu() if weights is not None else None
    labels = torch.tensor(np.asarray(data.labels, dtype=np.int64))  # a copy: cached labels are read-only
    loss = F.cross_entropy(torch.from_numpy(logits), labels, weight=w, reduction="sum").item()
    return logits.argmax(-1).astype(np.int64), loss / len(data)


def validation_figures(labels: np.ndarray, pred: np.ndarray, loss: float) -> dict[str, float]:
    """The validation part of a history entry (the curves, the pruner, the best epoch)."""
    from sklearn.metrics import balanced_accuracy_score

    return {"val_loss": loss, "val_accuracy": float((pred == labels).mean()),
            "val_balanced_accuracy": float(balanced_accuracy_score(labels, pred))}


class BestEpoch:
    """The trainable weights of the best epoch so far, by validation accuracy, then lower loss."""

    def __init__(self, model):
        self.model, self.key, self.state = model, None, None

    def offer(self, entry: dict) -> None:
        """Keep the weights if this epoch's entry beats the best; marks the entry `best`."""
        key = (entry["val_accuracy"], -entry["val_loss"])
        if self.key is None or key > self.key:
            self.key = key
            self.state = {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}
            entry["best"] = True

    def restore(self) -> None:
        import torch

        if self.state is None:
            return
        with torch.no_grad():
            params = dict(self.model.named_parameters())
            for n, v in self.state.items():
                params[n].copy_(v)


def make_optimizer(model, lr: float, weight_decay: float) -> tuple[torch.optim.Optimizer, list[torch.Tensor]]:
    """AdamW over the trainable parameters (no weight decay on biases and norms), and that list.

    The fused implementation (one kernel per parameter instead of a dozen elementwise passes; the
    same update, as HF Trainer's default `adamw_torch_fused`) where torch has it for these
    parameters: it matters most where the update of every weight is a large part of a step (full-ft
    on short rows)."""
    import torch

    trainable = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trainable if p.ndim >= 2]
    no_decay = [p for p in trainable if p.ndim < 2]  # biases and norms: no weight decay
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:
        optimizer = torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # a device or dtype without a fused kernel
        optimizer = torch.optim.AdamW(groups, lr=lr)
    return optimizer, trainable


def classifier_loss(model, batch: dict, labels: torch.Tensor, bf16: bool,
                    weights: torch.Tensor | None = None) -> torch.Tensor:
    """A sequence classifier's loss on one padded batch: forward under autocast, fp32 cross-entropy."""
    import torch.nn.functional as F

    with autocast(labels.device.type, bf16):
        logits = model(**batch).logits
    return F.cross_entropy(logits.float(), labels, weight=weights)


def optimizer_step(loss: torch.Tensor, optimizer, trainable: list[torch.Tensor], scheduler=None) -> float:
    """Backward, gradient clipping, the update (and the schedule); returns the loss."""
    import torch

    loss.backward()
    if MAX_GRAD_NORM:
        torch.nn.utils.clip_grad_norm_(trainable, MAX_GRAD_NORM)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def train_step(model, batch: dict, labels: torch.Tensor, optimizer, trainable: list[torch.Tensor], bf16: bool,
               weights: torch.Tensor | None = None, scheduler=None) -> float:
    """One optimizer step of a sequence classifier on one padded batch (the profile leg's step)."""
    return optimizer_step(classifier_loss(model, batch, labels, bf16, weights), optimizer, trainable, scheduler)


def fast_dropout_on_cpu(model, ctx: RunContext) -> None:
    """On the CPU, dropout masks drawn with numpy (bench/engine/dropout.py: torch's are slow there)."""
    from bench.engine.dropout import use_fast_dropout

    if ctx.device != "cpu":
        return
    modules, attention = use_fast_dropout(model)
    if modules or attention:
        ctx.tracker.log(f"dropout masks drawn with numpy on the CPU: {modules} dropout module(s)"
                        + (" and the attention" if attention else ""))


def linear_schedule_with_warmup(optimizer, warmup_steps: int, total_steps: int):
    """transformers' linear schedule (the same factors step for step) on torch's LambdaLR: importing
    transformers.optimization imports peft, bitsandbytes and torch's compiler, seconds a run."""
    import torch

    def factor(step: int) -> float:
        if step < warmup_steps:
            return float(step) / float(max(1, warmup_steps))
        return max(0.0, float(total_steps - step) / float(max(1, total_steps - warmup_steps)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class Objective:
    """What `fit` trains on: each training row's length in tokens (for batching and the token
    counts), the loss of a batch of row indices, and the validation figures after an epoch (None
    without validation rows): a sequence classifier's (`classifier_objective`) or a strategy's own,
    such as instruct-ft's loss on the label tokens."""

    lengths: np.ndarray
    loss: Callable[[Any, np.ndarray], torch.Tensor]
    validate: Callable[[Any], dict[str, float]] | None


def classifier_objective(train: Encoded, val: Encoded, ctx: RunContext, p: TrainParams, pad_id: int) -> Objective:
    """Cross-entropy of a sequence classifier (class-weighted where the params ask), validated by
    its predictions on the val split."""
    import torch

    device, bf16 = ctx.device, use_bf16(ctx.device, ctx.precision)
    weights = None
    if p.class_weights:
        weights = torch.tensor(ctx.data.class_weights(), dtype=torch.float32, device=device)

    def loss(model, idx: np.ndarray) -> torch.Tensor:
        batch = pad_batch([train.input_ids[i] for i in idx], pad_id, device)
        return classifier_loss(model, batch, torch.as_tensor(train.labels[idx], device=device), bf16, weights)

    def validate(model) -> dict[str, float]:
        pred, val_loss = predict(model, val, ctx, pad_id, desc="validating", weights=weights, count_as=None)
        return validation_figures(val.labels, pred, val_loss)

    return Objective(train.lengths(), loss, validate if len(val) else None)


def epoch_batches(lengths: np.ndarray, p: TrainParams, ctx: RunContext) -> list[list[np.ndarray]]:
    """Every epoch's batches, drawn up front from the run's seed: token-budget batches where
    `max_tokens_per_batch` is set (their count varies), else `batch_size` rows grouped by length."""
    rng = np.random.default_rng(ctx.seed)
    if p.max_tokens_per_batch:
        plan = [token_budget_batches(lengths, p.max_tokens_per_batch, rng) for _ in range(p.epochs)]
        ctx.tracker.log(f"token-budget batches: {sum(len(b) for b in plan)} steps of "
                        f"<= {p.max_tokens_per_batch} padded tokens")
        return plan
    return [train_batches(lengths, p.batch_size, rng) for _ in range(p.epochs)]


def fit(model, objective: Objective, ctx: RunContext, p: TrainParams) -> None:
    """Train in place; validate each epoch (ctx.tracker.epoch: the curve, and the tuning pruner);
    at the end load back the trainable weights of the best epoch by validation accuracy."""
    import torch

    fast_dropout_on_cpu(model, ctx)
    optimizer, trainable = make_optimizer(model, p.lr, p.weight_decay)
    lengths = objective.lengths
    plan = epoch_batches(lengths, p, ctx)
    steps = sum(len(b) for b in plan)
    scheduler = linear_schedule_with_warmup(optimizer, int(p.warmup_ratio * steps), steps)
    torch.manual_seed(ctx.seed)
    best = BestEpoch(model)
    step = 0
    for epoch, batches in enumerate(plan, start=1):
        model.train()
        loss_sum, seen = 0.0, 0
        with ctx.tracker.phase("train"):
            bar = ctx.tracker.progress(total=len(lengths), desc=f"epoch {epoch}/{p.epochs}", unit="ex")
            for idx in batches:
                value = optimizer_step(objective.loss(model, idx), optimizer, trainable, scheduler)
                step += 1
                if not math.isfinite(value):  # diverged: every later figure would be NaN too
                    bar.close()
                    raise Diverged(value, step, epoch, p.lr)
                loss_sum += value * len(idx)
                seen += len(idx)
                ctx.tracker.count("train_examples", len(idx))
                ctx.tracker.count("train_tokens", int(lengths[idx].sum()))
                bar.update(len(idx))
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}")
            bar.close()
        entry = {"epoch": epoch, "train_loss": loss_sum / max(1, seen), "val_loss": None, "val_accuracy": None}
        if objective.validate is not None:
            with ctx.tracker.phase("validate"):
                entry.update(objective.validate(model))
            best.offer(entry)
        ctx.tracker.epoch(entry)
    if p.epochs > 1:
        best.restore()


def count_params(model) -> tuple[int, int]:
    """(trainable, total). peft models count 4-bit weights by their real element count."""
    if hasattr(model, "get_nb_trainable_parameters"):
        return tuple(int(x) for x in model.get_nb_trainable_parameters())  # type: ignore[return-value]
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
