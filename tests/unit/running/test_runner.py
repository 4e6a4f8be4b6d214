"""Runs through the CLI on tiny models: a complete record, skipping, a crash recorded, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from bench.core.records import iter_records
from tests.conftest import ROOT, run_bench

CONTRACT = {"schema", "run_id", "status", "error", "strategy", "seed", "model", "dataset", "params", "metrics",
            "baseline", "history", "cost", "env"}


COST = {"trainable_params", "total_params", "peak_rss_mb", "peak_gpu_allocated_mb", "peak_gpu_reserved_mb",
        "time_s", "train_examples_per_s", "eval_examples_per_s"}


def records(folder):
    return {r.strategy: r.to_dict() for r in iter_records(folder)}


def test_tiny_full_ft_run_writes_a_complete_record_and_is_skipped_after(tmp_path, tiny_bert):
    args = ["run", "--strategies", "full-ft,feature-extract", "--model", str(tiny_bert), "--per-class", "6,2,4",
            "--param", "epochs=2", "--param", "max_length=32", "--results-dir", str(tmp_path / "r"),
            "-o", str(tmp_path / "report.html")]
    first = run_bench(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    recs = records(tmp_path / "r")
    assert set(recs) == {"full-ft", "feature-extract"}
    ft = recs["full-ft"]
    assert CONTRACT <= set(ft) and COST <= set(ft["cost"]) and ft["status"] == "ok"
    assert set(ft["cost"]["time_s"]) >= {"load", "train", "eval", "total"}
    assert ft["dataset"]["n_train"] == 30 and ft["dataset"]["n_test"] == 20
    assert len(ft["dataset"]["split_ids"]["test"]) == 20
    assert [h["epoch"] for h in ft["history"]] == [1, 2] and ft["baseline"] is not None
    assert ft["cost"]["trainable_params"] == ft["cost"]["total_params"] > 0
    fe = recs["feature-extract"]
    assert fe["cost"]["trainable_params"] == 32 * 5 + 5  # the head alone: hidden x classes + bias
    assert fe["cost"]["total_params"] > 1_000_000
    assert 0 <= ft["metrics"]["accuracy"] <= 1 and len(ft["metrics"]["confusion"]) == 5
    assert (tmp_path / "report.html").exists() and (tmp_path / "report.csv").exists()
    t = time.perf_counter()
    again = run_bench(*args)
    assert again.returncode == 0 and again.stdout.count("skipped") == 2
    assert time.perf_counter() - t < 60
    assert records(tmp_path / "r")["full-ft"]["finished_at"] == ft["finished_at"]  # untouched


def test_a_crashing_run_gets_a_failed_record_and_the_others_go_on(tmp_path, tiny_bert):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_bert, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    out = run_bench("run", "--strategies", "full-ft", "--model", str(broken), "--per-class", "4,2,2",
                    "--results-dir", str(tmp_path / "r"), "--no-report")
    assert out.returncode == 1
    rec = records(tmp_path / "r")["full-ft"]
    assert rec["status"] == "failed" and rec["error"] and rec["metrics"] is None


def test_ctrl_c_cancels_the_running_run_and_keeps_finished_records(tmp_path, tiny_bert):
    results = tmp_path / "r"
    env = dict(os.environ, FTBENCH_QUIET="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.commands.cli", "run", "--strategies", "feature-extract,full-ft", "--model",
         str(tiny_bert), "--per-class", "40,10,20", "--param", "full-ft.epochs=200", "--param", "max_length=64",
         "--results-dir", str(results), "--no-report"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        # a test session started in the background (`cmd &`) inherits SIGINT ignored; a terminal's bench has it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while time.time() < deadline and not any(r.strategy == "feature-extract" for r in iter_records(results)):
        time.sleep(0.5)
    time.sleep(8)  # well inside full-ft's training
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    recs = records(results)
    assert recs["feature-extract"]["status"] == "ok"
    assert recs["full-ft"]["status"] == "cancelled" and recs["full-ft"]["metrics"] is None
