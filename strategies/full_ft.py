"""full-ft: every weight of a (small) model trained with a classification head."""

from __future__ import annotations

from dataclasses import dataclass

from bench.context import RunContext
from bench.training import TrainSettings, count_params, fit, pad_id_of, predict
from strategies.base import Strategy, StrategyResult
from strategies.common import encode_splits, load_classifier, load_tokenizer


@dataclass
class FullFTParams:
    lr: float = 1e-4
    epochs: int = 4
    batch_size: int = 16
    max_length: int = 256
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    class_weights: bool = False


class FullFineTune(Strategy):
    name = "full-ft"
    description = "every weight of a small model trained with a classification head"
    default_model = "minilm"
    Params = FullFTParams

    def search_space(self, trial):
        return {
            "lr": trial.suggest_float("lr", 1e-5, 3e-4, log=True),
            "epochs": trial.suggest_int("epochs", 2, 6),
            "batch_size": trial.suggest_categorical("batch_size", [8, 16, 32]),
            "weight_decay": trial.suggest_float("weight_decay", 0.0, 0.1),
            "warmup_ratio": trial.suggest_float("warmup_ratio", 0.0, 0.2),
        }

    def run(self, ctx: RunContext, p: FullFTParams) -> StrategyResult:
        with ctx.tracker.phase("load"):
            path = ctx.model_path()
            tokenizer = load_tokenizer(path)
            model = load_classifier(path, ctx, tokenizer).to(ctx.device)
        data = encode_splits(ctx, tokenizer, p.max_length)
        pad = pad_id_of(tokenizer)
        with ctx.tracker.phase("eval"):
            baseline, _ = predict(model, data.eval, ctx, pad, desc="baseline (untrained head)", count_as=None)
        settings = TrainSettings(p.lr, p.epochs, p.batch_size, p.weight_decay, p.warmup_ratio, p.class_weights)
        fit(model, data.train, data.val, ctx, settings, pad, len(ctx.data.labels))
        with ctx.tracker.phase("eval"):
            preds, _ = predict(model, data.eval, ctx, pad)
        trainable, total = count_params(model)
        return StrategyResult(preds.tolist(), trainable, total, baseline_predictions=baseline.tolist())
