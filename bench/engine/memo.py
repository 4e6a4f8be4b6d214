"""Figures that cost seconds to find and never change for the same inputs (a model's FLOPs shape, the
arguments a model class's forward takes, a measured peak), found once and kept as JSON under the
cache folder. An unreadable or unwritable cache only means finding them again."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable


def remembered(kind: str, key: Any, find: Callable[[], Any], folder: Path | None = None) -> Any:
    """`find()`'s JSON-able value for `key` (any JSON-able value), found once and then read back
    from `folder` (default: the cache folder's `kind/`)."""
    if folder is None:
        from bench.engine.models import cache_root

        folder = cache_root() / kind
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]
    path = Path(folder) / f"{digest}.json"
    try:
        entry = json.loads(path.read_text())
        if entry["key"] == json.loads(json.dumps(key, default=str)):  # an entry of another key is found again
            return entry["value"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # missing, truncated or foreign: found again and rewritten
    value = find()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"key": key, "value": value}, default=str))
        tmp.replace(path)
    except OSError:
        pass
    return value
