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

The suite's runs go through bench.running.runner.run_one (the worker process `bench run` uses) into a
temporary results folder (never skipped: --force semantics) with a fresh cache folder (token ids and
embeddings cold; converted model weights reused from FTBENCH_CACHE/models). Both sides train class
weights on (the seed does; with per-class sampling the weights are uniform) and compute in fp32 unless
the device does bf16 natively. Wall times are whole processes: interpreter start, imports, model
load, training, evaluation. The ratio is suite / hand-written (below 1: the suite is faster).

Figures go to --output (JSON, default reports/perf.json) and a table is printed. Timings on a
shared machine are noisy: compare the ratios, and use --repeats to alternate the sides.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.core.errors import BenchError

LEGS = ("full-ft", "lora", "feature-extract", "default-run", "profile")
DEFAULT_LEGS = "full-ft,lora,feature-extract,default-run"
ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "benchmarks"


def add_arguments(p) -> None:
    """The `bench perf` flags (bench/commands/cli.py adds the subcommand with these)."""
    p.add_argument("--legs", default=DEFAULT_LEGS,
                   help=f"comma-separated, from {', '.join(LEGS)} (default: {DEFAULT_LEGS}; "
                        "default-run takes minutes, profile is opt-in)")
    p.add_argument("--model", help="model of the comparison legs (default: each strategy's default), e.g. "
                   "random:llama3-8b; the hand-written side loads the same files")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda: both sides run there")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                   help="both sides: bf16 autocast where the suite would use it (auto: where the device "
                        "does bf16 natively)")
    p.add_argument("--dataset", default="bbc-news", help="dataset of the comparison legs (default bbc-news; "
                   "ag_news with --ag-news-dir has short texts of varied length)")
    p.add_argument("--ag-news-dir", help="local folder of the AG News CSV files")
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
    p.add_argument("--output", default="reports/perf.json", help="JSON file of all figures "
                   "(default reports/perf.json)")
    p.add_argument("--keep", action="store_true", help="keep the temporary results/cache folders "
                   "(their paths are printed)")
    p.add_argument("-v", "--verbose", action="store_true", help="show the runs' progress bars and logs")


# ------------------------------------------------------------------------------------------ helpers

def _fmt(x, spec=".1f") -> str:
    return "-" if x is None else format(x, spec)


def _mfu_note(run: dict) -> str:
    """Training MFU where the run trained its model, else the forward passes' (zero-shot, feature-extract)."""
    for phase in ("train", "eval"):
        if run.get(f"{phase}_mfu") is not None:
            return f"{phase} MFU {run[f'{phase}_mfu']:.3f}"
    return ""


