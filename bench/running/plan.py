"""Resolve an Experiment into RunSpecs and check everything that can be checked before any model
loads: strategies, models, parameters, data, columns and split sizes."""

from __future__ import annotations

import dataclasses
import sys

from bench.core.errors import BenchError, echoed
from bench.core.params import validate_params
from bench.data.sources import DatasetOptions, check_options, load_raw, source_for
from bench.data.splits import SplitSpec
from bench.data.task import prepare
from bench.engine.device import resolve_device
from bench.engine.flops import peak_basis_setting
from bench.engine.models import max_positions, resolve_model
from bench.running.config import FALLBACK_PER_CLASS, Experiment, RunSpec

MAX_SEED = 2**32 - 1  # scikit-learn's random_state takes no more


def dataset_options(exp: Experiment) -> DatasetOptions:
    """The experiment's dataset options, the source's own checked against what it takes."""
    options = DatasetOptions(list(exp.text_cols), exp.label_col, exp.split_col, dict(exp.data_opts))
    check_options(exp.dataset, options)
    return options


def per_class_for(exp: Experiment) -> tuple[int, int, int]:
    """--per-class, else the dataset's own default counts, else the fallback."""
    if exp.per_class is not None:
        return exp.per_class
    source = source_for(exp.dataset)
    if hasattr(source, "default_per_class"):
        return tuple(source.default_per_class(dataset_options(exp)))
    return FALLBACK_PER_CLASS


def split_for(exp: Experiment) -> SplitSpec:
    """--split, else --per-class, else the dataset's default per-class counts."""
    if exp.split is not None and exp.per_class is None:
        spec = exp.split
    else:
        counts = per_class_for(exp)
        sizes = [s for s in exp.train_sizes or [] if isinstance(s, int)]
        if exp.per_class is None and sizes and max(sizes) > counts[0]:
            # a curve on the default split: draw the train split at the largest size asked for
            counts = (max(sizes), counts[1], counts[2])
        spec = SplitSpec("per-class", tuple(counts))
    if exp.max_rows is not None and (exp.max_rows < 2 or spec.mode == "per-class"):
        raise BenchError(f"--max-rows {exp.max_rows}: give at least 2, with --split stratified:... or official "
                         "(per-class mode already says how many rows it takes)")
    if exp.split_col and spec.mode != "official":
        raise BenchError(f"--split-col {echoed(exp.split_col)} places rows in the file's own splits: "
                         "add --split official")
    return spec


def check_dataset(exp: Experiment, split: SplitSpec, options: DatasetOptions, sizes: list) -> None:
    """The data errors, before any model loads: each distinct split prepared once (a seed draws
    other rows, never other sizes, so one seed stands for all); what the data needs a user to know
    (which of its own splits the pool drew from, near-duplicates dropped) said once each."""
    raw = load_raw(exp.dataset, options)
    said: dict[str, None] = {}
    try:
        for size in sizes:
            data = prepare(raw, split, exp.seeds[0], exp.test_from, exp.max_rows, size)
            said.update(dict.fromkeys([pool_line(exp.dataset, data.how)] + data.warnings))
    except BenchError as exc:
        if exp.per_class is None and exp.split is None and split.sizes[0] != per_class_for(exp)[0]:
            # the split was widened for --train-sizes: say so, not "lower --per-class"
            raise BenchError(f"--train-sizes {split.sizes[0]} needs the default split to grow to "
                             f"{split.text()}, and {str(exc).split(';')[0]}: give smaller sizes, or set "
                             "--per-class TRAIN,VAL,TEST yourself") from None
        raise
    for line in filter(None, said):
        if line.startswith("data:"):
            print(line)
        else:
            print(f"warning: {exp.dataset}: {line}", file=sys.stderr)


