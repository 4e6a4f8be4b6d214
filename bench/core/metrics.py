"""Quality figures from predictions, with scikit-learn (evaluate.load fetches scripts from the
Hub and fails offline)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score,
                             precision_recall_fscore_support)


COLLAPSE_SHARE = 0.95  # a class taking this share of the predictions ...
COLLAPSE_EXCESS = 0.25  # ... and this much more than its share of the truth: a collapse


def collapse_warnings(y_true: Sequence[int], y_pred: Sequence[int], labels: list[str],
                      advice: str | None = None) -> list[str]:
    """One line when (nearly) every prediction is one class while the truth is spread over several:
    the run separates nothing (on balanced data its balanced accuracy sits near 1 / classes). The
    strategy's `advice`, what to try, ends the line."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    if not len(y_pred) or len(set(y_true.tolist())) < 2:
        return []
    top = int(np.bincount(y_pred, minlength=len(labels)).argmax())
    share, true_share = float((y_pred == top).mean()), float((y_true == top).mean())
    if share < COLLAPSE_SHARE or share - true_share < COLLAPSE_EXCESS:
        return []
    return [f"collapsed to one class: predicted '{labels[top]}' for {int((y_pred == top).sum())} of "
            f"{len(y_pred)} evaluated rows (its true share {true_share:.0%}); balanced accuracy "
            f"{balanced_accuracy_score(y_true, y_pred):.3f}" + (f"; {advice}" if advice else "")]


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: list[str]) -> dict[str, Any]:
    """accuracy, balanced_accuracy, macro_f1, per_class {label: {precision, recall, f1, support}},
    confusion (rows = true class, columns = predicted, in `labels` order)."""
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{len(y_pred)} predictions for {len(y_true)} examples")
    ids = list(range(len(labels)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0)),
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, name in enumerate(labels)
        },
        "confusion": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        "n": int(len(y_true)),
    }
