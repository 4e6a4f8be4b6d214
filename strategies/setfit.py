"""setfit: SetFit (Tunstall et al. 2022), the few-shot classifier. The sentence encoder is first
fine-tuned contrastively on pairs drawn from the train split (same class: cosine similarity 1,
different classes: 0; CosineSimilarityLoss), then a logistic-regression head is fitted on its
embeddings of the train split.

Through the `setfit` package itself (1.2.0): it works offline with the shipped MiniLM folder (a
sentence-transformers folder; SetFitModel.from_pretrained adds the head), so the method is the
package's, not a re-implementation. Checkpoints go to a temporary folder that is deleted; nothing
is reported to any tracker (report_to="none")."""

from __future__ import annotations

import math
import tempfile
import warnings
from dataclasses import dataclass

import numpy as np

from bench.core.errors import BenchError
from bench.core.params import param
from bench.engine.context import RunContext
from strategies.shared.base import Strategy, StrategyResult
from strategies.shared.served_setfit import ServedSetFit


@dataclass
class SetFitParams:
    """num_iterations 20 is the paper's and the package's default (each train row in 20 positive and
    20 negative pairs); max_steps caps the contrastive phase so that a 60-rows-per-class split takes
    minutes on a CPU: 8 rows per class, 5 classes and batches of 16 make exactly 100 steps."""

    num_iterations: int = param(20, ge=1)  # pairs per train row and per polarity
    max_steps: int = param(100, ge=-1)  # at most this many steps (capped_steps); -1: no cap
    epochs: int = param(1, ge=1)
    batch_size: int = param(16, ge=2)
    body_lr: float = param(2e-5, gt=0, le=1)
    max_length: int = param(128, ge=2)  # tokens per text in training and in embedding
    C: float = param(1.0, gt=0)  # the logistic-regression head's inverse regularization
    class_weights: bool = False  # the head's class_weight="balanced"


class SetFit(Strategy):
    name = "setfit"
    uses_bitsandbytes = False
    description = "SetFit: contrastive fine-tuning of a sentence encoder on pairs, then a logistic-regression head"
    default_model = "minilm"
    flops_kind = "full"
    Params = SetFitParams

    def search_space(self, trial):
        return {"num_iterations": trial.suggest_categorical("num_iterations", [5, 10, 20, 40]),
                "body_lr": trial.suggest_float("body_lr", 5e-6, 1e-4, log=True),
                "epochs": trial.suggest_int("epochs", 1, 3),
                "C": trial.suggest_float("C", 1e-2, 1e2, log=True)}

    def check(self, params: SetFitParams, model) -> None:
        import importlib.util

        if importlib.util.find_spec("setfit") is None:
            raise BenchError("setfit needs the setfit package: pip install 'setfit>=1.1' (it brings sentence-transformers)")
        if getattr(model, "architecture", None) == "decoder":
            raise BenchError(f"setfit needs a sentence encoder; '{model.name}' is a causal LM: use --model minilm")

    def run(self, ctx: RunContext, p: SetFitParams) -> StrategyResult:
        from datasets import Dataset
        from setfit import SetFitModel, Trainer, TrainingArguments

        quiet_setfit()
        with ctx.tracker.phase("load"):
            head = {"C": p.C, "max_iter": 2000, "random_state": ctx.seed,
                    "class_weight": "balanced" if p.class_weights else None}
            model = SetFitModel.from_pretrained(ctx.model_path(), head_params=head, device=ctx.device)
            model.model_body.max_seq_length = p.max_length
        with ctx.tracker.phase("baseline"):  # the untrained encoder with a random linear head
            baseline = random_head_predictions(model.encode(ctx.eval.texts), len(ctx.data.labels), ctx.seed)
        train = ctx.data.train
        dataset = Dataset.from_dict({"text": list(train.texts), "label": [int(y) for y in train.labels]})
        steps = capped_steps(p, len(train))
        ctx.tracker.log(f"setfit: {steps} contrastive steps of {p.batch_size} pairs ({p.num_iterations} positive and "
                        f"negative pairs a row{', capped by max_steps' if steps == p.max_steps else ''}), "
                        "then a logistic-regression head")
        with tempfile.TemporaryDirectory(prefix="ftbench-setfit-") as folder, ctx.tracker.phase("train"), \
                warnings.catch_warnings():
            # the Trainer's DataLoader asks for pinned memory, which a CPU run does not have
            warnings.filterwarnings("ignore", message=".*pin_memory.*")
            args = TrainingArguments(output_dir=folder, batch_size=p.batch_size, num_epochs=p.epochs,
                                     num_iterations=p.num_iterations, max_steps=steps,
                                     body_learning_rate=p.body_lr, max_length=p.max_length, seed=ctx.seed,
                                     report_to="none", save_strategy="no", logging_strategy="no",
                                     show_progress_bar=False)
            trainer = Trainer(model=model, args=args, train_dataset=dataset)
            use_tracker_bar(trainer, ctx, steps)
            trainer.train()
        ctx.tracker.count("train_examples", len(train))
        history_entry(model, ctx)
        with ctx.tracker.phase("eval"):
            preds = np.asarray(model.predict(list(ctx.eval.texts), as_numpy=True))
        ctx.tracker.count("eval_examples", len(ctx.eval))
        body = sum(t.numel() for t in model.model_body.parameters())
        head_params = int(model.model_head.coef_.size + model.model_head.intercept_.size)
        return StrategyResult([int(x) for x in preds], body + head_params, body + head_params,
                              baseline_predictions=baseline.tolist(), extra_cost={"head_params": head_params},
                              served=ServedSetFit(model, ctx.data.labels, p.max_length))


