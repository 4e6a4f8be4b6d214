"""Leg feature-extract: the suite's cached-embedding feature extraction (cold cache, then warm)
against benchmarks/handwritten_frozen_mlp.py, seed 003's frozen backbone run inside every epoch."""

from __future__ import annotations

from typing import Any

from bench.commands.perf.harness import (Leg, Workspace, accuracy_gap, compare, data_flags, failed, fmt, median_of,
                                         ratio, ratio_text, run_script, run_suite, suite_spec)
from bench.core.errors import BenchError


def run_feature_extract_leg(args, ws: Workspace) -> dict[str, Any]:
    """The suite's cached-embedding feature-extract (cold, then warm) against seed 003's approach."""
    from bench.engine.models import resolve_model

    overrides: dict[str, Any] = {"head": "mlp", "hidden": args.fe_hidden, "epochs": args.fe_epochs,
                                 "batch_size": 32, "normalize": False}
    if args.max_length:
        overrides["max_length"] = args.max_length
    spec = suite_spec("feature-extract", args, overrides, ws.results("feature-extract"))
    p = spec.params
    ref = resolve_model(spec.model)
    pooling = p["pooling"] if p["pooling"] != "auto" else ("last" if ref.architecture == "decoder" else "mean")
    if pooling not in ("mean", "cls"):
        raise BenchError(f"the feature-extract leg compares encoders (mean or cls pooling); {spec.model} "
                         f"pools '{pooling}': use --param feature-extract.pooling=mean")
    argv = ["--model", ref.local_path(log=print), *data_flags(args), "--max-length", str(p["max_length"]),
            "--hidden", str(p["hidden"]), "--lr", str(p["lr"]), "--epochs", str(p["epochs"]),
            "--batch-size", str(p["batch_size"]), "--pooling", pooling]
    warm_runs = []

    def suite_cold_then_warm(r):
        cold = run_suite(spec, ws, f"fe-{r}", f"fe-cold-{r}", args.verbose)  # a fresh, empty cache
        warm_runs.append(run_suite(spec, ws, f"fe-{r}", f"fe-warm-{r}", args.verbose))  # same cache, now filled
        return cold

    cold, hand = compare(suite_cold_then_warm, lambda r: run_script("handwritten_frozen_mlp.py", argv, args.verbose),
                         args.repeats)
    warm = median_of(warm_runs)
    leg = {"leg": "feature-extract", "model": spec.model, "params": p, "suite": cold, "suite_warm": warm,
           "handwritten": hand, "ratio": ratio(cold, hand), "ratio_warm": ratio(warm, hand),
           "ratio_cpu": ratio(cold, hand, "cpu_s"), "ratio_warm_cpu": ratio(warm, hand, "cpu_s"),
           "speedup": inverse(ratio(cold, hand)), "speedup_warm": inverse(ratio(warm, hand)),
           "accuracy_gap_points": accuracy_gap(cold, hand)}
    if hand.get("status") == "ok" and cold.get("status") == "ok":
        # the hand-written side repeats the backbone pass every epoch: its time grows linearly in
        # epochs, the suite's cold time barely moves (an MLP epoch on cached embeddings is ~ms)
        d = hand["details"]
        leg["work_ratio_backbone_passes"] = round(d["backbone_forward_examples"] / (d["n_train"] + d["n_val"] + d["n_test"]), 2)
        per_epoch = hand["time_s"]["train"] / p["epochs"]
        fixed = hand["wall_s"] - hand["time_s"]["train"]
        leg["handwritten_s_per_epoch"] = round(per_epoch, 2)
        leg["epochs_for_10x_cold"] = int(max(1, -(-(10 * cold["wall_s"] - fixed) // per_epoch)))
    return leg


def inverse(x):
    return round(1 / x, 2) if x else None


class FeatureExtractLeg(Leg):
    name = "feature-extract"

    def run(self, args, ws: Workspace) -> dict[str, Any]:
        return run_feature_extract_leg(args, ws)

    def rows(self, leg: dict[str, Any]) -> list[tuple]:
        s, w, h = leg["suite"], leg["suite_warm"], leg["handwritten"]
        return [
            (self.name, "suite, cold cache", fmt(s.get("wall_s")), fmt(s.get("cpu_s")), fmt(s.get("accuracy"), ".3f"),
             "", f"{fmt(leg.get('speedup'), '.1f')}x faster (wall)" if s.get("status") == "ok" else failed(s)),
            ("", "suite, warm cache", fmt(w.get("wall_s")), fmt(w.get("cpu_s")), fmt(w.get("accuracy"), ".3f"), "",
             f"{fmt(leg.get('speedup_warm'), '.1f')}x faster (wall)" if w.get("status") == "ok" else failed(w)),
            ("", f"seed 003 ({leg['params']['epochs']} epochs)", fmt(h.get("wall_s")), fmt(h.get("cpu_s")),
             fmt(h.get("accuracy"), ".3f"), f"{ratio_text(leg)} cold, {ratio_text(leg, 'ratio_warm')} warm",
             f"10x cold from {leg.get('epochs_for_10x_cold', '-')} epochs" if h.get("status") == "ok" else failed(h)),
        ]


FEATURE_EXTRACT = FeatureExtractLeg()
