"""Leg report: how `bench report` scales with the records of a comparison. N synthetic-but-valid
records (copies of real records: by default one feature-extract run made now on the embedded data,
or every record of --report-from DIR) laid out as a comparison of the default run's strategies
would write them, then `render_report` timed in this process: its wall and CPU time and the page's
size.

The copies keep the template's every block (config, env, cost, history, split ids) and change what
makes each its own run: run id, strategy, seed, the protocol block, a trial's study and number, and
the predictions (a few rows flipped, per copy), with the quality figures recomputed from them (the
per-run bootstrap intervals stay the template's). A fifth of the records are test runs (every
strategy, default and tuned, on --report-records / 50 seeds), the rest tuning trials, one in seven
pruned and one in thirteen failed, as a real study has them. Every pair of test runs is comparable
(one test split), the significance section's worst case."""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.commands.perf.harness import Leg, Workspace, fmt, run_suite, suite_spec
from bench.core.errors import BenchError

COMPARISON = "cmp-perf"


def layout(n: int, strategies: list[str]) -> tuple[int, int]:
    """(seeds, trials per strategy) for about n records: a fifth of them test runs."""
    seeds = max(1, n // 50)
    tests = 2 * len(strategies) * seeds
    return seeds, max(0, (n - tests) // len(strategies))


def templates(args, ws: Workspace) -> list[dict]:
    """The real records the copies are made of: --report-from's, else one run made now."""
    from bench.core.records import iter_records

    source = getattr(args, "report_from", None)
    if source:
        found = [r.to_dict() for r in iter_records(source) if r.status == "ok" and r.truth and r.predictions]
        if not found:
            raise BenchError(f"--report-from {source}: no ok record with predictions there; pass a results folder "
                             "of `bench run`, or leave it out to make one run now")
        return found
    spec = suite_spec("feature-extract", args, {}, ws.results("report-template"))
    print(f"  report: one real run for the records' shape ({spec.label()}) ...", flush=True)
    run = run_suite(spec, ws, "report-template", "report-template", args.verbose)
    if run["status"] != "ok":
        raise BenchError(f"the template run failed ({run.get('error')}); pass --report-from DIR with real records")
    return [r.to_dict() for r in iter_records(ws.results("report-template")) if r.status == "ok"]


def write_copies(sources: list[dict], n: int, folder: Path, strategies: list[str]) -> dict[str, int]:
    """About n records of one comparison into `folder`; how many of each kind were written."""
    from bench.core.metrics import classification_metrics
    from bench.core.records import write_record

    seeds, per_strategy = layout(n, strategies)
    rng = np.random.default_rng(0)
    counts = {"test": 0, "trial": 0}
    index = 0

    def copy_of(strategy: str, seed: int, flip: float) -> dict:
        nonlocal index
        rec = copy.deepcopy(sources[strategies.index(strategy) % len(sources)])  # one template per strategy
        index += 1
        truth = np.asarray(rec["truth"])
        labels = rec["dataset"]["labels"]
        wrong = rng.random(len(truth)) < flip
        preds = np.where(wrong, (truth + 1 + rng.integers(0, len(labels) - 1, len(truth))) % len(labels), truth)
        figures = classification_metrics(truth, preds, labels)
        rec["metrics"] = {**rec["metrics"], **figures}
        rec.update(run_id=f"perf{index:06d}", strategy=strategy, seed=seed, predictions=preds.tolist())
        rec["config"] = {**rec.get("config", {}), "strategy": strategy, "seed": seed}
        return rec

    for k, strategy in enumerate(strategies):
        block = {"name": COMPARISON, "budget": f"trials:{max(per_strategy, 1)}", "prefer": "train-time",
                 "study": f"{COMPARISON}-{strategy}"}
        for seed in range(seeds):
            for variant, flip in (("default", 0.06 + 0.02 * k), ("tuned", 0.04 + 0.02 * k)):
                rec = copy_of(strategy, seed, flip)
                rec["comparison"] = {**block, "role": "test", "variant": variant,
                                     "best_trial": 0 if variant == "tuned" else None}
                write_record(folder / f"{rec['run_id']}.json", rec)
                counts["test"] += 1
        for trial in range(per_strategy):
            rec = copy_of(strategy, 0, 0.05 + 0.1 * rng.random())
            state = "PRUNED" if trial % 7 == 6 else "FAIL" if trial % 13 == 12 else "COMPLETE"
            rec.update(eval_split="val", study={"name": block["study"], "trial": trial, "objective": "balanced_accuracy",
                                                "objectives": ["balanced_accuracy"], "pruner": "median"})
            rec["dataset"] = {**rec["dataset"], "split_ids": {**rec["dataset"].get("split_ids", {}), "test": []}}
            rec["comparison"] = {**block, "role": "trial", "holdout_seeds": list(range(seeds))}
            if state != "COMPLETE":
                rec.update(status="pruned" if state == "PRUNED" else "failed", metrics=None, predictions=None,
                           truth=None, error="pruned at epoch 2" if state == "PRUNED" else "RuntimeError: synthetic")
            write_record(folder / f"{rec['run_id']}.json", rec)
            counts["trial"] += 1
    return counts


def run_report_leg(args, ws: Workspace) -> dict[str, Any]:
    from bench.reporting.report import render_report
    from bench.running.config import default_run

    n = getattr(args, "report_records", 1000)
    if n < 10:
        raise BenchError(f"--report-records {n}: give at least 10")
    sources = templates(args, ws)
    folder = ws.results("report")
    folder.mkdir(parents=True, exist_ok=True)
    counts = write_copies(sources, n, folder, default_run())
    out = ws.root / "report" / "index.html"
    print(f"  report: rendering {counts['test'] + counts['trial']} records ({counts['trial']} trials) ...", flush=True)
    wall, cpu = time.perf_counter(), time.process_time()
    render_report(folder, out)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"leg": "report", "records": counts["test"] + counts["trial"], "tests": counts["test"],
            "trials": counts["trial"], "templates": len(sources), "render_s": round(wall, 2), "render_cpu_s": round(cpu, 2),
            "page_mb": round(os.path.getsize(out) / 1e6, 2), "page": str(out), "records_dir": str(folder)}


class ReportLeg(Leg):
    name = "report"

    def run(self, args, ws: Workspace) -> dict[str, Any]:
        return run_report_leg(args, ws)

    def rows(self, leg: dict[str, Any]) -> list[tuple]:
        return [(self.name, f"render {leg['records']} records ({leg['trials']} trials)", fmt(leg["render_s"]),
                 fmt(leg["render_cpu_s"]), "", "", f"page {leg['page_mb']:.2f} MB")]

    def notes(self, leg: dict[str, Any]) -> list[str]:
        return [f"report leg: records in {leg['records_dir']}, page {leg['page']} (kept with --keep)"]


REPORT = ReportLeg()
