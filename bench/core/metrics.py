"""Quality figures from predictions, with scikit-learn (evaluate.load fetches scripts from the
Hub and fails offline)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score,
                             precision_recall_fscore_support)


def collapse_warnings(y_true: Sequence[int], y_pred: Sequence[int], labels: list[str]) -> list[str]:
    """One line when every prediction is the same class while the truth has several: the run
    learned nothing that separates them (balanced accuracy is 1 / number of classes)."""
    predicted, true = set(int(x) for x in y_pred), set(int(x) for x in y_true)
    if len(predicted) == 1 and len(true) > 1:
        only = labels[predicted.pop()]
        return [f"collapsed to one class: predicted '{only}' for all {len(y_pred)} evaluated rows "
                f"(balanced accuracy {1 / len(labels):.3f})"]
    return []


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
