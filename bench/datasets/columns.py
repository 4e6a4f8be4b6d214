"""Turn a user's table into the harness's (id, text, label) frame, with clear column errors."""

from __future__ import annotations

import pandas as pd

from bench.errors import BenchError


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
                raise BenchError(f"column {c!r} of {source} has {int(bad.sum())} non-string value(s) "
                                 f"(first at row {int(bad.idxmax())}); clean them or choose other --text-col")
        text = df[text_cols].astype(str).agg("\n".join, axis=1)
    labels = df[label_col].map(lambda v: v if pd.isna(v) else str(v))
    return pd.DataFrame({"id": [str(i) for i in range(len(df))], "text": text.to_list(), "label": labels.to_list()})


def sorted_labels(values) -> list[str]:
    """Label order: numeric labels by value (so '2' < '10'), else alphabetical."""
    uniq = sorted({v for v in values if v is not None and not (isinstance(v, float) and pd.isna(v))})
    try:
        return sorted(uniq, key=float)
    except ValueError:
        return uniq
