"""Faults injected for real into the real CLI: kill -9 of the parent and of the worker, SIGTERM,
SIGINT, a memory limit a run exceeds, two `bench run` on one folder. After each: nothing left
running, no traceback, every finished record intact, the interrupted run recorded honestly."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest

from tests.faults.faultkit import (
    ENDLESS,
    QUICK,
    alive,
    bench,
    clean_failure,
    records,
    server_of,
    start,
    statuses,
    wait_for,
    wait_training,
    workers_of,
)


def spec_files() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "ftbench-spec-*")))


def assert_intact(folder: Path, before: dict) -> None:
    for name, content in before.items():
        assert (folder / name).read_bytes() == content, f"{name} changed"


# a fresh worker, and one forked from the preloaded server (bench/running/preloaded.py)
WORKER_KINDS = pytest.mark.parametrize("preload", ["off", "always"])


@WORKER_KINDS
def test_kill_9_of_the_parent_takes_its_worker_down_and_a_rerun_takes_the_run_over(tmp_path, copy_finished, preload):
    folder, before = copy_finished(tmp_path / "results")
    specs_before = spec_files()
    proc = start("run", *ENDLESS, "--results-dir", str(folder), "--no-report", extra_env={"FTBENCH_PRELOAD": preload})
    worker = wait_training(proc)
    server = server_of(proc.pid)
    assert (server is not None) == (preload == "always")
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    wait_for(lambda: not alive(worker), 10, what="the orphaned worker to die")
    if server is not None:
        wait_for(lambda: not alive(server), 10, what="the orphaned preloaded server to exit")
    assert spec_files() <= specs_before  # no spec file left in /tmp (none is written at all)
    assert_intact(folder, before)
    # at once a rerun runs it (the dead parent's claim went with it), and SIGTERM cancels it cleanly
    again = start("run", *ENDLESS, "--results-dir", str(folder), "-o", str(tmp_path / "report.html"))
    worker = wait_training(again)
    again.send_signal(signal.SIGTERM)
    out, err = again.communicate(timeout=90)
    assert again.returncode == 143, err
    assert "Traceback" not in err and "being run by another" not in out
    wait_for(lambda: not alive(worker), 10, what="the worker to exit")
    cancelled = [r for r in records(folder) if r["status"] == "cancelled"]
    assert len(cancelled) == 1 and "SIGTERM" in cancelled[0]["error"]
    assert (tmp_path / "report.html").exists()  # the report of what exists, after SIGTERM too
    assert_intact(folder, before)


@WORKER_KINDS
def test_sigint_to_the_parent_alone_cancels_the_run_and_exits_130(tmp_path, preload):
    folder = tmp_path / "results"
    proc = start("run", *ENDLESS, "--results-dir", str(folder), "--no-report", extra_env={"FTBENCH_PRELOAD": preload})
    worker = wait_training(proc)
    proc.send_signal(signal.SIGINT)  # the parent only, not its process group: it must pass it on
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and not alive(worker)
    (rec,) = records(folder)
    assert rec["status"] == "cancelled" and "SIGINT" in rec["error"] and rec["metrics"] is None


def test_kill_9_of_the_worker_is_failed_not_oom_and_the_matrix_goes_on(tmp_path, tiny_bert):
    folder = tmp_path / "results"
    proc = start("run", "--strategies", "feature-extract,full-ft", "--model", str(tiny_bert), "--per-class", "5,2,5",
                 "--param", "feature-extract.head=mlp", "--param", "feature-extract.epochs=1000000",
                 "--param", "full-ft.epochs=1", "--param", "max_length=32", "--results-dir", str(folder), "--no-report")
    worker = wait_training(proc)
    os.kill(worker, signal.SIGKILL)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    by_strategy = {r["strategy"]: r for r in records(folder)}
    killed = by_strategy["feature-extract"]
    assert killed["status"] == "failed", killed["error"]
    assert "worker killed by SIGKILL" in killed["error"] and "not out of memory" in killed["error"]
    assert by_strategy["full-ft"]["status"] == "ok"  # the next run went on


def test_a_run_over_its_memory_limit_is_recorded_oom(tmp_path):
    if not shutil.which("prlimit"):
        pytest.skip("prlimit (util-linux) is not installed")
    folder = tmp_path / "results"
    # 4.5 GB of address space: the worker needs ~2.5 GB (torch, the model); an MLP head of 4M hidden
    # units asks for a 6 GB weight matrix at once, so the allocation fails before any page is touched
    out = bench("run", "--strategies", "feature-extract", "--per-class", "5,2,5", "--param", "feature-extract.head=mlp",
                "--param", "feature-extract.hidden=4000000", "--results-dir", str(folder), "--no-report",
                prefix=["prlimit", f"--as={int(4.5 * 2**30)}"], extra_env={"MALLOC_ARENA_MAX": "2"}, timeout=240)
    assert out.returncode == 1, out.stderr[-2000:]
    errors = clean_failure(out.stderr)
    assert len(errors) == 1, out.stderr
    (rec,) = records(folder)
    assert rec["status"] == "oom", rec["error"]
    assert "allocate" in rec["error"].lower() or "memory" in rec["error"].lower()


def test_two_bench_run_on_one_folder_never_run_one_run_twice(tmp_path):
    folder = tmp_path / "results"
    args = ["run", *QUICK, "--seeds", "0,1", "--results-dir", str(folder), "--no-report"]
    first = start(*args)
    time.sleep(1.0)
    second = start(*args)
    outs = [p.communicate(timeout=400) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, [e[-2000:] for _, e in outs]
    started = [ln for out, _ in outs for ln in out.splitlines() if ln.endswith(" ...") and ": " not in ln]
    labels = [ln.split("] ", 1)[1] for ln in started]
    assert sorted(labels) == sorted(set(labels)) and len(labels) == 2, started  # each run started once
    assert sorted(statuses(folder).values()) == ["ok", "ok"]
    said = "\n".join(out for out, _ in outs)
    assert "being run by another bench process" in said or "skipped" in said


def test_a_forced_rerun_that_fails_keeps_the_ok_record_and_the_failure_beside_it(tmp_path, copy_finished):
    folder, before = copy_finished(tmp_path / "results")
    (done,) = records(folder)
    proc = start("run", *QUICK, "--force", "--results-dir", str(folder), "--no-report")
    worker = wait_for(lambda: workers_of(proc.pid), 120, what="the rerun's worker")[0]
    os.kill(worker, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "Traceback" not in err, err[-2000:]
    assert_intact(folder, before)  # the ok record, byte for byte
    attempt = folder / ".attempts" / f"{done['run_id']}.json"
    kept = json.loads(attempt.read_text())
    assert kept["status"] == "failed" and "SIGKILL" in kept["error"]
    assert "the earlier ok record is kept" in out and str(attempt) in out
    assert statuses(folder) == {done["run_id"]: "ok"}  # what the report and a rerun read
    rerun = bench("run", *QUICK, "--results-dir", str(folder), "--no-report")
    assert rerun.returncode == 0 and "skipped" in rerun.stdout
