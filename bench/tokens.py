"""Tokenization done once per (tokenizer, texts, max length) and cached on disk, so the
strategies of one `bench run` (each in its own process) share it."""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.models import cache_root


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
    path = cache_root() / "tokens" / f"{key.hexdigest()[:24]}.pkl"
    ids = None
    if cache and path.exists():
        try:
            ids = pickle.loads(path.read_bytes())
        except Exception:  # noqa: BLE001 - a corrupt cache entry is rebuilt
            ids = None
    if ids is None:
        ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{np.random.randint(1 << 30)}.tmp")
            tmp.write_bytes(pickle.dumps(ids, protocol=pickle.HIGHEST_PROTOCOL))
            tmp.replace(path)
    return Encoded([list(x) for x in ids], np.asarray(labels, dtype=np.int64))
