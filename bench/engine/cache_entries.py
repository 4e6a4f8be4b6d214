"""Cache entries that heal themselves. Every entry is written under a temporary name and renamed
(another process never sees half of one), and carries the key it was built for and a checksum of
what was written. On load both are checked, with the shape the reader expects; any mismatch (a
truncated file, a planted array of the right shape but other content, an entry of another key) is one
`warning:` line, and the caller rebuilds the entry.

Two kinds: arrays (`.npz`, read with allow_pickle=False: data at worst, never code) for token ids and
embeddings, and folders (converted or random model weights) with a manifest of their files' sizes
and checksums."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

FORMAT = 2  # of the entries written here; 1 was arrays with no key or checksum
META = "__meta__"
MANIFEST = ".ftbench-manifest.json"
WHOLE_HASH_BYTES = 2 << 30  # files up to this are hashed whole on load; larger ones by sampled blocks
SAMPLE_BLOCKS, SAMPLE_BYTES = 64, 1 << 20


def warn_rebuild(path: Path, why: str) -> None:
    print(f"warning: cache entry {path} {why}; rebuilding it", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- arrays

def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_arrays(path: Path, key: str, **arrays: np.ndarray) -> str | None:
    """Write `arrays` with their key and checksum, atomically; None when written, else why not (a
    full or read-only cache costs the next run a rebuild, not this run)."""
    meta = json.dumps({"format": FORMAT, "key": key, "digest": arrays_digest(arrays)}).encode()
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **{META: np.frombuffer(meta, dtype=np.uint8)}, **arrays)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return exc.strerror or str(exc)
    return None


def load_arrays(path: Path, key: str, check: Callable[[dict[str, np.ndarray]], str | None]
                ) -> dict[str, np.ndarray] | None:
    """The entry's arrays, or None: absent (silently), or not what was written for `key` (one
    warning). `check` returns why the arrays do not fit the reader (shape, rows, dtype), or None."""
    if not path.exists():
        return None
    why = None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    except Exception as exc:  # noqa: BLE001 - truncated, not an npz, a pickle: all rebuilt
        arrays, why = {}, f"is not a readable array file ({type(exc).__name__})"
    if why is None:
        meta = _meta(arrays.pop(META, None))
        if meta is None:
            why = "carries no key or checksum (not written by this ftbench)"
        elif meta.get("key") != key:
            why = "was built for other data or settings"
        elif meta.get("digest") != arrays_digest(arrays):
            why = "does not match the checksum it was written with (damaged or changed)"
        else:
            why = check(arrays)
    if why is not None:
        warn_rebuild(path, why)
        return None
    return arrays


def _meta(raw: np.ndarray | None) -> dict | None:
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        return None
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except ValueError:
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None


# ---------------------------------------------------------------- folders

def file_digest(path: Path, size: int) -> str:
    """sha256 of the whole file, or (over WHOLE_HASH_BYTES, where hashing every load would cost more
    than the load) of SAMPLE_BLOCKS blocks spread over it; the size is checked apart."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        if size <= WHOLE_HASH_BYTES:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
        else:
            for i in range(SAMPLE_BLOCKS):
                fh.seek(i * (size - SAMPLE_BYTES) // (SAMPLE_BLOCKS - 1))
                h.update(fh.read(SAMPLE_BYTES))
    return h.hexdigest()


def write_manifest(folder: Path, key: str) -> None:
    """Inside a folder still being built: the key and every file's size and checksum."""
    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            size = p.stat().st_size
            files[str(p.relative_to(folder))] = {"size": size, "sha256": file_digest(p, size)}
    (folder / MANIFEST).write_text(json.dumps({"format": FORMAT, "key": key, "files": files}, indent=1))


_verified: dict[str, str] = {}  # folder -> key, checked once per process


def folder_problem(folder: Path, key: str) -> str | None:
    """Why the cached folder is not the one built for `key` (None: it is): no manifest, another key,
    a file missing, of another size or checksum."""
    if _verified.get(str(folder)) == key:
        return None
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return "has no manifest of its files (built by an older ftbench, or half-copied)"
    if (not isinstance(manifest, dict) or manifest.get("format") != FORMAT
            or not isinstance(manifest.get("files"), dict)):
        return "has a manifest this ftbench does not read"
    if manifest.get("key") != key:
        return "was built for another source"
    for name, want in manifest["files"].items():
        p = folder / name
        try:
            size = p.stat().st_size
        except OSError:
            return f"lacks {name}"
        if not isinstance(want, dict) or size != want.get("size"):
            return f"has {name} of {size:,} bytes, not the {want.get('size'):,} written" if isinstance(want, dict) \
                else "has a damaged manifest"
        if file_digest(p, size) != want.get("sha256"):
            return f"has {name} changed since it was written (checksum)"
    _verified[str(folder)] = key
    return None


def ready_folder(target: Path, key: str) -> bool:
    """Whether `target` holds the folder built for `key`; a damaged one is moved away (with a
    warning), so the caller builds it again."""
    if not target.exists():
        return False
    why = folder_problem(target, key)
    if why is None:
        return True
    warn_rebuild(target, why)
    discard(target)
    return False


def discard(target: Path) -> None:
    """Rename away, then delete: a reader never sees a folder half-deleted."""
    aside = target.with_name(f".stale-{target.name[:40]}-{os.getpid()}-{np.random.randint(1 << 30)}")
    try:
        os.rename(target, aside)
    except OSError:  # another process moved it first
        return
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def building(target: Path, key: str):
    """A temporary folder beside `target`, given its manifest and renamed to it when the block
    succeeds (whole or not at all, for other processes reading the cache); where another process got
    there first, theirs is kept."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name[:20]}-", dir=target.parent))
    try:
        yield tmp
        write_manifest(tmp, key)
        try:
            os.rename(tmp, target)
        except OSError:  # another process built it first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
