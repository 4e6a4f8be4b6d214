"""`hf:NAME`: any Hugging Face dataset through `datasets.load_dataset` (needs the Hub or its cache)."""

from __future__ import annotations

import contextlib
import logging

import pandas as pd

from bench.data.hygiene import MERGE_OPTION, merge_spellings, wants_merge
from bench.data.task import RawDataset
from bench.data.sources.columns import select_columns, sorted_labels
from bench.core.errors import BenchError


# The libraries that log each failed request and retry ("... thrown while requesting HEAD https://...")
# before raising; the exception is what we report, in one line of ours.
HUB_LOGGERS = ("huggingface_hub", "datasets", "fsspec")


@contextlib.contextmanager
def hub_logs_errors_only():
    """Their warnings muted for the call, their own levels restored after it."""
    loggers = [logging.getLogger(name) for name in HUB_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def load_hub_splits(name: str, what: str) -> dict:
    """The dataset's splits as pandas frames, or one clear error where the Hub is out of reach."""
    try:
        import datasets

        with hub_logs_errors_only():
            ds = datasets.load_dataset(name)
    except Exception as exc:  # noqa: BLE001
        kind = type(exc).__name__
        raise BenchError(f"cannot load {what} from the Hugging Face Hub ({kind}); the Hub or its "
                         "cache is needed: use a local copy (csv:PATH, or a named dataset's --data-opt, see `bench list`)") from None
    return ds


class HubSource:
    description = "any Hugging Face dataset: hf:NAME with --text-col/--label-col"
    options = MERGE_OPTION

    def __init__(self, name: str):
        self.name = name

    def available(self, options) -> tuple[bool, str]:
        return True, "needs the Hub or its cache"

    def load(self, options) -> RawDataset:
        ds = load_hub_splits(self.name, f"dataset '{self.name}'")
        train_name = "train" if "train" in ds else list(ds)[0]
        train = ds[train_name]
        label_col = options.label_col or "label"
        names = None
        feat = train.features.get(label_col) if hasattr(train, "features") else None
        if feat is not None and hasattr(feat, "names"):
            names = list(feat.names)

        def frame(split):
            df = split.to_pandas()
            if names is not None and label_col in df:
                df[label_col] = df[label_col].map(lambda i: names[int(i)] if i is not None and i >= 0 else None)
            return select_columns(df, options.text_cols, options.label_col, f"hf:{self.name}")

        pool = frame(train)
        test = frame(ds["test"]) if "test" in ds and train_name != "test" else None
        val_name = next((n for n in ("validation", "valid", "dev", "val") if n in ds), None)
        val = frame(ds[val_name]) if val_name else None
        merged = {}
        if wants_merge(options):
            frames, merged = merge_spellings([f for f in (pool, test, val) if f is not None])
            pool, test, val = (frames.pop(0) if f is not None else None for f in (pool, test, val))
            names = None  # the merged spellings are the classes now
        labels = names or sorted_labels(pd.concat([f for f in (pool, test, val) if f is not None])["label"])
        return RawDataset(f"hf:{self.name}", pool, labels, test, provenance=f"Hugging Face dataset {self.name}",
                          val=val, labels_merged=merged)
