"""What every `bench perf` leg uses: temporary folders, one suite run or hand-written script timed
from outside in its own process, medians over repeats, ratios, and the `Leg` interface."""

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

ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = ROOT / "benchmarks"


class Leg:
    """One comparison or measurement of `bench perf --legs`: `run` returns its figures (a dict saved
    in the JSON), `rows` its lines of the printed table, `notes` any text printed after the table."""

    name: str = ""

    def run(self, args, ws: "Workspace") -> dict[str, Any]:
        raise NotImplementedError

    def rows(self, leg: dict[str, Any]) -> list[tuple]:
        return []

    def notes(self, leg: dict[str, Any]) -> list[str]:
        return []


def failed(side: dict) -> str:
    return f"{side.get('status')}: {str(side.get('error'))[-70:]}"


def ratio_text(leg: dict, key: str = "ratio") -> str:
    """suite / other, wall (CPU in brackets: the steadier figure on a shared machine)."""
    return f"{fmt(leg.get(key), '.2f')} ({fmt(leg.get(key + '_cpu'), '.2f')})"


def fmt(x, spec=".1f") -> str:
    return "-" if x is None else format(x, spec)


def mfu_note(run: dict) -> str:
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
def env_vars(**values):
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
    from bench.running.config import Experiment, parse_data_opts, parse_param_flags
    from bench.running.plan import plan

    params = dict(overrides)
    params.update(parse_param_flags(args.param).get(strategy, {}))
    exp = Experiment(strategies=[strategy], dataset=args.dataset, data_opts=parse_data_opts(args.data_opt),
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


def run_suite(spec, ws: Workspace, cache_name: str, results_name: str, verbose: bool,
              serving: bool = True) -> dict[str, Any]:
    """One suite run in its worker process (bench.running.runner.run_one), timed from outside.
    `serving=False` skips the serving measurement (FTBENCH_SERVING=off), for a side timed against a
    hand-written script that measures no serving."""
    from bench.running.runner import run_one

    quiet_env = {} if verbose else {"TRANSFORMERS_VERBOSITY": "error", "PYTHONWARNINGS": "ignore"}
    if not serving:
        quiet_env["FTBENCH_SERVING"] = "off"
    cpu = _children_cpu_s()
    with env_vars(FTBENCH_CACHE=ws.cache(cache_name), **quiet_env):
        outcome = run_one(spec, ws.results(results_name), quiet=not verbose)
    cpu = _children_cpu_s() - cpu
    rec = outcome.record
    out: dict[str, Any] = {"side": "suite", "wall_s": round(outcome.seconds, 2), "cpu_s": round(cpu, 2),
                           "status": outcome.status, "run_id": spec.run_id, "params": spec.params,
                           "serving_measured": serving}
    if outcome.status != "ok" or rec is None or rec.cost is None or rec.metrics is None:
        out["error"] = rec.error if rec is not None else None
        return out
    cost = rec.cost
    out.update(accuracy=rec.metrics.accuracy, balanced_accuracy=rec.metrics.balanced_accuracy,
               baseline_accuracy=rec.baseline.accuracy if rec.baseline else None, time_s=cost.time_s,
               embeddings_cached=cost.strategy.get("embeddings_cached"),
               **{k: getattr(cost, k) for k in ("train_tokens_per_s", "eval_tokens_per_s", "train_mfu", "eval_mfu",
                                                "flops_per_train_token", "flops_per_eval_token", "peak_flops",
                                                "peak_flops_basis", "peak_rss_mb")})
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


def median_of(runs: list[dict]) -> dict:
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
    return median_of(suites), median_of(hands)


def ratio(a: dict, b: dict, key: str = "wall_s") -> float | None:
    if a.get("status") == "ok" and b.get("status") == "ok" and b.get(key):
        return round(a[key] / b[key], 3)
    return None


def accuracy_gap(a: dict, b: dict) -> float | None:
    if a.get("accuracy") is None or b.get("accuracy") is None:
        return None
    return round(100 * (a["accuracy"] - b["accuracy"]), 2)


def data_flags(args) -> list[str]:
    from bench.data.task import parse_per_class
    from bench.running.plan import per_class_for
    from bench.running.config import Experiment, parse_data_opts

    exp = Experiment(dataset=args.dataset, data_opts=parse_data_opts(args.data_opt), per_class=args.per_class)
    per_class = parse_per_class(args.per_class) if args.per_class else per_class_for(exp)
    flags = ["--dataset", args.dataset, "--per-class", ",".join(map(str, per_class)), "--seed", str(args.seed)]
    for opt in args.data_opt:
        flags += ["--data-opt", opt]
    return flags
