"""Run records: one JSON file per run, written atomically, never edited after an `ok`.

The keys below are a contract read by the report, tuning, users' notebooks and outside checks
(DESIGN.md, "Record contract"): keep them stable, add freely, bump SCHEMA when one changes meaning.

    schema, run_id, status ("ok"|"failed"|"oom"|"cancelled"|"pruned"), error,
    strategy, seed, model {name, source, provenance}, dataset {name, n_train, n_val, n_test, labels},
    params, metrics, baseline, history, cost, env, config, eval_split, started_at, finished_at
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

SCHEMA = 1
STATUSES = ("ok", "failed", "oom", "cancelled", "pruned")


def record_path(results_dir: str | Path, run_id: str) -> Path:
    return Path(results_dir) / f"{run_id}.json"


def write_record(path: str | Path, record: dict[str, Any]) -> Path:
    """Write atomically (temp file in the same folder + rename): a reader never sees half a file,
    and a crash mid-write leaves the previous record intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(record, fh, indent=2, sort_keys=False, default=_jsonable)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_record(path: str | Path) -> dict[str, Any] | None:
    """A record, or None where the file is not a readable record (skipped, never fatal)."""
    try:
        with open(path) as fh:
            rec = json.load(fh)
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and "run_id" in rec and "status" in rec else None


def iter_records(results_dir: str | Path) -> Iterator[dict[str, Any]]:
    """Every record under `results_dir` (recursively), oldest first."""
    root = Path(results_dir)
    if not root.is_dir():
        return
    for p in sorted(root.rglob("*.json"), key=lambda q: (q.stat().st_mtime, q.name)):
        if p.name.startswith("."):
            continue
        rec = read_record(p)
        if rec is not None:
            yield rec


def is_done(results_dir: str | Path, run_id: str) -> bool:
    rec = read_record(record_path(results_dir, run_id))
    return rec is not None and rec.get("status") == "ok"


def _jsonable(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def train_seconds(cost: dict[str, Any] | None) -> float | None:
    """The record's training time: the "train" phase plus, for feature-extract, the "embed" phase
    (the frozen backbone's pass over the training and validation data, zero when cached)."""
    time_s = (cost or {}).get("time_s") or {}
    if time_s.get("train") is None:
        return None
    return float(time_s["train"]) + float(time_s.get("embed") or 0.0)