def quiet_setfit() -> None:
    """setfit sets its own loggers to INFO on import (its "***** Running training *****" block) and
    warns that the encoder folder has no head, which is the point here; our log says what runs.
    The datasets map over the train rows (milliseconds) needs no bar either."""
    import logging

    from datasets.utils.logging import disable_progress_bar
    from setfit import logging as setfit_logging

    setfit_logging.set_verbosity_warning()
    logging.getLogger("setfit.modeling").setLevel(logging.ERROR)
    disable_progress_bar()


def use_tracker_bar(trainer, ctx: RunContext, steps: int) -> None:
    """The Trainer's own progress and log printers out (they print loss dicts even with logging off),
    a step bar of the run's tracker in (silent under -q, as every other strategy's)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback, TrainerCallback

    class TrackerBar(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.bar = ctx.tracker.progress(total=steps, desc="contrastive pairs", unit="step")

        def on_step_end(self, args, state, control, **kwargs):
            self.bar.update(1)

        def on_train_end(self, args, state, control, **kwargs):
            self.bar.close()

    for printer in (PrinterCallback, ProgressCallback):
        trainer.pop_callback(printer)
    trainer.add_callback(TrackerBar())


def capped_steps(p: SetFitParams, n_rows: int) -> int:
    """setfit's max_steps is an exact count (it cycles the pairs to reach it), so the cap is applied
    here: the steps all pairs take (num_iterations positive and negative pairs per row, epochs
    times), at most p.max_steps; -1 (no cap) leaves setfit its own count."""
    natural = p.epochs * math.ceil(2 * p.num_iterations * n_rows / p.batch_size)
    return natural if p.max_steps < 0 else min(natural, p.max_steps)


def random_head_predictions(embeddings, n_classes: int, seed: int) -> np.ndarray:
    """The untrained starting point: a freshly initialized linear head (nn.Linear's init)."""
    import torch

    x = torch.as_tensor(np.asarray(embeddings), dtype=torch.float32)
    torch.manual_seed(seed)
    with torch.no_grad():
        return torch.nn.Linear(x.shape[1], n_classes)(x).argmax(-1).numpy()


def history_entry(model, ctx: RunContext) -> None:
    """One point of the curve, as feature-extract's logistic head records it: the head's train log
    loss, and its validation figures."""
    from sklearn.metrics import log_loss

    from bench.engine.training import validation_figures

    labels = list(range(len(ctx.data.labels)))
    train_x = model.encode(list(ctx.data.train.texts))
    entry = {"epoch": 1, "train_loss": log_loss(ctx.data.train.labels, model.model_head.predict_proba(train_x),
                                                labels=labels), "val_loss": None, "val_accuracy": None}
    val = ctx.data.val
    if len(val):
        with ctx.tracker.phase("validate"):
            val_x = model.encode(list(val.texts))
        entry.update(validation_figures(val.labels, model.model_head.predict(val_x),
                                        log_loss(val.labels, model.model_head.predict_proba(val_x), labels=labels)))
    ctx.tracker.epoch(entry)
