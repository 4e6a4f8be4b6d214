"""Dataset registry. A spec is a registered name, or `csv:PATH`, `jsonl:PATH`, `parquet:PATH`,
`hf:NAME`. Adding a named dataset is one module here and one line in REGISTRY."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from bench.data.task import RawDataset
from bench.core.errors import BenchError

# name -> "module:object"; the object has .description, .available(options), .load(options)
REGISTRY = {
    "bbc-news": "bench.data.sources.bbc_news:SOURCE",
    "ag_news": "bench.data.sources.ag_news:SOURCE",
}
FILE_KINDS = ("csv", "jsonl", "parquet")


@dataclass
class DatasetOptions:
    """What the user said about columns and local copies (CLI flags or the config file)."""

    text_cols: list[str] = field(default_factory=list)  # several are joined with a newline
    label_col: str | None = None
    ag_news_dir: str | None = None  # else $FTBENCH_AG_NEWS_DIR, else the Hub
    split_col: str | None = None  # a file's column naming each row's split (--split official)

    def to_dict(self) -> dict:
        out = {"text_cols": self.text_cols, "label_col": self.label_col, "ag_news_dir": self.ag_news_dir}
        if self.split_col:  # only when set, so the run ids of earlier records stay the same
            out["split_col"] = self.split_col
        return out


def source_for(spec: str):
    if spec in REGISTRY:
        module, obj = REGISTRY[spec].split(":")
        return getattr(importlib.import_module(module), obj)
    kind, sep, rest = spec.partition(":")
    if sep and kind in FILE_KINDS:
        from bench.data.sources.files import FileSource

        return FileSource(kind, rest)
    if sep and kind == "hf":
        from bench.data.sources.hub import HubSource

        return HubSource(rest)
    raise BenchError(f"unknown dataset '{spec}'; use one of {', '.join(REGISTRY)}, or csv:PATH, "
                     "jsonl:PATH, parquet:PATH, hf:NAME (see `bench list`)")


def load_raw(spec: str, options: DatasetOptions | None = None) -> RawDataset:
    return source_for(spec).load(options or DatasetOptions())


def dataset_status(options: DatasetOptions | None = None) -> list[tuple[str, bool, str, str]]:
    """(name, available, how, description) for `bench list`."""
    rows = []
    for name in REGISTRY:
        src = source_for(name)
        ok, how = src.available(options or DatasetOptions())
        rows.append((name, ok, how, src.description))
    return rows
