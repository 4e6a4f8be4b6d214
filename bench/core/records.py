"""Run records on disk: one JSON file per run (`Record.to_dict()`, bench/core/record.py), written
atomically, never edited after an `ok`; read back through `Record.from_dict`, so every reader gets
the same type and an odd file is skipped with its reason instead of crashing anything.

An `ok` record is never replaced by a run that did not finish (a `--force` rerun that failed, was
cancelled or ran out of memory): that attempt's record is kept beside it instead, in
`RESULTS/.attempts/RUN_ID.json` (a hidden folder, so readers of the results see the good record).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from bench.core.record import SCHEMA, STATUSES, Record, RecordError  # noqa: F401 - the store's vocabulary


ATTEMPTS = ".attempts"  # where an unfinished attempt goes when an ok record holds its run id


def record_path(results_dir: str | Path, run_id: str) -> Path:
    return Path(results_dir) / f"{run_id}.json"


def attempt_path(path: str | Path) -> Path:
    """Where the record at `path` keeps a later attempt that did not finish."""
    path = Path(path)
    return path.parent / ATTEMPTS / path.name


def write_record(path: str | Path, record: "Record | dict[str, Any]") -> Path:
    """Write atomically (temp file in the same folder + rename): a reader never sees half a file,
    and a crash mid-write leaves the previous record intact. A record that is not `ok` goes to
    `attempt_path(path)` where `path` holds an ok record of the same run: the good one stays.
    Returns the path written."""
    path = Path(path)
    if isinstance(record, Record):
        record = record.to_dict()
    if record.get("status") != "ok":
        held = read_record(path) if path.exists() else None
        if held is not None and held.status == "ok" and held.run_id == record.get("run_id"):
            path = attempt_path(path)
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


def read_record(path: str | Path) -> Record | None:
    """A record, or None where the file is not a readable record (skipped, never fatal)."""
    return load_record(path)[0]


def load_record(path: str | Path) -> tuple[Record | None, str | None]:
    """(record, None), or (None, why it is not one: not JSON, not an object, no run_id or status,
    an unknown status, a newer schema)."""
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read().decode("utf-8"))
    except OSError as exc:
        return None, f"unreadable ({exc.strerror or exc})"
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except ValueError as exc:
        return None, f"not valid JSON ({str(exc).split(':')[0]})"
    try:
        return Record.from_dict(data), None
    except RecordError as exc:
        return None, str(exc)


# RESULTS/models/RUN_ID/: the models `bench run --save-models` keeps (config and tokenizer JSON, not records)
MODELS_DIR = "models"


def iter_records(results_dir: str | Path, skipped: list[str] | None = None,
                 warn=None) -> Iterator[Record]:
    """Every usable record under `results_dir` (recursively), oldest first. A file that is not a
    readable record is skipped and named: a line to `warn` (default: stderr) and, when given,
    `skipped`; a record with fields of the wrong type is read without them, and said so."""
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
        folders = p.relative_to(root).parts[:-1]
        if p.name.startswith(".") or any(part.startswith(".") for part in folders) or folders[:1] == (MODELS_DIR,):
            continue
        rec, why = load_record(p)
        if why:
            note = f"{p}: {why}"
            say(f"warning: skipped {note}")
            if skipped is not None:
                skipped.append(note)
            continue
        if rec.odd:
            say(f"warning: {p}: {', '.join(rec.odd)} missing or of the wrong type; shown without it")
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


def last_written(path: str | Path) -> Record | None:
    """The record at `path`, or the attempt kept beside it (`attempt_path`) where that was written later."""
    path = Path(path)
    rec, aside = read_record(path), attempt_path(path)
    try:
        if aside.stat().st_mtime_ns >= path.stat().st_mtime_ns:
            return read_record(aside) or rec
    except OSError:
        pass
    return rec


def is_done(results_dir: str | Path, run_id: str) -> bool:
    rec = read_record(record_path(results_dir, run_id))
    return rec is not None and rec.status == "ok"


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
