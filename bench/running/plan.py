"""Resolve an Experiment into RunSpecs and check everything that can be checked before any model
loads: strategies, models, parameters, data, columns and split sizes."""

from __future__ import annotations

from bench.running.config import FALLBACK_PER_CLASS, Experiment, RunSpec, coerce_params
from bench.data.task import prepare
from bench.data.splits import SplitSpec, parse_per_class, parse_split, parse_train_sizes
from bench.data.sources import DatasetOptions, check_options, load_raw, source_for
from bench.engine.device import resolve_device
from bench.engine.flops import peak_basis_setting
from bench.core.errors import BenchError
from bench.engine.models import resolve_model


def dataset_options(exp: Experiment) -> DatasetOptions:
    """The experiment's dataset options, the source's own checked against what it takes."""
    options = DatasetOptions(list(exp.text_cols), exp.label_col, exp.split_col, dict(exp.data_opts))
    check_options(exp.dataset, options)
    return options


def per_class_for(exp: Experiment) -> tuple[int, int, int]:
    if exp.per_class is not None:
        return parse_per_class(exp.per_class)
    source = source_for(exp.dataset)
    if hasattr(source, "default_per_class"):
        return tuple(source.default_per_class(dataset_options(exp)))
    return FALLBACK_PER_CLASS


def split_for(exp: Experiment) -> SplitSpec:
    """--split, else --per-class, else the dataset's default per-class counts."""
    if exp.split and exp.per_class is None:
        spec = parse_split(exp.split)
    else:
        counts = per_class_for(exp)
        sizes = [s for s in parse_train_sizes(exp.train_sizes) or [] if isinstance(s, int)]
        if exp.per_class is None and sizes and max(sizes) > counts[0]:
            # a curve on the default split: draw the train split at the largest size asked for
            counts = (max(sizes), counts[1], counts[2])
        spec = SplitSpec("per-class", counts)
    if exp.max_rows is not None and (exp.max_rows < 2 or spec.mode == "per-class"):
        raise BenchError(f"--max-rows {exp.max_rows}: give at least 2, with --split stratified:... or official "
                         "(per-class mode already says how many rows it takes)")
    if exp.split_col and spec.mode != "official":
        raise BenchError(f"--split-col {exp.split_col!r} places rows in the file's own splits: add --split official")
    return spec


def plan(exp: Experiment, check_data: bool = True) -> list[RunSpec]:
    from strategies import get_strategy

    if not exp.strategies:
        raise BenchError("no strategies chosen; pass --strategies, e.g. --strategies lora,feature-extract")
    if not exp.seeds:
        raise BenchError("no seeds chosen; pass --seeds, e.g. --seeds 0,1,2")
    if exp.precision not in ("auto", "bf16", "fp32"):
        raise BenchError(f"--precision {exp.precision!r}: use auto, bf16 or fp32")
    peak_basis_setting()  # FTBENCH_PEAK, read again by every run's MFU figures
    strategies = [get_strategy(name) for name in dict.fromkeys(exp.strategies)]
    unknown = sorted(set(exp.models) | set(exp.params) - {"*"} - {s.name for s in strategies})
    unknown = [u for u in unknown if u not in {s.name for s in strategies}]
    if unknown:
        raise BenchError(f"models/params given for strategies not in this run: {unknown}; "
                         "add them to --strategies or drop those settings")
    shared = set(exp.params.get("*", {}))
    nowhere = sorted(shared - {f for s in strategies for f in s.Params.__dataclass_fields__})
    if nowhere:
        raise BenchError(f"parameter(s) {nowhere} belong to no strategy in this run "
                         f"({', '.join(s.name for s in strategies)}); check the name, or prefix it with its "
                         "strategy, e.g. --param lora.lr=1e-4")
    split = split_for(exp)
    per_class = list(split.sizes) if split.mode == "per-class" else []
    sizes = parse_train_sizes(exp.train_sizes) or [None]
    options = dataset_options(exp)
    device = resolve_device(exp.device)
    if check_data:  # the data errors surface here, before any model loads
        raw = load_raw(exp.dataset, options)
        try:
            for seed in exp.seeds:
                for size in sizes:
                    prepare(raw, split, seed, exp.test_from, exp.max_rows, size)
        except BenchError as exc:
            if exp.per_class is None and not exp.split and split.sizes[0] != per_class_for(exp)[0]:
                # the split was widened for --train-sizes: say so, not "lower --per-class"
                raise BenchError(f"--train-sizes {split.sizes[0]} needs the default split to grow to "
                                 f"{split.text()}, and {str(exc).split(';')[0]}: give smaller sizes, or set "
                                 "--per-class TRAIN,VAL,TEST yourself") from None
            raise
    specs = []
    resolved_models = {}
    for strat in strategies:
        model_name = exp.models.get(strat.name) or exp.model or strat.default_model
        if model_name not in resolved_models:
            resolved_models[model_name] = resolve_model(model_name)
        overrides = dict(strat.gpu_defaults) if device.startswith("cuda") else {}
        overrides.update({k: v for k, v in exp.params.get("*", {}).items()
                          if k in strat.Params.__dataclass_fields__})
        overrides.update(exp.params.get(strat.name, {}))
        params = coerce_params(strat, overrides)
        strat.check(strat.Params(**params), resolved_models[model_name])
        strat.check_device(strat.Params(**params), device)
        for size in sizes:
            for seed in exp.seeds:
                specs.append(RunSpec(strat.name, model_name, exp.dataset, options.to_dict(), per_class,
                                     exp.test_from, seed, params, device, exp.precision,
                                     split="" if split.mode == "per-class" else split.text(),
                                     max_rows=exp.max_rows, train_size=size))
    return specs