def plan(exp: Experiment, check_data: bool = True) -> list[RunSpec]:
    from strategies import get_strategy, strategy_names

    if not exp.strategies:
        raise BenchError("no strategies chosen; pass --strategies, e.g. --strategies lora,feature-extract")
    if not exp.seeds:
        raise BenchError("no seeds chosen; pass --seeds, e.g. --seeds 0,1,2")
    bad_seeds = [s for s in exp.seeds if not 0 <= s <= MAX_SEED]
    if bad_seeds:
        raise BenchError(f"seed {echoed(bad_seeds[0])} is out of range: seeds are whole numbers from 0 to "
                         f"{MAX_SEED} (what numpy, torch and scikit-learn all take); e.g. --seeds 0,1,2")
    if exp.precision not in ("auto", "bf16", "fp32"):
        raise BenchError(f"--precision {echoed(exp.precision)}: use auto, bf16 or fp32")
    peak_basis_setting()  # FTBENCH_PEAK, read again by every run's MFU figures
    strategies = [get_strategy(name) for name in strategy_names(exp.strategies)]
    unknown = sorted(set(exp.models) | set(exp.params) - {"*"} - {s.name for s in strategies})
    unknown = [u for u in unknown if u not in {s.name for s in strategies}]
    if unknown:
        raise BenchError(f"models/params given for strategies not in this run: {unknown}; "
                         "add them to --strategies or drop those settings")
    serve_batches = {s.name: serve_batch_for(exp, s.name) for s in strategies}
    exp = dataclasses.replace(exp, params=without_harness_params(exp.params))
    shared = set(exp.params.get("*", {}))
    nowhere = sorted(shared - {f for s in strategies for f in s.Params.__dataclass_fields__})
    if nowhere:
        raise BenchError(f"parameter(s) {nowhere} belong to no strategy in this run "
                         f"({', '.join(s.name for s in strategies)}); check the name, or prefix it with its "
                         "strategy, e.g. --param lora.lr=1e-4")
    split = split_for(exp)
    per_class = list(split.sizes) if split.mode == "per-class" else []
    sizes = exp.train_sizes or [None]
    options = dataset_options(exp)
    device = resolve_device(exp.device)
    if check_data:
        check_dataset(exp, split, options, sizes)
    specs = []
    resolved_models = {}
    for strat in strategies:
        model_name = model_for(exp, strat)
        if model_name not in resolved_models:
            resolved_models[model_name] = resolve_model(model_name)
        overrides = dict(strat.gpu_defaults) if device.startswith("cuda") else {}
        overrides.update({k: v for k, v in exp.params.get("*", {}).items()
                          if k in strat.Params.__dataclass_fields__})
        overrides.update(exp.params.get(strat.name, {}))
        params = validate_params(strat, overrides)
        check_max_length(strat.name, params, model_name, resolved_models[model_name])
        strat.check(strat.Params(**params), resolved_models[model_name])
        strat.check_device(strat.Params(**params), device)
        for size in sizes:
            for seed in exp.seeds:
                specs.append(RunSpec(strat.name, model_name, exp.dataset, options.to_dict(), per_class,
                                     exp.test_from, seed, params, device, exp.precision,
                                     split="" if split.mode == "per-class" else split.text(),
                                     max_rows=exp.max_rows, train_size=size, save_models=exp.save_models,
                                     serve_batch=serve_batches[strat.name]))
    return specs


# parameters of the harness, not of a strategy: `--param serve_batch=8` (every strategy) or
# `--param lora.serve_batch=8` (one), read here and kept out of the strategies' Params
HARNESS_PARAMS = ("serve_batch",)


def without_harness_params(params: dict[str, dict]) -> dict[str, dict]:
    return {strat: {k: v for k, v in values.items() if k not in HARNESS_PARAMS} for strat, values in params.items()}


def serve_batch_for(exp: Experiment, strategy: str) -> int | None:
    """The serving measurement's batch for `strategy`, checked: None where it is the default (so a
    run's id changes only when another batch is asked for)."""
    from bench.core.params import allowed, check_bounds, coerce_value
    from bench.engine.serving import SERVE_BATCH, ServeParams

    given = exp.params.get(strategy, {}).get("serve_batch", exp.params.get("*", {}).get("serve_batch"))
    if given is None:
        return None
    f = ServeParams.__dataclass_fields__["serve_batch"]
    try:
        value = coerce_value(given, int)
    except (ValueError, TypeError, OverflowError):
        value = None
    if value is None or not check_bounds(f, value):
        raise BenchError(f"parameter 'serve_batch' (the serving measurement's batch) must be {allowed(f, int)}, "
                         f"got {echoed(str(given))}; e.g. --param serve_batch={SERVE_BATCH}")
    return None if value == SERVE_BATCH else value


def model_for(exp: Experiment, strat) -> str:
    """The model a strategy runs with: its own --model, else the run's, else its default; a strategy
    that loads no model (tfidf) always its default, and a model named for it alone is refused."""
    if getattr(strat, "uses_model", True):
        return exp.models.get(strat.name) or exp.model or strat.default_model
    given = exp.models.get(strat.name)
    if given not in (None, strat.default_model):
        raise BenchError(f"--model {strat.name}={echoed(given)}: {strat.name} loads no pretrained model; "
                         "drop that setting")
    return strat.default_model


def check_max_length(strategy: str, params: dict, model_name: str, model) -> None:
    """`max_length` within the model's positions (its config, read without loading weights): past them
    an encoder's position embedding fails mid-run, a decoder's figures are out of what it was trained on."""
    length = params.get("max_length")
    if not isinstance(length, int):
        return
    limit = max_positions(model)
    if limit is not None and length > limit:
        raise BenchError(f"parameter 'max_length' of '{strategy}' is {length}, beyond the {limit} token positions "
                         f"of model '{model_name}' (its config); give --param {strategy}.max_length={limit} or less")


def pool_line(dataset: str, how: dict) -> str | None:
    """Which of the dataset's own splits a stratified or per-class pool drew from, where it has splits."""
    pool, left_out = how.get("pool") or [], how.get("pool_left_out") or []
    if pool == ["all"] or not pool:
        return None
    names = " and ".join(", ".join(pool).rsplit(", ", 1))
    line = f"data: {dataset}: {how.get('spec')} draws from its {names} split{'s' if len(pool) > 1 else ''}"
    if left_out:
        line += (f"; its {' and '.join(left_out)} split{'s are' if len(left_out) > 1 else ' is'} left out "
                 "(--split stratified:... pools every split; --test-from official takes test rows from its test split)")
    return line
