"""Helpers of the fault-injection suite: the real CLI in subprocesses (the checkout under test
first on PYTHONPATH), waiting on files and processes, and what a clean failure looks like."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.core.records import iter_records
from tests.conftest import ROOT

# A run that lasts until stopped: feature-extract's MLP head (the embeddings of 5+2+5 rows a class
# are computed in a second, then cached) trained for a million epochs.
ENDLESS = ["--strategies", "feature-extract", "--per-class", "5,2,5", "--param", "feature-extract.head=mlp",
           "--param", "feature-extract.epochs=1000000"]
QUICK = ["--strategies", "feature-extract", "--per-class", "5,2,5"]


def env(**extra) -> dict:
    out = dict(os.environ, FTBENCH_QUIET="1", PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1", **extra)
    out["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p])
    return out


def bench(*args: str, timeout: float = 300, extra_env: dict | None = None, prefix: list[str] | None = None):
    """`bench ARGS` to the end; CompletedProcess with text stdout/stderr."""
    return subprocess.run([*(prefix or []), sys.executable, "-m", "bench.commands.cli", *args], cwd=ROOT,
                          env=env(**(extra_env or {})), capture_output=True, text=True, timeout=timeout)


def start(*args: str, extra_env: dict | None = None) -> subprocess.Popen:
    """`bench ARGS` in the background, in its own session (signals reach it alone), SIGINT not ignored."""
    return subprocess.Popen([sys.executable, "-m", "bench.commands.cli", *args], cwd=ROOT, env=env(**(extra_env or {})),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _children(pid: int) -> list[tuple[int, list[bytes]]]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append((int(entry.name), cmd))
    return out


def workers_of(pid: int) -> list[int]:
    """The workers of bench process `pid` (from /proc): its bench.running.worker children, and the
    children of its preloaded server (bench/running/preloaded.py), which are forks of the server."""
    out = []
    for child, cmd in _children(pid):
        if b"bench.running.worker" in cmd:
            out.append(child)
        elif b"bench.running.preloaded" in cmd:
            out.extend(grandchild for grandchild, _ in _children(child))
    return out


def server_of(pid: int) -> int | None:
    """The preloaded server of bench process `pid`, if it started one."""
    return next((child for child, cmd in _children(pid) if b"bench.running.preloaded" in cmd), None)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(cond, timeout: float = 120, step: float = 0.2, what: str = "a condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_training(proc: subprocess.Popen, timeout: float = 180) -> int:
    """The worker's pid once it is training (its first epoch reported on stderr is too late for
    -q runs; its embeddings cached is a good sign): we wait until it has run for 4 s."""
    worker = wait_for(lambda: workers_of(proc.pid), timeout, what="the worker to start")[0]
    time.sleep(4)
    return worker


def statuses(folder: Path) -> dict[str, str]:
    return {r.run_id: r.status for r in iter_records(folder, warn=lambda line: None)}


def records(folder: Path) -> list[dict]:
    return [r.to_dict() for r in iter_records(folder, warn=lambda line: None)]


def clean_failure(stderr: str) -> list[str]:
    """The error lines of a failure that must be one clean line: asserts no traceback."""
    assert "Traceback" not in stderr, stderr[-3000:]
    return [ln for ln in stderr.splitlines() if ln.startswith("error:")]


def files_under(folder: Path) -> list[Path]:
    return [p for p in Path(folder).rglob("*") if p.is_file()] if Path(folder).exists() else []


# fixtures (imported by the test modules: a conftest.py here would shadow tests/conftest.py's module name)

@pytest.fixture(scope="session")
def finished(tmp_path_factory) -> Path:
    """A results folder holding one finished (ok) quick run, made once; tests copy it."""
    folder = tmp_path_factory.mktemp("finished") / "results"
    out = bench("run", *QUICK, "--results-dir", str(folder), "--no-report")
    assert out.returncode == 0, out.stderr[-2000:]
    return folder


@pytest.fixture
def copy_finished(finished):
    def copy(to: Path) -> tuple[Path, dict]:
        shutil.copytree(finished, to)
        return to, {p.name: p.read_bytes() for p in to.glob("*.json")}

    return copy