def _children_cpu_s() -> float:
    """User + system CPU seconds of this process's finished children (the runs we waited for)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class Workspace:
    """Temporary results and cache folders; converted model weights are shared with the user's cache
    (a symlink), everything else (token ids, embeddings) starts empty."""

    def __init__(self, keep: bool):
        from bench.engine.models import cache_root

        self.user_cache = cache_root()
        self.root = Path(tempfile.mkdtemp(prefix="ftbench-perf-"))
        self.keep = keep

    def cache(self, name: str) -> Path:
        path = self.root / f"cache-{name}"
        if not path.exists():
            path.mkdir(parents=True)
            models = self.user_cache / "models"
            models.mkdir(parents=True, exist_ok=True)
            (path / "models").symlink_to(models.resolve(), target_is_directory=True)
        return path

    def results(self, name: str) -> Path:
        return self.root / f"results-{name}"

    def close(self) -> None:
        if self.keep:
            print(f"temporary folders kept under {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def _env(**values):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def suite_spec(strategy: str, args, overrides: dict[str, Any], results_dir: Path):
    """The RunSpec `bench run --strategies STRATEGY` would make with these flags."""
    from bench.running.config import Experiment, parse_param_flags
    from bench.running.plan import plan

    params = dict(overrides)
    params.update(parse_param_flags(args.param).get(strategy, {}))
    exp = Experiment(strategies=[strategy], dataset=args.dataset, ag_news_dir=args.ag_news_dir,
                     per_class=args.per_class, seeds=[args.seed], params={strategy: params},
                     results_dir=str(results_dir), model=getattr(args, "model", None),
                     device=getattr(args, "device", "auto"), precision=getattr(args, "precision", "auto"))
    return plan(exp)[0]


def handwritten_precision(spec) -> list[str]:
    """The hand-written script's device and precision flags, equal to the suite's run: its device,
    bf16 autocast where the suite autocasts, and the load dtype the suite uses (full-ft: fp32; lora:
    a bf16 frozen base on CUDA under bf16, else fp32; the script keeps what trains in fp32 too)."""
    from bench.engine.device import use_bf16

    bf16 = use_bf16(spec.device, spec.precision)
    frozen_bf16 = spec.strategy == "lora" and spec.device.startswith("cuda") and bf16
    return ["--device", spec.device, "--dtype", "bfloat16" if frozen_bf16 else "float32",
            *(["--bf16"] if bf16 else [])]


def run_suite(spec, ws: Workspace, cache_name: str, results_name: str, verbose: bool) -> dict[str, Any]:
    """One suite run in its worker process (bench.running.runner.run_one), timed from outside."""
    from bench.running.runner import run_one

    quiet_env = {} if verbose else {"TRANSFORMERS_VERBOSITY": "error", "PYTHONWARNINGS": "ignore"}
    cpu = _children_cpu_s()
    with _env(FTBENCH_CACHE=ws.cache(cache_name), **quiet_env):
        outcome = run_one(spec, ws.results(results_name), quiet=not verbose)
    cpu = _children_cpu_s() - cpu
    rec = outcome.record or {}
    out: dict[str, Any] = {"side": "suite", "wall_s": round(outcome.seconds, 2), "cpu_s": round(cpu, 2),
                           "status": outcome.status, "run_id": spec.run_id, "params": spec.params}
    if outcome.status != "ok":
        out["error"] = rec.get("error")
        return out
    cost = rec["cost"]
    out.update(accuracy=rec["metrics"]["accuracy"], balanced_accuracy=rec["metrics"]["balanced_accuracy"],
               baseline_accuracy=(rec.get("baseline") or {}).get("accuracy"), time_s=cost["time_s"],
               **{k: cost.get(k) for k in ("train_tokens_per_s", "eval_tokens_per_s", "train_mfu", "eval_mfu",
                                           "flops_per_train_token", "flops_per_eval_token", "peak_flops",
                                           "peak_flops_basis", "peak_rss_mb", "embeddings_cached")})
    return out


def run_script(script: str, argv: list[str], verbose: bool) -> dict[str, Any]:
    """A hand-written script in its own process, timed from outside; its JSON is its last stdout line."""
    cmd = [sys.executable, str(SCRIPTS / script), *argv]
    env = dict(os.environ, PYTHONWARNINGS="ignore", TQDM_DISABLE="1", TRANSFORMERS_VERBOSITY="error")
    t, cpu = time.perf_counter(), _children_cpu_s()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None if verbose else subprocess.PIPE, text=True,
                          env=env)
    wall, cpu = time.perf_counter() - t, _children_cpu_s() - cpu
    out: dict[str, Any] = {"side": "handwritten", "script": f"benchmarks/{script}", "wall_s": round(wall, 2),
                           "cpu_s": round(cpu, 2), "argv": argv}
    lines = [ln for ln in (proc.stdout or "").splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        out.update(status="failed", error=f"exit {proc.returncode}: {(proc.stderr or '')[-1500:]}")
        return out
    res = json.loads(lines[-1])
    out.update(status="ok", accuracy=res["accuracy"], balanced_accuracy=res["balanced_accuracy"],
               baseline_accuracy=res.get("baseline_accuracy"), time_s=res["time_s"],
               details={k: v for k, v in res.items() if k not in ("accuracy", "balanced_accuracy", "time_s")})
    return out


def _median_of(runs: list[dict]) -> dict:
    ok = [r for r in runs if r.get("status") == "ok"]
    if not ok:
        return runs[0]
    best = dict(ok[0])
    for key in ("wall_s", "cpu_s"):
        best[key] = round(statistics.median(r[key] for r in ok), 2)
        if len(ok) > 1:
            best[f"{key}_all"] = [r[key] for r in ok]
    return best


def compare(suite_fn, hand_fn, repeats: int) -> tuple[dict, dict]:
    """Run both sides `repeats` times, alternating which goes first; medians of the wall times."""
    suites, hands = [], []
    for r in range(max(1, repeats)):
        if r % 2 == 0:
            suites.append(suite_fn(r))
            hands.append(hand_fn(r))
        else:
            hands.append(hand_fn(r))
            suites.append(suite_fn(r))
    return _median_of(suites), _median_of(hands)


def _ratio(a: dict, b: dict, key: str = "wall_s") -> float | None:
    if a.get("status") == "ok" and b.get("status") == "ok" and b.get(key):
        return round(a[key] / b[key], 3)
    return None


def _acc_gap(a: dict, b: dict) -> float | None:
    if a.get("accuracy") is None or b.get("accuracy") is None:
        return None
    return round(100 * (a["accuracy"] - b["accuracy"]), 2)


def _data_flags(args) -> list[str]:
    from bench.data.task import parse_per_class
    from bench.running.plan import per_class_for
    from bench.running.config import Experiment

    exp = Experiment(dataset=args.dataset, ag_news_dir=args.ag_news_dir, per_class=args.per_class)
    per_class = parse_per_class(args.per_class) if args.per_class else per_class_for(exp)
    flags = ["--dataset", args.dataset, "--per-class", ",".join(map(str, per_class)), "--seed", str(args.seed)]
    if args.ag_news_dir:
        flags += ["--ag-news-dir", args.ag_news_dir]
    return flags


# --------------------------------------------------------------------------------------------- legs

def leg_trainer(strategy: str, args, ws: Workspace) -> dict[str, Any]:
    """full-ft or lora: the suite against the seed-style Trainer script."""
    from bench.engine.models import resolve_model
    from bench.engine.training import TrainSettings

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
    eval_bs = TrainSettings(1.0, 1, 1).eval_batch_size
    argv = ["--strategy", strategy, "--model", path, *_data_flags(args), "--lr", str(p["lr"]),
            "--epochs", str(p["epochs"]), "--batch-size", str(p["batch_size"]),
            "--eval-batch-size", str(eval_bs), "--test-batch-size", str(eval_bs),
            "--max-length", str(p["max_length"]), "--weight-decay", str(p.get("weight_decay", 0.0)),
            "--warmup-ratio", str(p.get("warmup_ratio", 0.0)), *handwritten_precision(spec)]
    if strategy == "lora":
        targets = p.get("target_modules")
        if not targets:
            from strategies.peft_common import ATTENTION_PROJECTIONS

            targets = list(ATTENTION_PROJECTIONS[0 if ref.architecture == "decoder" else 1])
        if isinstance(targets, str):
            targets = targets.split(",")
        argv += ["--lora-r", str(p["r"]), "--lora-alpha", str(p["alpha"]), "--lora-dropout", str(p["dropout"]),
                 "--lora-targets", ",".join(targets)]
    suite, hand = compare(lambda r: run_suite(spec, ws, f"{strategy}-{r}", f"{strategy}-{r}", args.verbose),
                          lambda r: run_script("handwritten_trainer.py", argv, args.verbose), args.repeats)
    return {"leg": strategy, "model": spec.model, "device": spec.device, "precision": spec.precision,
            "random_weights": ref.random_weights, "params": p, "suite": suite, "handwritten": hand,
            "ratio": _ratio(suite, hand), "ratio_cpu": _ratio(suite, hand, "cpu_s"),
            "accuracy_gap_points": _acc_gap(suite, hand),
            "model_conversion_s": round(convert_s, 2)}


def leg_feature_extract(args, ws: Workspace) -> dict[str, Any]:
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
    argv = ["--model", ref.local_path(log=print), *_data_flags(args), "--max-length", str(p["max_length"]),
            "--hidden", str(p["hidden"]), "--lr", str(p["lr"]), "--epochs", str(p["epochs"]),
            "--batch-size", str(p["batch_size"]), "--pooling", pooling]
    warm_runs = []

    def suite_cold_then_warm(r):
        cold = run_suite(spec, ws, f"fe-{r}", f"fe-cold-{r}", args.verbose)  # a fresh, empty cache
        warm_runs.append(run_suite(spec, ws, f"fe-{r}", f"fe-warm-{r}", args.verbose))  # same cache, now filled
        return cold

    cold, hand = compare(suite_cold_then_warm, lambda r: run_script("handwritten_frozen_mlp.py", argv, args.verbose),
                         args.repeats)
    warm = _median_of(warm_runs)
    leg = {"leg": "feature-extract", "model": spec.model, "params": p, "suite": cold, "suite_warm": warm,
           "handwritten": hand, "ratio": _ratio(cold, hand), "ratio_warm": _ratio(warm, hand),
           "ratio_cpu": _ratio(cold, hand, "cpu_s"), "ratio_warm_cpu": _ratio(warm, hand, "cpu_s"),
           "speedup": _inv(_ratio(cold, hand)), "speedup_warm": _inv(_ratio(warm, hand)),
           "accuracy_gap_points": _acc_gap(cold, hand)}
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


def _inv(x):
    return round(1 / x, 2) if x else None


def leg_default_run(args, ws: Workspace) -> dict[str, Any]:
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
        print(f"    {r['status']} in {r['wall_s']:.0f} s, accuracy {_fmt(r.get('accuracy'), '.3f')}", flush=True)
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


def leg_profile(args, ws: Workspace) -> dict[str, Any]:
    """One training step of full-ft and of lora under torch.profiler, in this process."""
    out = {"leg": "profile", "steps": []}
    for strategy in ("full-ft", "lora"):
        try:
            with _env(FTBENCH_CACHE=ws.cache("profile")):
                out["steps"].append(profile_step(strategy, args))
        except Exception as exc:  # noqa: BLE001 - e.g. lora's module missing: say so, go on
            out["steps"].append({"strategy": strategy, "status": "failed", "error": f"{type(exc).__name__}: {exc}"})
    return out


def profile_step(strategy: str, args, top: int = 10) -> dict[str, Any]:
    """Build the strategy's model as the suite does, take one warm-up step, then profile one step
    (forward, loss, backward, clipping, optimizer) on a real, length-grouped training batch."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch.profiler import ProfilerActivity, profile

    from bench.engine import flops
    from bench.engine.context import RunContext
    from bench.data.task import prepare
    from bench.data.sources import DatasetOptions, load_raw
    from bench.engine.device import autocast, resolve_device, use_bf16
    from bench.engine.dropout import use_fast_dropout
    from bench.engine.models import resolve_model
    from bench.running.plan import per_class_for
    from bench.running.config import Experiment
    from bench.engine.tokens import encode
    from bench.engine.trackers import Tracker, cpu_threads
    from bench.engine.training import TrainSettings, make_optimizer, pad_batch, pad_id_of, train_batches
    from strategies import get_strategy
    from strategies.common import load_classifier, load_tokenizer

    torch.set_num_threads(cpu_threads())
    overrides = {"epochs": args.epochs} if args.epochs else {}
    if args.max_length:
        overrides["max_length"] = args.max_length
    spec = suite_spec(strategy, args, overrides, Path(tempfile.gettempdir()))
    p = get_strategy(strategy).Params(**spec.params)
    exp = Experiment(dataset=args.dataset, ag_news_dir=args.ag_news_dir, per_class=args.per_class)
    data = prepare(load_raw(args.dataset, DatasetOptions(ag_news_dir=args.ag_news_dir)), per_class_for(exp), args.seed)
    ref = resolve_model(spec.model)
    device = spec.device
    ctx = RunContext(data, ref, args.seed, device, Tracker(quiet=True), precision=spec.precision)
    path = ref.local_path(log=print)
    tokenizer = load_tokenizer(path)
    model = load_classifier(path, ctx, tokenizer).to(device)
    if strategy == "lora":
        from strategies.peft_common import add_lora

        model = add_lora(model, p, log=lambda *_: None)
    if device == "cpu":  # as bench.engine.training.fit does
        use_fast_dropout(model)
    model.train()
    enc = encode(tokenizer, data.train.texts, data.train.labels, p.max_length)
    settings = TrainSettings(p.lr, p.epochs, p.batch_size, p.weight_decay, p.warmup_ratio)
    optimizer, trainable = make_optimizer(model, settings)
    batches = train_batches(enc.lengths(), p.batch_size, np.random.default_rng(args.seed))
    pad = pad_id_of(tokenizer)
    bf16 = use_bf16(device, spec.precision)

    def step(idx):
        batch = pad_batch([enc.input_ids[i] for i in idx], pad, device)
        labels = torch.as_tensor(enc.labels[idx], device=device)
        with autocast(device, bf16):
            logits = model(**batch).logits
        loss = F.cross_entropy(logits.float(), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return batch["input_ids"].shape

    step(batches[0])  # warm-up: first-call allocations and kernel selection
    idx = batches[1 % len(batches)]
    t = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        shape = step(idx)
    step_s = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    step(idx)  # the same batch unprofiled: the step time without profiler overhead
    plain_s, cpu_s = time.perf_counter() - t, time.process_time() - c
    tokens = int(enc.lengths()[idx].sum())
    trainable_n = sum(q.numel() for q in trainable)
    total_n = sum(q.numel() for q in model.parameters())
    kind = flops.strategy_kind(get_strategy(strategy).flops_kind, trainable_n, total_n)
    shape_m = flops.model_shape(path, len(data.labels))
    per_token = flops.train_flops_per_token(shape_m, tokens / len(idx), kind, trainable_n)
    peak, basis = flops.device_peak(device, bf16)
    events = prof.key_averages()
    total_self = sum(e.self_cpu_time_total for e in events) or 1
    rows = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    table = [{"op": e.key, "self_cpu_ms": round(e.self_cpu_time_total / 1000, 1),
              "self_pct": round(100 * e.self_cpu_time_total / total_self, 1), "calls": e.count} for e in rows]
    return {"strategy": strategy, "status": "ok", "model": spec.model, "batch_shape": list(shape),
            "real_tokens": tokens, "step_s_profiled": round(step_s, 3), "step_s": round(plain_s, 3),
            "flops_kind": kind, "flops_per_token": per_token, "peak_flops": peak, "peak_flops_basis": basis,
            "step_mfu": round(per_token * tokens / plain_s / peak, 4) if peak else None,
            # FLOPs over the CPU time this process got (x the peak of one thread): what the cores
            # did while they were ours; on a shared machine the wall-time MFU also pays for waiting
            "step_cpu_s": round(cpu_s, 3), "threads": torch.get_num_threads(),
            "step_mfu_of_cpu_time": (round(per_token * tokens / (cpu_s * peak / torch.get_num_threads()), 4)
                                     if peak and device == "cpu" and cpu_s else None),
            "top_ops": table,
            "table": events.table(sort_by="self_cpu_time_total", row_limit=top, max_name_column_width=48)}


# ---------------------------------------------------------------------------------------- main

def print_table(report: dict) -> None:
    """The figures as a text table: wall and CPU seconds of each side, test accuracy, and the ratio
    suite / other (wall; CPU in brackets: CPU time is the steadier figure on a shared machine)."""
    rows = [("leg", "side", "wall s", "cpu s", "test acc", "ratio wall (cpu)", "notes")]

    def ratio(leg, key="ratio"):
        return f"{_fmt(leg.get(key), '.2f')} ({_fmt(leg.get(key + '_cpu'), '.2f')})"

    def failed(side):
        return f"{side.get('status')}: {str(side.get('error'))[-70:]}"

    for leg in report["legs"]:
        name = leg["leg"]
        if name in ("full-ft", "lora"):
            s, h = leg["suite"], leg["handwritten"]

            def acc(side):  # random weights: an accuracy that is no result
                return "random" if leg.get("random_weights") else _fmt(side.get("accuracy"), ".3f")

            rows.append((name, f"suite [{leg['model']}]", _fmt(s.get("wall_s")), _fmt(s.get("cpu_s")),
                         acc(s), "", f"train MFU {_fmt(s.get('train_mfu'), '.3f')}"
                         if s.get("status") == "ok" else failed(s)))
            rows.append(("", "hand-written Trainer", _fmt(h.get("wall_s")), _fmt(h.get("cpu_s")),
                         acc(h), ratio(leg), "" if h.get("status") == "ok" else failed(h)))
        elif name == "feature-extract":
            s, w, h = leg["suite"], leg["suite_warm"], leg["handwritten"]
            rows.append((name, "suite, cold cache", _fmt(s.get("wall_s")), _fmt(s.get("cpu_s")),
                         _fmt(s.get("accuracy"), ".3f"), "", f"{_fmt(leg.get('speedup'), '.1f')}x faster (wall)"
                         if s.get("status") == "ok" else failed(s)))
            rows.append(("", "suite, warm cache", _fmt(w.get("wall_s")), _fmt(w.get("cpu_s")),
                         _fmt(w.get("accuracy"), ".3f"), "", f"{_fmt(leg.get('speedup_warm'), '.1f')}x faster (wall)"
                         if w.get("status") == "ok" else failed(w)))
            rows.append(("", f"seed 003 ({leg['params']['epochs']} epochs)", _fmt(h.get("wall_s")),
                         _fmt(h.get("cpu_s")), _fmt(h.get("accuracy"), ".3f"),
                         f"{ratio(leg)} cold, {ratio(leg, 'ratio_warm')} warm",
                         f"10x cold from {leg.get('epochs_for_10x_cold', '-')} epochs" if h.get("status") == "ok"
                         else failed(h)))
        elif name == "default-run":
            for i, r in enumerate(leg["runs"]):
                rows.append((name if i == 0 else "", f"{r['strategy']} [{r['model']}]", _fmt(r["wall_s"]),
                             _fmt(r.get("cpu_s")), _fmt(r.get("accuracy"), ".3f"), "",
                             _mfu_note(r) if r["status"] == "ok" else failed(r)))
            rows.append(("", "total (with report)", _fmt(leg["total_s"]), "", _fmt(leg.get("best_accuracy"), ".3f"),
                         "", f"best: {leg.get('best_strategy')}"))
        elif name == "profile":
            for st in leg["steps"]:
                ok = st.get("status") == "ok"
                rows.append((name, f"{st['strategy']} step", _fmt(st.get("step_s"), ".2f"),
                             _fmt(st.get("step_cpu_s"), ".2f"), "", "",
                             f"MFU {_fmt(st.get('step_mfu'), '.3f')} wall, {_fmt(st.get('step_mfu_of_cpu_time'), '.3f')} "
                             f"of CPU time; top {st['top_ops'][0]['op']} {st['top_ops'][0]['self_pct']}%"
                             if ok else f"failed: {st.get('error')}"[:90]))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for j, r in enumerate(rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))
    for leg in report["legs"]:
        if leg["leg"] == "profile":
            for st in leg["steps"]:
                if st.get("status") == "ok":
                    print(f"\nprofile: one {st['strategy']} training step, batch {st['batch_shape']}, "
                          f"{st['step_s']} s unprofiled\n{st['table']}")


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
            if name in ("full-ft", "lora"):
                try:
                    from strategies import get_strategy

                    get_strategy(name)
                    leg = leg_trainer(name, args, ws)
                except (ImportError, BenchError) as exc:
                    leg = {"leg": name, "skipped": f"{type(exc).__name__}: {exc}"}
                    print(f"  skipped: the suite's {name} is not usable here ({exc})")
            elif name == "feature-extract":
                leg = leg_feature_extract(args, ws)
            elif name == "default-run":
                leg = leg_default_run(args, ws)
            else:
                leg = leg_profile(args, ws)
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
