"""Dataset registry. A spec is a registered name, or `csv:PATH`, `jsonl:PATH`, `parquet:PATH`,
`hf:NAME`. Adding a named dataset is one module here and one line in REGISTRY.

A source is an object with `.description`, `.available(options)`, `.load(options)`, optionally
`.default_per_class(options)`, and `.options`: {name: help} of the options it takes from
`--data-opt NAME=VALUE` (config: `data_opts:`); `check_options` refuses any other before a model loads."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from bench.data.task import RawDataset
from bench.core.errors import BenchError

# name -> "module:object" (the source object; see the module docstring)
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
    split_col: str | None = None  # a file's column naming each row's split (--split official)
    source: dict[str, str] = field(default_factory=dict)  # the source's own options (--data-opt)

    def to_dict(self) -> dict:
        out = {"text_cols": self.text_cols, "label_col": self.label_col}
        if self.split_col:  # only when set, so the run ids of earlier records stay the same
            out["split_col"] = self.split_col
        if self.source:
            out["source"] = dict(self.source)
        return out

    def get(self, name: str) -> str | None:
        """A source option's value, or None where it was not given."""
        return self.source.get(name)


def check_options(spec: str, options: DatasetOptions) -> None:
    """One clear error for a --data-opt the dataset does not take."""
    takes = getattr(source_for(spec), "options", {})
    for name in options.source:
        if name not in takes:
            offer = "; ".join(f"{k} ({v})" for k, v in takes.items()) or "none"
            raise BenchError(f"dataset '{spec}' takes no option '{name}'; its options: {offer}")


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


def dataset_status(options: DatasetOptions | None = None) -> list[tuple[str, bool, str, str, dict]]:
    """(name, available, how, description, its --data-opt options) for `bench list`."""
    rows = []
    for name in REGISTRY:
        src = source_for(name)
        ok, how = src.available(options or DatasetOptions())
        rows.append((name, ok, how, src.description, dict(getattr(src, "options", {}))))
    return rows
