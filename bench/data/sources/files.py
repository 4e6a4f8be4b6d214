"""`csv:PATH`, `jsonl:PATH`, `parquet:PATH`: a user's own labeled table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.data.hygiene import MERGE_OPTION, merge_spellings, wants_merge
from bench.data.task import RawDataset
from bench.data.sources.columns import by_split_column, select_columns, sorted_labels
from bench.core.errors import BenchError


class FileSource:
    description = "a local labeled table (csv, jsonl, parquet) with --text-col and --label-col"
    options = MERGE_OPTION

    def __init__(self, kind: str, path: str):
        self.kind, self.path = kind, Path(path).expanduser()

    def available(self, options) -> tuple[bool, str]:
        return self.path.is_file(), str(self.path)

    def load(self, options) -> RawDataset:
        spec = f"{self.kind}:{self.path}"
        if not self.path.is_file():
            raise BenchError(f"dataset file '{self.path}' does not exist; check the path after '{self.kind}:'")
        try:
            if self.kind == "csv":
                df = pd.read_csv(self.path)
            elif self.kind == "jsonl":
                df = pd.read_json(self.path, lines=True)
            else:
                df = pd.read_parquet(self.path)
        except Exception as exc:  # noqa: BLE001 - every parser error becomes one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BenchError(f"cannot read '{self.path}' as {self.kind} ({first}); check the file "
                             f"format matches the '{self.kind}:' prefix") from None
        provenance = f"file {self.path.resolve()}"
        merge = wants_merge(options)
        if not options.split_col:
            frame = select_columns(df, options.text_cols, options.label_col, spec)
            (frame,), merged = merge_spellings([frame]) if merge else ((frame,), {})
            return RawDataset(spec, frame, sorted_labels(frame["label"]), provenance=provenance, labels_merged=merged)
        parts = {name: select_columns(part, options.text_cols, options.label_col, spec)
                 for name, part in by_split_column(df, options.split_col, spec).items()}
        merged = {}
        if merge:
            frames, merged = merge_spellings(list(parts.values()))
            parts = dict(zip(parts, frames))
        labels = sorted_labels(pd.concat(parts.values())["label"])
        return RawDataset(spec, parts["train"], labels, parts["test"], provenance=provenance, val=parts.get("val"),
                          labels_merged=merged)
