"""Leg default-run: what a plain `bench run` does (the default strategies, embedded data, seed 0),
each run in its worker process, then the report; the total wall time and each strategy's."""

from __future__ import annotations

import time
from typing import Any

from bench.commands.perf.harness import Leg, Workspace, failed, fmt, mfu_note, run_suite
from bench.core.errors import BenchError


def run_default_run_leg(args, ws: Workspace) -> dict[str, Any]:
    """What `bench run` does with no flags (all five strategies, embedded data, seed 0), each run in
    its worker process, then the report; fresh token/embedding caches."""
    from bench.running.config import Experiment
    from bench.running.plan import plan
    from bench.reporting.report import render_report

    t0 = time.perf_counter()
    results = ws.results("default-run")
    exp = Experiment(results_dir=str(results))
    specs = plan(exp)
    plan_s = time.perf_counter() - t0
    runs = []
    for spec in specs:
        print(f"  default-run: {spec.label()} ...", flush=True)
        r = run_suite(spec, ws, "default-run", "default-run", args.verbose)
        r["strategy"] = spec.strategy
        r["model"] = spec.model
        runs.append(r)
        print(f"    {r['status']} in {r['wall_s']:.0f} s, accuracy {fmt(r.get('accuracy'), '.3f')}", flush=True)
    t = time.perf_counter()
    try:
        render_report(results, ws.root / "default-run-report.html")
        report_s = time.perf_counter() - t
    except BenchError as exc:
        report_s = None
        print(f"  report not rendered: {exc}")
    total = time.perf_counter() - t0
    ok = [r for r in runs if r["status"] == "ok"]
    best = max(ok, key=lambda r: r["accuracy"]) if ok else None
    slowest = max(runs, key=lambda r: r["wall_s"]) if runs else None
    return {"leg": "default-run", "total_s": round(total, 1), "plan_s": round(plan_s, 2),
            "report_s": None if report_s is None else round(report_s, 2), "runs": runs,
            "best_strategy": best and best["strategy"], "best_accuracy": best and best["accuracy"],
            "slowest_strategy": slowest and slowest["strategy"],
            "per_class": list(specs[0].per_class) if specs else None}


class DefaultRunLeg(Leg):
    name = "default-run"

    def run(self, args, ws: Workspace) -> dict[str, Any]:
        return run_default_run_leg(args, ws)

    def rows(self, leg: dict[str, Any]) -> list[tuple]:
        rows = [(self.name if i == 0 else "", f"{r['strategy']} [{r['model']}]", fmt(r["wall_s"]), fmt(r.get("cpu_s")),
                 fmt(r.get("accuracy"), ".3f"), "", mfu_note(r) if r["status"] == "ok" else failed(r))
                for i, r in enumerate(leg["runs"])]
        return rows + [("", "total (with report)", fmt(leg["total_s"]), "", fmt(leg.get("best_accuracy"), ".3f"), "",
                        f"best: {leg.get('best_strategy')}")]


DEFAULT_RUN = DefaultRunLeg()
