"""Run records: one JSON file per run, written atomically, never edited after an `ok`.

The keys below are a contract read by the report, tuning, users' notebooks and outside checks (the
README's "Records" lists them whole): keep them stable, add freely, bump SCHEMA when one changes meaning.

    schema, run_id, status ("ok"|"failed"|"oom"|"cancelled"|"pruned"), error,
    strategy, seed, model {name, source, provenance}, dataset {name, n_train, n_val, n_test, labels,
    split, class_counts, split_ids}, train_size, params, metrics {..., ci}, baseline, majority_baseline,
    history, cost, env, config, eval_split, predictions, truth, started_at, finished_at
"""

from __future__ import annotations

import json
import math
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
            # strict JSON: NaN/Infinity are not JSON (strict parsers reject them); see strip_nonfinite
            json.dump(record, fh, indent=2, sort_keys=False, default=_jsonable, allow_nan=False)
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
    return load_record(path)[0]


def load_record(path: str | Path) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None), or (None, why it is not one: not JSON, not an object, no run_id or status)."""
    try:
        with open(path, "rb") as fh:
            rec = json.loads(fh.read().decode("utf-8"))
    except OSError as exc:
        return None, f"unreadable ({exc.strerror or exc})"
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except ValueError as exc:
        return None, f"not valid JSON ({str(exc).split(':')[0]})"
    if not isinstance(rec, dict):
        return None, f"a JSON {type(rec).__name__}, not a record object"
    missing = [k for k in ("run_id", "status") if not isinstance(rec.get(k), str)]
    if missing:
        return None, f"lacks {' and '.join(missing)}"
    return rec, None


def check_shape(rec: dict[str, Any]) -> str | None:
    """For the readers that compute with a record (the report): None when it can be used -- fields of
    the wrong type are set to None (read as "not measured") and listed in its `_odd` -- else why not."""
    if rec["status"] not in STATUSES:
        return f"unknown status {rec['status']!r} (known: {', '.join(STATUSES)})"
    odd = [k for k, kind in SHAPES.items() if rec.get(k) is not None and not isinstance(rec[k], kind)]
    for k in odd:
        rec[k] = None
    if rec["status"] == "ok":  # an ok record is read for its figures: say which are missing
        metrics = rec.get("metrics") or {}
        odd += [f"metrics.{k}" for k in ("accuracy", "balanced_accuracy") if not _finite(metrics.get(k))]
        odd += [k for k in ("cost",) if rec.get(k) is None]
    if odd:
        rec["_odd"] = odd
    return None


SHAPES = {"metrics": dict, "baseline": dict, "cost": dict, "history": list, "params": dict, "env": dict,
          "config": dict, "study": dict, "model": (dict, str), "dataset": (dict, str), "seed": int,
          "error": str, "strategy": str}


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def iter_records(results_dir: str | Path, skipped: list[str] | None = None,
                 warn=None) -> Iterator[dict[str, Any]]:
    """Every usable record under `results_dir` (recursively), oldest first. A file that is not a
    readable record, or not one the report can use (check_shape), is skipped and named: a line to `warn` (default: stderr) and, when given, `skipped`."""
    import sys

    root = Path(results_dir)
    if not root.is_dir():
        return
    say = warn or (lambda line: print(line, file=sys.stderr))
    files = []
    for p in root.rglob("*.json"):
        try:
            files.append((p.stat().st_mtime, p.name, p))
        except OSError:  # gone meanwhile
            continue
    for _, _, p in sorted(files, key=lambda t: (t[0], t[1])):
        if p.name.startswith(".") or any(part.startswith(".") for part in p.relative_to(root).parts[:-1]):
            continue
        rec, why = load_record(p)
        why = why or check_shape(rec)
        if why:
            note = f"{p}: {why}"
            say(f"warning: skipped {note}")
            if skipped is not None:
                skipped.append(note)
            continue
        if rec.get("_odd"):
            say(f"warning: {p}: {', '.join(rec['_odd'])} missing or of the wrong type; shown without it")
        yield rec


def strip_nonfinite(obj: Any, where: str = "") -> tuple[Any, list[str]]:
    """`obj` with every NaN/inf float replaced by None, and the paths where one was."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None, [where or "."]
    if isinstance(obj, dict):
        out, paths = {}, []
        for k, v in obj.items():
            out[k], sub = strip_nonfinite(v, f"{where}.{k}" if where else str(k))
            paths += sub
        return out, paths
    if isinstance(obj, (list, tuple)):
        out_list, paths = [], []
        for i, v in enumerate(obj):
            item, sub = strip_nonfinite(v, f"{where}[{i}]")
            out_list.append(item)
            paths += sub
        return out_list, paths
    try:
        import numpy as np

        if isinstance(obj, np.floating) and not np.isfinite(obj):
            return None, [where or "."]
    except ImportError:
        pass
    return obj, []


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
