"""`bench perf`: how fast the suite is against hand-written scripts doing the same job, and where
its time goes. Every figure is measured in this one invocation, on the same data split,
hyperparameters, model files, precision and thread count on both sides, each side in its own
process (as the suite's runs are), so memory and time are clean.

Legs (`--legs`, comma-separated):

    full-ft          the suite's `full-ft` (MiniLM) against benchmarks/handwritten_trainer.py: the seed
                     article's Trainer script (CustomTrainer with class-weighted loss,
                     DataCollatorWithPadding, eval/save every epoch, load_best_model_at_end)
    lora             the suite's `lora` (SmolLM2) against the same script with the same LoRA config
    feature-extract  the suite's `feature-extract` (MLP head on embeddings computed once and cached)
                     against benchmarks/handwritten_frozen_mlp.py: seed 003's frozen backbone run
                     forward inside every epoch of training the MLP head (--fe-epochs, default 5).
                     The suite's side is timed cold (an empty embedding cache) and again warm.
    default-run      the default `bench run` (all five strategies, embedded data, one seed): total
                     wall time and the time of each strategy (minutes: leave it out to save them)
    profile          one training step of full-ft (MiniLM) and of lora (SmolLM2) under
                     torch.profiler: the top operators by self CPU time, and that step's MFU
    report           `bench report` on --report-records N records of a comparison (copies of one
                     real run, or of --report-from DIR's records; trials included): render time and
                     page size

The suite's runs go through bench.running.runner.run_one (the worker process `bench run` uses) into a
temporary results folder (never skipped: --force semantics) with a fresh cache folder (token ids and
embeddings cold; converted model weights reused from FTBENCH_CACHE/models). Both sides train class
weights on (the seed does; with per-class sampling the weights are uniform) and compute in fp32 unless
the device does bf16 natively. Wall times are whole processes: interpreter start, imports, model
load, training, evaluation; the full-ft and lora legs' suite side skips the serving measurement
(FTBENCH_SERVING=off), which the hand-written script does not do. The ratio is suite / hand-written
(below 1: the suite is faster).

Each leg is one module of this package and one line in LEGS (a `Leg`: bench/commands/perf/harness.py).

Figures go to --output (JSON, default reports/perf.json) and a table is printed. Timings on a
shared machine are noisy: compare the ratios, and use --repeats to alternate the sides.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.commands.perf.harness import Leg, Workspace
from bench.core.errors import BenchError

# name -> "module:object" (a Leg), imported only when asked for
LEGS = {
    "full-ft": "bench.commands.perf.trainer:FULL_FT",
    "lora": "bench.commands.perf.trainer:LORA",
    "feature-extract": "bench.commands.perf.frozen:FEATURE_EXTRACT",
    "default-run": "bench.commands.perf.default_run:DEFAULT_RUN",
    "profile": "bench.commands.perf.profile:PROFILE",
    "report": "bench.commands.perf.report_scale:REPORT",
}
DEFAULT_LEGS = "full-ft,lora,feature-extract,default-run"


def leg_object(name: str) -> Leg:
    module, obj = LEGS[name].split(":")
    return getattr(importlib.import_module(module), obj)


def add_arguments(p) -> None:
    """The `bench perf` flags (bench/commands/cli.py adds the subcommand with these)."""
    p.add_argument("--legs", default=DEFAULT_LEGS,
                   help=f"comma-separated, from {', '.join(LEGS)} (default: {DEFAULT_LEGS}; "
                        "default-run takes minutes, profile and report are opt-in)")
    p.add_argument("--model", help="model of the comparison legs (default: each strategy's default), e.g. "
                   "random:llama3-8b; the hand-written side loads the same files")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda: both sides run there")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                   help="both sides: bf16 autocast where the suite would use it (auto: where the device "
                        "does bf16 natively)")
    p.add_argument("--dataset", default="bbc-news", help="dataset of the comparison legs (default bbc-news; "
                   "ag_news with --data-opt dir=DIR has short texts of varied length)")
    p.add_argument("--data-opt", action="append", default=[], metavar="NAME=VALUE",
                   help="an option of the dataset's own, e.g. dir=DIR for ag_news's CSV folder (repeatable)")
    p.add_argument("--per-class", help="TRAIN,VAL,TEST rows per class for the comparison legs "
                   "(default: the dataset's default, 60,20,40 for bbc-news)")
    p.add_argument("--seed", type=int, default=0, help="data split and training seed (default 0)")
    p.add_argument("--epochs", type=int, help="epochs of full-ft and lora on both sides (default: the "
                   "strategies' defaults)")
    p.add_argument("--max-length", type=int, help="tokens per text for every comparison leg (default: "
                   "each strategy's default)")
    p.add_argument("--fe-epochs", type=int, default=5, help="MLP epochs of the feature-extract leg, "
                   "both sides (default 5, seed 003's)")
    p.add_argument("--fe-hidden", type=int, default=512, help="MLP hidden size of the feature-extract "
                   "leg, both sides (default 512, seed 003's)")
    p.add_argument("--param", action="append", default=[], metavar="STRATEGY.NAME=VALUE",
                   help="override a suite hyperparameter, passed to the hand-written side too where it "
                        "has it, e.g. --param lora.batch_size=4 (repeatable)")
    p.add_argument("--repeats", type=int, default=1, help="run each comparison this many times, "
                   "alternating which side goes first (an even number: each side pays a cold start "
                   "equally often); the medians are reported (default 1)")
    p.add_argument("--report-records", type=int, default=1000, help="report leg: records to render (default 1000)")
    p.add_argument("--report-from", metavar="DIR", help="report leg: copy the records of this results folder "
                   "(default: one feature-extract run made now)")
    p.add_argument("--output", default="reports/perf.json", help="JSON file of all figures "
                   "(default reports/perf.json)")
    p.add_argument("--keep", action="store_true", help="keep the temporary results/cache folders "
                   "(their paths are printed)")
    p.add_argument("-v", "--verbose", action="store_true", help="show the runs' progress bars and logs")


def print_table(report: dict) -> None:
    """The figures as a text table: wall and CPU seconds of each side, test accuracy, and the ratio
    suite / other (wall; CPU in brackets: CPU time is the steadier figure on a shared machine)."""
    rows = [("leg", "side", "wall s", "cpu s", "test acc", "ratio wall (cpu)", "notes")]
    for leg in report["legs"]:
        rows += leg_object(leg["leg"]).rows(leg)
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for j, r in enumerate(rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))
    for leg in report["legs"]:
        for note in leg_object(leg["leg"]).notes(leg):
            print(note)


def main(args) -> int:
    legs = [x.strip() for x in args.legs.split(",") if x.strip()]
    unknown = [x for x in legs if x not in LEGS]
    if unknown:
        raise BenchError(f"--legs {','.join(unknown)}: unknown; use some of {', '.join(LEGS)}")
    if args.repeats < 1:
        raise BenchError("--repeats must be at least 1")
    from bench.engine import flops
    from bench.engine.device import resolve_device, use_bf16
    from bench.engine.env import environment
    from bench.engine.trackers import cpu_threads

    import torch

    torch.set_num_threads(cpu_threads())
    device = resolve_device(args.device)
    peak, basis = flops.device_peak(device, use_bf16(device, args.precision))
    report: dict[str, Any] = {"command": "bench perf " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["perf"] else None,
                              "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "env": environment(device),
                              "peak_flops": peak, "peak_flops_basis": basis, "dataset": args.dataset,
                              "per_class": args.per_class, "seed": args.seed, "model": args.model,
                              "device": device, "precision": args.precision, "legs": []}
    try:
        load = os.getloadavg()
        report["load_average_at_start"] = [round(x, 2) for x in load]
    except OSError:
        pass
    ws = Workspace(args.keep)
    out = Path(args.output)
    try:
        for name in legs:
            print(f"== {name}", flush=True)
            t = time.perf_counter()
            leg = leg_object(name).run(args, ws)
            leg["leg_s"] = round(time.perf_counter() - t, 1)
            report["legs"].append(leg)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=1, default=str))  # after every leg: nothing lost
    finally:
        ws.close()
    try:
        report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    report["legs"] = [leg for leg in report["legs"] if "skipped" not in leg] + \
                     [leg for leg in report["legs"] if "skipped" in leg]
    out.write_text(json.dumps(report, indent=1, default=str))
    print()
    print_table({"legs": [leg for leg in report["legs"] if "skipped" not in leg]})
    for leg in report["legs"]:
        if "skipped" in leg:
            print(f"{leg['leg']}: skipped ({leg['skipped']})")
    print(f"\npeak: {basis}\nfigures: {out}")
    return 0
