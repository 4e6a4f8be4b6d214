"""Tokenization done once per (tokenizer, texts, max length) and cached on disk, so the
strategies of one `bench run` (each in its own process) share it.

The cache holds plain integer arrays (.npz read with allow_pickle=False, bench/engine/cache_entries.py):
a file planted in the cache folder can be wrong data at worst, never code that runs, and an entry
that is not what was written for its key (truncated, zeroed, another key's) is rebuilt with a warning."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.engine.cache_entries import FORMAT, load_arrays, save_arrays
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
    key.update(f"tokens v{FORMAT}|{tokenizer_identity(tokenizer)}|{max_length}|{len(texts)}".encode())
    for t in texts:
        key.update(t.encode("utf-8", "replace") + b"\x00")
    digest = key.hexdigest()
    path = cache_root() / "tokens" / f"{digest[:24]}.npz"
    ids = load_ids(path, digest, len(texts)) if cache else None
    if ids is None:
        ids = [list(x) for x in tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]]
        if cache:
            save_ids(path, digest, ids)
    return Encoded(ids, np.asarray(labels, dtype=np.int64))


def save_ids(path: Path, key: str, ids: list[list[int]]) -> None:
    """Rows of token ids as one flat int32 array and the row lengths, written atomically with their
    key and checksum (a full or read-only cache only costs the next run a re-tokenization)."""
    lengths = np.fromiter((len(r) for r in ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter((t for r in ids for t in r), dtype=np.int32, count=int(lengths.sum()))
    save_arrays(path, key, flat=flat, lengths=lengths)


def load_ids(path: Path, key: str, n_rows: int) -> list[list[int]] | None:
    """The cached rows, or None when absent or not the entry written for `key` (then it is rebuilt)."""
    def misfit(a: dict) -> str | None:
        flat, lengths = a.get("flat"), a.get("lengths")
        if flat is None or lengths is None or flat.dtype != np.int32 or lengths.ndim != 1:
            return "is not a token-id entry"
        if len(lengths) != n_rows or (lengths < 0).any() or int(lengths.sum()) != len(flat):
            return f"holds {len(lengths)} rows, not the {n_rows} asked for"
        return None

    arrays = load_arrays(path, key, misfit)
    if arrays is None:
        return None
    bounds = np.concatenate([[0], np.cumsum(arrays["lengths"])])
    flat_list = arrays["flat"].tolist()
    return [flat_list[bounds[i]: bounds[i + 1]] for i in range(n_rows)]
