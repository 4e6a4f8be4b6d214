"""Tokenization done once per (tokenizer, texts, max length) and cached on disk, so the
strategies of one `bench run` (each in its own process) share it.

The cache holds plain integer arrays (.npz read with allow_pickle=False): a file planted in the
cache folder can be wrong data at worst (the lengths are checked), never code that runs."""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.engine.models import cache_root


@dataclass
class Encoded:
    input_ids: list[list[int]]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def n_tokens(self) -> int:
        return int(self.lengths().sum())


def tokenizer_identity(tokenizer) -> str:
    vocab = tokenizer.get_vocab()
    h = hashlib.sha256(f"{type(tokenizer).__name__}|{len(vocab)}|{tokenizer.name_or_path}".encode())
    for tok in sorted(vocab)[:: max(1, len(vocab) // 512)]:  # a sample: cheap yet vocab-specific
        h.update(f"{tok}={vocab[tok]};".encode("utf-8", "replace"))
    return h.hexdigest()[:16]


def encode(tokenizer, texts: list[str], labels, max_length: int, cache: bool = True) -> Encoded:
    """Token ids truncated to max_length (special tokens included), no padding: batches pad
    dynamically to their own longest row."""
    key = hashlib.sha256()
    key.update(f"{tokenizer_identity(tokenizer)}|{max_length}|{len(texts)}".encode())
    for t in texts:
        key.update(t.encode("utf-8", "replace") + b"\x00")
    path = cache_root() / "tokens" / f"{key.hexdigest()[:24]}.npz"
    ids = load_ids(path, len(texts)) if cache else None
    if ids is None:
        ids = [list(x) for x in tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]]
        if cache:
            save_ids(path, ids)
    return Encoded(ids, np.asarray(labels, dtype=np.int64))


def save_ids(path: Path, ids: list[list[int]]) -> None:
    """Rows of token ids as one flat int32 array and the row lengths, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lengths = np.fromiter((len(r) for r in ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter((t for r in ids for t in r), dtype=np.int32, count=int(lengths.sum()))
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{np.random.randint(1 << 30)}.npz")
    try:
        np.savez(tmp, flat=flat, lengths=lengths)
        tmp.replace(path)
    except OSError:  # a full or read-only cache only costs the next run a re-tokenization
        with contextlib.suppress(OSError):
            tmp.unlink()


def load_ids(path: Path, n_rows: int) -> list[list[int]] | None:
    """The cached rows, or None when absent or not a well-formed entry (then it is rebuilt)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            flat, lengths = z["flat"], z["lengths"]
        if (flat.dtype != np.int32 or lengths.ndim != 1 or len(lengths) != n_rows or (lengths < 0).any()
                or int(lengths.sum()) != len(flat)):
            return None
    except Exception:  # noqa: BLE001 - a corrupt cache entry is rebuilt
        return None
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    flat_list = flat.tolist()
    return [flat_list[bounds[i]: bounds[i + 1]] for i in range(n_rows)]
