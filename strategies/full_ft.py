"""full-ft: every weight of a (small) model trained with a classification head."""

from __future__ import annotations

from dataclasses import dataclass

from bench.engine.context import RunContext
from bench.engine.kernels import apply_speed_params, load_kwargs
from bench.engine.training import TrainParams, retuned
from strategies.shared.served_classifier import served_classifier
from strategies.shared.trained import Built, TrainedStrategy, load_classifier, load_tokenizer


@dataclass
class FullFTParams(TrainParams):
    """CPU-sized defaults for a MiniLM-sized model and a few hundred rows: 2 epochs at lr 2e-4 and
    128 tokens (twice the epochs and tokens at half the lr gain little for three times the time)."""

    lr: float = retuned("lr", 2e-4)
    epochs: int = retuned("epochs", 2)
    batch_size: int = retuned("batch_size", 16)


class FullFineTune(TrainedStrategy):
    name = "full-ft"
    uses_bitsandbytes = False
    description = "every weight of a small model trained with a classification head"
    default_model = "minilm"
    flops_kind = "full"
    in_default_run = True
    Params = FullFTParams

    def search_space(self, trial):
        return {
            "lr": trial.suggest_float("lr", 1e-5, 3e-4, log=True),
            "epochs": trial.suggest_int("epochs", 2, 6),
            "batch_size": trial.suggest_categorical("batch_size", [8, 16, 32]),
            "weight_decay": trial.suggest_float("weight_decay", 0.0, 0.1),
            "warmup_ratio": trial.suggest_float("warmup_ratio", 0.0, 0.2),
        }

    def build(self, ctx: RunContext, p: FullFTParams):
        path = ctx.model_path()
        tokenizer = load_tokenizer(path)
        model = load_classifier(path, ctx, tokenizer, **load_kwargs(p)).to(ctx.device)
        return Built(apply_speed_params(model, p, log=ctx.tracker.log), tokenizer)

    def served(self, ctx: RunContext, built: Built, p: FullFTParams):
        return served_classifier(self.name, ctx, built, p, "full")  # every weight trained: the whole model ships
