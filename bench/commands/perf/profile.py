"""Leg profile: one training step of full-ft (MiniLM) and of lora (SmolLM2) under torch.profiler,
in this process: the top operators by self CPU time, and that step's MFU. The model is built by the
strategy itself (`TrainedStrategy.build`) and stepped by the harness's own `train_step`, so what is
profiled is what `bench run` executes."""

from __future__ import annotations

import time
from typing import Any

from bench.commands.perf.harness import Leg, Workspace, env_vars, fmt, suite_spec

STRATEGIES = ("full-ft", "lora")


class ProfileLeg(Leg):
    name = "profile"

    def run(self, args, ws: Workspace) -> dict[str, Any]:
        out: dict[str, Any] = {"leg": self.name, "steps": []}
        for strategy in STRATEGIES:
            try:
                with env_vars(FTBENCH_CACHE=ws.cache("profile")):
                    out["steps"].append(profile_step(strategy, args, ws))
            except Exception as exc:  # noqa: BLE001 - e.g. lora's module missing: say so, go on
                out["steps"].append({"strategy": strategy, "status": "failed", "error": f"{type(exc).__name__}: {exc}"})
        return out

    def rows(self, leg: dict[str, Any]) -> list[tuple]:
        rows = []
        for st in leg["steps"]:
            ok = st.get("status") == "ok"
            rows.append((self.name, f"{st['strategy']} step", fmt(st.get("step_s"), ".2f"), fmt(st.get("step_cpu_s"), ".2f"),
                         "", "", f"MFU {fmt(st.get('step_mfu'), '.3f')} wall, {fmt(st.get('step_mfu_of_cpu_time'), '.3f')} "
                         f"of CPU time; top {st['top_ops'][0]['op']} {st['top_ops'][0]['self_pct']}%"
                         if ok else f"failed: {st.get('error')}"[:90]))
        return rows

    def notes(self, leg: dict[str, Any]) -> list[str]:
        return [f"\nprofile: one {st['strategy']} training step, batch {st['batch_shape']}, {st['step_s']} s "
                f"unprofiled\n{st['table']}" for st in leg["steps"] if st.get("status") == "ok"]


def profile_step(strategy: str, args, ws: Workspace, top: int = 10) -> dict[str, Any]:
    """Build the strategy's model as `bench run` does, take one warm-up step, then profile one step
    (forward, loss, backward, clipping, optimizer, schedule) on a real, length-grouped training batch."""
    import numpy as np
    import torch
    from torch.profiler import ProfilerActivity, profile

    from bench.data.sources import load_raw
    from bench.data.task import prepare
    from bench.engine import flops
    from bench.engine.context import RunContext
    from bench.engine.device import use_bf16
    from bench.engine.models import resolve_model
    from bench.engine.tokens import encode
    from bench.engine.trackers import Tracker, cpu_threads
    from bench.engine.training import fast_dropout_on_cpu, make_optimizer, pad_batch, pad_id_of, train_batches, train_step
    from bench.running.config import Experiment, parse_data_opts
    from bench.running.plan import dataset_options, per_class_for
    from strategies import get_strategy

    torch.set_num_threads(cpu_threads())
    overrides = {"epochs": args.epochs} if args.epochs else {}
    if args.max_length:
        overrides["max_length"] = args.max_length
    spec = suite_spec(strategy, args, overrides, ws.results("profile"))
    strat = get_strategy(strategy)
    p = strat.Params(**spec.params)
    exp = Experiment(dataset=args.dataset, data_opts=parse_data_opts(args.data_opt), per_class=args.per_class)
    data = prepare(load_raw(args.dataset, dataset_options(exp)), per_class_for(exp), args.seed)
    ref = resolve_model(spec.model)
    device = spec.device
    ctx = RunContext(data, ref, args.seed, device, Tracker(quiet=True), precision=spec.precision)
    built = strat.build(ctx, p)
    model, tokenizer = built.model, built.tokenizer
    fast_dropout_on_cpu(model, ctx)
    model.train()
    enc = encode(tokenizer, data.train.texts, data.train.labels, p.max_length)
    optimizer, trainable = make_optimizer(model, p.lr, p.weight_decay)
    batches = train_batches(enc.lengths(), p.batch_size, np.random.default_rng(args.seed))
    pad = pad_id_of(tokenizer)
    bf16 = use_bf16(device, spec.precision)

    def step(idx):
        batch = pad_batch([enc.input_ids[i] for i in idx], pad, device)
        train_step(model, batch, torch.as_tensor(enc.labels[idx], device=device), optimizer, trainable, bf16)
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
    kind = flops.strategy_kind(strat.flops_kind, trainable_n, total_n)
    shape_m = flops.model_shape(ref.local_path(log=lambda *_: None), len(data.labels))
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


PROFILE = ProfileLeg()
