"""Turn a user's table into the harness's (id, text, label) frame, with clear column errors."""

from __future__ import annotations

import pandas as pd

from bench.core.errors import BenchError, echoed


def select_columns(df: pd.DataFrame, text_cols: list[str], label_col: str | None, source: str,
                   default_text: str = "text", default_label: str = "label") -> pd.DataFrame:
    if len(df) == 0:
        raise BenchError(f"{source} has no rows; check the file")
    text_cols = text_cols or [default_text]
    label_col = label_col or default_label
    missing = [c for c in [*text_cols, label_col] if c not in df.columns]
    if missing:
        raise BenchError(f"column(s) {missing} not in {source}; it has {list(map(str, df.columns))[:12]}: "
                         "pass --text-col and --label-col")
    if len(text_cols) == 1:
        text = df[text_cols[0]]
    else:  # several text columns (AG News: title + description) are joined, line by line
        for c in text_cols:
            bad = ~df[c].map(lambda v: isinstance(v, str))
            if bad.any():
                raise BenchError(f"column {echoed(c)} of {source} has {int(bad.sum())} non-string value(s) "
                                 f"(first at row {int(bad.idxmax())}); clean them or choose other --text-col")
        text = df[text_cols].astype(str).agg("\n".join, axis=1)
    compound = df[label_col].map(lambda v: isinstance(v, (list, tuple, dict, set)) or hasattr(v, "shape"))
    if compound.any():
        first = df[label_col][compound].iloc[0]
        raise BenchError(f"column {echoed(label_col)} of {source} holds {int(compound.sum())} label(s) that are "
                         f"{type(first).__name__}s, not single values (first at row {compound.idxmax()}: "
                         f"{echoed(first)}); give one class name or number per row, or pick another --label-col")
    labels = df[label_col].map(lambda v: v if pd.isna(v) else str(v))
    # ids are the row numbers of the user's table, so rows of a split column keep theirs
    return pd.DataFrame({"id": [str(i) for i in df.index], "text": text.to_list(), "label": labels.to_list()})


SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
               "dev": "val", "test": "test", "testing": "test"}


def by_split_column(df: pd.DataFrame, split_col: str, source: str) -> dict[str, pd.DataFrame]:
    """Rows grouped by the user's split column (train/validation/test, in the usual spellings)."""
    if split_col not in df.columns:
        raise BenchError(f"--split-col {echoed(split_col)} is not a column of {source}; it has "
                         f"{list(map(str, df.columns))[:12]}")
    names = df[split_col].map(lambda v: SPLIT_NAMES.get(str(v).strip().lower()))
    bad = sorted({str(v) for v in df[split_col][names.isna()]})
    if bad:
        raise BenchError(f"column {echoed(split_col)} of {source} has value(s) {bad[:5]} that name no split; use "
                         "train, validation (or val, dev) and test")
    parts = {name: df[names == name] for name in ("train", "val", "test") if (names == name).any()}
    if "train" not in parts or "test" not in parts:
        raise BenchError(f"column {echoed(split_col)} of {source} must mark both train and test rows; it has "
                         f"{sorted(parts)}")
    return parts


def sorted_labels(values) -> list[str]:
    """Label order: numeric labels by value (so '2' < '10'), else alphabetical."""
    uniq = sorted({v for v in values if v is not None and not (isinstance(v, float) and pd.isna(v))})
    try:
        return sorted(uniq, key=float)
    except ValueError:
        return uniq
