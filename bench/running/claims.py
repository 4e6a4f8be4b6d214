"""Per-run claim files, so two `bench run` processes on one results folder never run one run twice.

A claim is an exclusive `flock` on RESULTS/.claims/RUN_ID.lock, held by the parent while its worker
runs. The kernel drops it when the holder exits, however it exits (kill -9 included), so a claim
is never stale. The lock file holds the claimant's pid, for the message of the one that waits."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

CLAIMS = ".claims"


class Claim:
    def __init__(self, results_dir: str | Path, run_id: str):
        self.path = Path(results_dir) / CLAIMS / f"{run_id}.lock"
        self.fd: int | None = None

    def take(self, wait: bool = False) -> bool:
        """True when this process now holds the claim; False when another one does (wait=False)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        try:  # the pid is only for the other process's message: a full disk must not stop us here
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass
        self.fd = fd
        return True

    def holder(self) -> str:
        """The pid of the process holding the claim, as text ('?' when unreadable)."""
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()
