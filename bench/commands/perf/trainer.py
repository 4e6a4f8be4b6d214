"""Legs full-ft and lora: the suite's run against benchmarks/handwritten_trainer.py (the seed
article's Trainer script) with the same data, hyperparameters, model files and precision."""

from __future__ import annotations

import time
from typing import Any

from bench.commands.perf.harness import (Leg, Workspace, accuracy_gap, compare, data_flags, failed, fmt,
                                         handwritten_precision, ratio, ratio_text, run_script, run_suite, suite_spec)
from bench.core.errors import BenchError


def run_trainer_leg(strategy: str, args, ws: Workspace) -> dict[str, Any]:
    """full-ft or lora: the suite against the seed-style Trainer script."""
    from bench.engine.models import resolve_model
    from bench.engine.training import EVAL_BATCH_SIZE

    overrides: dict[str, Any] = {"class_weights": True}
    if args.epochs:
        overrides["epochs"] = args.epochs
    if args.max_length:
        overrides["max_length"] = args.max_length
    spec = suite_spec(strategy, args, overrides, ws.results(strategy))
    p = spec.params
    ref = resolve_model(spec.model)
    t = time.perf_counter()
    path = ref.local_path(log=print)  # a GGUF alias is converted here, once, outside both timings
    convert_s = time.perf_counter() - t
    eval_bs = EVAL_BATCH_SIZE
    argv = ["--strategy", strategy, "--model", path, *data_flags(args), "--lr", str(p["lr"]),
            "--epochs", str(p["epochs"]), "--batch-size", str(p["batch_size"]),
            "--eval-batch-size", str(eval_bs), "--test-batch-size", str(eval_bs),
            "--max-length", str(p["max_length"]), "--weight-decay", str(p.get("weight_decay", 0.0)),
            "--warmup-ratio", str(p.get("warmup_ratio", 0.0)), *handwritten_precision(spec)]
    if "r" in p:  # a LoRA strategy: the script gets the same adapters
        targets = p.get("target_modules")
        if not targets:
            from strategies.shared.adapters import ATTENTION_PROJECTIONS

            targets = list(ATTENTION_PROJECTIONS[0 if ref.architecture == "decoder" else 1])
        if isinstance(targets, str):
            targets = targets.split(",")
        argv += ["--lora-r", str(p["r"]), "--lora-alpha", str(p["alpha"]), "--lora-dropout", str(p["dropout"]),
                 "--lora-targets", ",".join(targets)]
    # the script measures no serving, so neither does this side: the same job on both
    suite, hand = compare(lambda r: run_suite(spec, ws, f"{strategy}-{r}", f"{strategy}-{r}", args.verbose,
                                              serving=False),
                          lambda r: run_script("handwritten_trainer.py", argv, args.verbose), args.repeats)
    return {"leg": strategy, "model": spec.model, "device": spec.device, "precision": spec.precision,
            "random_weights": ref.random_weights, "params": p, "suite": suite, "handwritten": hand,
            "ratio": ratio(suite, hand), "ratio_cpu": ratio(suite, hand, "cpu_s"),
            "accuracy_gap_points": accuracy_gap(suite, hand),
            "model_conversion_s": round(convert_s, 2)}


class TrainerLeg(Leg):
    def __init__(self, strategy: str):
        self.name = strategy

    def run(self, args, ws: Workspace) -> dict[str, Any]:
        from strategies import get_strategy

        try:
            get_strategy(self.name)
        except (ImportError, BenchError) as exc:
            print(f"  skipped: the suite's {self.name} is not usable here ({exc})")
            return {"leg": self.name, "skipped": f"{type(exc).__name__}: {exc}"}
        return run_trainer_leg(self.name, args, ws)

    def rows(self, leg: dict[str, Any]) -> list[tuple]:
        s, h = leg["suite"], leg["handwritten"]

        def acc(side):  # random weights: an accuracy that is no result
            return "random" if leg.get("random_weights") else fmt(side.get("accuracy"), ".3f")

        return [(self.name, f"suite [{leg['model']}]", fmt(s.get("wall_s")), fmt(s.get("cpu_s")), acc(s), "",
                 f"train MFU {fmt(s.get('train_mfu'), '.3f')}" if s.get("status") == "ok" else failed(s)),
                ("", "hand-written Trainer", fmt(h.get("wall_s")), fmt(h.get("cpu_s")), acc(h), ratio_text(leg),
                 "" if h.get("status") == "ok" else failed(h))]


FULL_FT = TrainerLeg("full-ft")
LORA = TrainerLeg("lora")
