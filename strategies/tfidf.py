"""tfidf: the classical floor. scikit-learn's TF-IDF over word 1-2 grams (sublinear term frequency)
and a logistic regression, trained on the training texts alone; no pretrained model. Beside the
transformers it answers whether one is needed at all."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.core.params import param
from bench.engine.context import RunContext
from strategies.shared.base import ShipSize, Strategy, StrategyResult
from strategies.shared.served import read_manifest, write_manifest

PIPELINE_FILE = "pipeline.joblib"


@dataclass
class TfidfParams:
    C: float = param(10.0, gt=0, le=1e6)  # inverse regularization strength of the logistic regression
    max_features: int = param(50_000, ge=1, le=10_000_000)  # vocabulary cap (most frequent n-grams)
    ngram_max: int = param(2, ge=1, le=3)  # word n-grams from 1 to this
    min_df: int = param(1, ge=1)  # an n-gram in fewer training texts than this is dropped
    class_weights: bool = False


class Tfidf(Strategy):
    name = "tfidf"
    uses_bitsandbytes = False
    description = "classical floor: TF-IDF word 1-2 grams + logistic regression (scikit-learn), no pretrained model"
    default_model = "none"
    uses_model = False
    flops_kind = "none"
    in_default_run = True
    Params = TfidfParams

    def search_space(self, trial):
        return {"C": trial.suggest_float("C", 1e-1, 1e3, log=True),
                "ngram_max": trial.suggest_int("ngram_max", 1, 3),
                "min_df": trial.suggest_int("min_df", 1, 3),
                "max_features": trial.suggest_categorical("max_features", [10_000, 50_000, 200_000])}

    def run(self, ctx: RunContext, p: TfidfParams) -> StrategyResult:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        train = ctx.data.split("train")
        n_classes = len(ctx.data.labels)
        # min_df above the training texts would leave no vocabulary: cap it there
        vectorizer = TfidfVectorizer(ngram_range=(1, p.ngram_max), sublinear_tf=True, max_features=p.max_features,
                                     min_df=min(p.min_df, len(train.texts)))
        clf = LogisticRegression(C=p.C, max_iter=2000, class_weight="balanced" if p.class_weights else None,
                                 random_state=ctx.seed)
        pipe = make_pipeline(vectorizer, clf)
        with ctx.tracker.phase("train"):
            pipe.fit(train.texts, train.labels)
        ctx.tracker.count("train_examples", len(train.texts))
        served = TfidfServed(pipe, n_classes, list(ctx.data.labels))
        _record_epoch(served, ctx)
        with ctx.tracker.phase("eval"):
            preds, _ = served.predict(ctx.eval.texts)
        ctx.tracker.count("eval_examples", len(ctx.eval.texts))
        n = int(clf.coef_.size + clf.intercept_.size)
        # no untrained starting point to score (the majority baseline is the record's own floor)
        return StrategyResult(preds, n, n, served=served,
                              extra_cost={"vocabulary": len(vectorizer.vocabulary_)})


def _record_epoch(served: "TfidfServed", ctx: RunContext) -> None:
    """One point of the training curve (the fit is one step): training and validation loss."""
    from sklearn.metrics import log_loss

    from bench.engine.training import validation_figures

    labels = list(range(served.n_classes))
    train, val = ctx.data.split("train"), ctx.data.split("val")
    entry = {"epoch": 1, "train_loss": log_loss(train.labels, served.proba(train.texts), labels=labels),
             "val_loss": None, "val_accuracy": None}
    if len(val.texts):
        proba = served.proba(val.texts)
        entry.update(validation_figures(val.labels, proba.argmax(1), log_loss(val.labels, proba, labels=labels)))
    ctx.tracker.epoch(entry)


class TfidfServed:
    """The fitted pipeline as deployed: texts in, class ids and probabilities out; saved with joblib."""

    def __init__(self, pipe, n_classes: int, labels: list[str]):
        self.pipe, self.n_classes, self.labels = pipe, n_classes, labels

    def proba(self, texts: list[str]) -> np.ndarray:
        """Per-class probabilities over every class of the task (a class absent from training: 0)."""
        out = np.zeros((len(texts), self.n_classes))
        out[:, self.pipe.classes_] = self.pipe.predict_proba(list(texts))
        return out

    def predict(self, texts: list[str]) -> tuple[list[int], list[list[float]] | None]:
        proba = self.proba(texts)
        return proba.argmax(1).tolist(), proba.tolist()

    def save(self, folder: Path) -> ShipSize:
        import joblib
        import sklearn

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.pipe, folder / PIPELINE_FILE)
        write_manifest(folder, "tfidf", Tfidf.name, self.labels, None, file=PIPELINE_FILE,
                       n_classes=self.n_classes, serialization="joblib", scikit_learn=sklearn.__version__)
        return ShipSize(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()))

    @classmethod
    def load(cls, folder: Path) -> "TfidfServed":
        """The saved pipeline again (joblib unpickles: load only folders you wrote)."""
        return load(Path(folder), read_manifest(folder))

    def merged(self) -> str:
        return "tfidf has no adapter to merge: the fitted pipeline is the whole model"


def load(folder: Path, manifest: dict, device: str = "cpu") -> TfidfServed:
    """The loader `load_served` calls for kind `tfidf` (strategies/shared/served.py KINDS); the CPU only."""
    import joblib

    return TfidfServed(joblib.load(folder / manifest["file"]), int(manifest["n_classes"]), list(manifest["labels"]))
