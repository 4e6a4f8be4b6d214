"""The run record as one type: what the worker builds, what every reader (report, tuning, perf,
the runner's one-line summary) reads. On disk it is the JSON of `Record.to_dict()`; docs/records.md
lists the keys for outside readers.

Each block is a dataclass with the keys ftbench writes and an `extra` dict for the rest, so a key
added by a newer minor version, a user's own tooling or an old record survives a round trip
unchanged. Reading is lenient where it can be: a value of the wrong type is read as "not measured"
(None) and named in `Record.odd`; a record that cannot be used (no run id, an unknown status, a
schema newer than this code) raises `RecordError` with the reason.

Schema history: 1: a strategy's own cost figures (quantized_footprint_mb, pooling,
...) sat unprefixed in `cost`. 2: they sit in `cost.strategy`; `warnings` is new. Version-1 records
are upgraded on reading. Keys added since without a change of meaning (the `serving` block, the
energy keys of `cost`) are absent from older records, read as not measured, and bump nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bench.core.hints import fits, is_number

SCHEMA = 2
STATUSES = ("ok", "failed", "oom", "cancelled", "pruned")


class RecordError(ValueError):
    """A file that is not a usable record; the message says why."""


def finite(x: Any) -> bool:
    """A number that is a finite float (an integer too large for a float is not)."""
    if not is_number(x):
        return False
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


def _block_type(hint: Any) -> type | None:
    for h in (hint, *typing.get_args(hint)):
        if isinstance(h, type) and issubclass(h, Block):
            return h
    return None


@functools.lru_cache(maxsize=None)
def _fields_of(cls: type) -> tuple[dict[str, Any], frozenset[str]]:
    """A block's field types and declared names, worked out once per class (a report reads thousands)."""
    return typing.get_type_hints(cls), frozenset(f.name for f in dataclasses.fields(cls) if f.name != "extra")


@dataclass
class Block:
    """A dict-backed dataclass: declared keys typed, the rest kept in `extra`."""

    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "", odd: list[str] | None = None):
        """The block from its JSON form; values of the wrong type are left at their default and
        their paths appended to `odd`."""
        return cls._read(data, where, odd)

    @classmethod
    def _read(cls, data: dict[str, Any], where: str, odd: list[str] | None):
        hints, known = _fields_of(cls)
        values: dict[str, Any] = {}
        for name in known & data.keys():
            value, hint = data[name], hints[name]
            if not fits(value, hint):
                if odd is not None:
                    odd.append(f"{where}{name}")
                continue  # the field's default: read as "not measured"
            block = _block_type(hint)
            values[name] = block.from_dict(value, f"{where}{name}.", odd) if block and value is not None else value
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, Block) else value
        out.update(self.extra)
        return out


@dataclass
class ModelInfo(Block):
    name: str = "?"
    source: str | None = None
    provenance: str | None = None
    architecture: str | None = None
    random_weights: bool = False  # random:NAME: time and memory only, never accuracy

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if not self.random_weights:  # the key appears only where it is true, as before
            out.pop("random_weights")
        return out


@dataclass
class DatasetInfo(Block):
    name: str = "?"
    n_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    labels: list[str] | None = None
    provenance: str | None = None
    notes: list | str | None = None
    split: dict[str, Any] | str | None = None  # how the rows were split (bench/data/splits.py)
    class_counts: dict[str, Any] | None = None  # {train|val|test: {label: n}}
    split_ids: dict[str, Any] | None = None
    # duplicates, conflicting labels, near-duplicates across splits (bench/data/hygiene.py)
    hygiene: dict[str, Any] | None = None


@dataclass
class Metrics(Block):
    accuracy: float | None = None
    balanced_accuracy: float | None = None
    macro_f1: float | None = None
    per_class: dict[str, Any] | None = None
    confusion: list | None = None
    n: int | None = None
    ci: dict[str, Any] | None = None  # {metric: [low, high]}, BCa bootstrap
    predicted_class: str | None = None  # majority_baseline only: the class it always says


@dataclass
class Cost(Block):
    peak_rss_mb: float | None = None
    peak_gpu_allocated_mb: float | None = None
    peak_gpu_reserved_mb: float | None = None
    headline_memory: str | None = None
    time_s: dict[str, Any] = field(default_factory=dict)  # per phase, and "total"
    train_examples_per_s: float | None = None
    eval_examples_per_s: float | None = None
    train_tokens_per_s: float | None = None
    eval_tokens_per_s: float | None = None
    embed_tokens_per_s: float | None = None
    counters: dict[str, Any] = field(default_factory=dict)
    trainable_params: int | None = None
    total_params: int | None = None
    trainable_fraction: float | None = None
    adapter_bytes: int | None = None
    precision: dict[str, Any] | None = None  # what computed and what trained in which dtype
    flops_per_train_token: float | None = None
    flops_per_eval_token: float | None = None
    flops_per_embed_token: float | None = None
    peak_flops: float | None = None
    peak_flops_basis: str | None = None
    train_mfu: float | None = None
    eval_mfu: float | None = None
    embed_mfu: float | None = None
    flops_kind: str | None = None
    n_nonembedding_params: int | None = None
    strategy: dict[str, Any] = field(default_factory=dict)  # the strategy's own figures (StrategyResult.extra_cost)
    # energy over the run (data, load, train, eval; not the serving measurement), by codecarbon's
    # offline tracker (bench/engine/energy.py): null with energy_basis saying why where not measured
    energy_kwh: float | None = None
    energy_estimated: bool | None = None  # True where some part is modelled (TDP x load, RAM size), not read
    energy_basis: str | None = None  # how: "cpu: RAPL; ram: estimated ...", or why there is no figure
    energy: dict[str, Any] | None = None  # the parts: cpu_kwh, gpu_kwh, ram_kwh, duration_s, startup_s, ...

    def headline_memory_mb(self) -> tuple[float | None, str]:
        """GPU allocated memory where the run used a GPU, peak RSS elsewhere."""
        key = self.headline_memory if self.headline_memory in ("peak_gpu_allocated_mb", "peak_rss_mb") else (
            "peak_gpu_allocated_mb" if self.peak_gpu_allocated_mb is not None else "peak_rss_mb")
        value = getattr(self, key)
        return (float(value) if finite(value) else None), key

    def spent_seconds(self) -> float | None:
        """What the run spent by its own clock: the whole tracked time ("total": load, prepare, train,
        eval and any phase of its own), else the sum of the phases it states; None when it states none."""
        total = self.time_s.get("total")
        if finite(total):
            return float(total)
        phases = [float(v) for v in self.time_s.values() if finite(v)]
        return sum(phases) if phases else None

    def train_seconds(self) -> float | None:
        """The "train" phase plus, for feature-extract, the "embed" phase (the frozen backbone's pass
        over the training and validation data, zero when cached)."""
        if not finite(self.time_s.get("train")):
            return None
        embed = self.time_s.get("embed")
        return float(self.time_s["train"]) + (float(embed) if finite(embed) else 0.0)


@dataclass
class Serving(Block):
    """The serving measurement (bench/engine/serving.py): the trained result as deployed, timed after
    the test evaluation, warm-up excluded. `measured` False with `reason` where there was nothing to
    serve (a strategy that returned no Served); each figure null where its step failed (`error`)."""

    measured: bool = False
    reason: str | None = None  # why not measured
    device: str | None = None
    latency_texts: int | None = None  # single-text predict calls timed
    warmup: int | None = None  # untimed calls before them
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_mean_ms: float | None = None
    serve_batch: int | None = None
    throughput_texts: int | None = None
    throughput_per_s: float | None = None  # texts per second in batches of serve_batch
    peak_rss_mb: float | None = None  # the process's peak resident set while serving
    rss_delta_mb: float | None = None  # that peak less the resident set before serving
    memory_basis: str | None = None
    peak_gpu_allocated_mb: float | None = None  # CUDA runs: the allocator's peak while serving
    ship_specific_bytes: int | None = None  # this run's own part (an adapter, a head; a full model)
    ship_base_bytes: int | None = None  # the frozen base a deployment must already have
    ship_total_bytes: int | None = None  # everything needed to serve from nothing
    time_s: float | None = None  # what the measurement took
    error: str | None = None  # the steps that failed, and why
    merged: "Serving | None" = None  # the LoRA family: the same, merged into the base
    merged_reason: str | None = None  # why there is no merged variant

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if not self.measured:  # nothing was measured: no column of nulls, only the reason
            out = {k: v for k, v in out.items() if v is not None or k in ("measured", "reason")}
        return out


@dataclass
class StudyInfo(Block):
    name: str | None = None
    trial: int | None = None
    objective: str | None = None
    objectives: list | None = None
    pruner: str | None = None
    state: str | None = None


@dataclass
class ComparisonInfo(Block):
    """Which `bench compare` protocol a run belongs to: its trials (role "trial", on the validation
    split) and its test runs (role "test") of each strategy's best parameters (variant "tuned") and
    of its defaults (variant "default"), so no reader mixes the two without saying so."""

    name: str | None = None  # the comparison's id, derived from the experiment (or --name)
    budget: str | None = None  # "trials:N" or "time:SECONDSs", the same for every strategy's study
    role: str | None = None  # "trial" | "test"
    variant: str | None = None  # test runs: "tuned" | "default"
    prefer: str | None = None  # the cost the report's answer breaks ties by: train-time | memory | params | latency
    study: str | None = None  # the strategy's study in the Optuna storage
    best_trial: int | None = None  # tuned test runs: the trial whose parameters they run
    holdout_seeds: list | None = None  # seeds whose test rows no trial ever had


@dataclass
class Record(Block):
    run_id: str = ""
    status: str = "failed"
    schema: int = SCHEMA
    error: str | None = None
    strategy: str = "?"
    seed: int | None = None
    eval_split: str = "test"
    study: StudyInfo | None = None
    comparison: ComparisonInfo | None = None
    model: ModelInfo = field(default_factory=ModelInfo)
    dataset: DatasetInfo = field(default_factory=DatasetInfo)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: Metrics | None = None
    baseline: Metrics | None = None  # the untrained starting point
    majority_baseline: Metrics | None = None  # always the most frequent training class
    history: list = field(default_factory=list)  # one dict per epoch
    cost: Cost | None = None
    serving: Serving | None = None  # what it costs to serve (ok runs)
    env: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)  # the RunSpec, whole
    train_size: int | float | None = None
    warnings: list = field(default_factory=list)  # what the run noticed that a reader must know
    started_at: str | None = None
    finished_at: str | None = None
    predictions: list | None = None  # class ids on the eval split, in its order
    truth: list | None = None
    traceback: str | None = None
    # --save-models: {path (under the results folder), specific_bytes, base_bytes, total_bytes, save_s} or {error}
    saved_model: dict[str, Any] | None = None

    # fields read where they were of the wrong type (set by from_dict, not written)
    odd: list[str] = field(default_factory=list, repr=False, compare=False)
    NOT_WRITTEN: ClassVar[tuple[str, ...]] = ("odd",)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise RecordError(f"unknown status {self.status!r} (known: {', '.join(STATUSES)})")

    @classmethod
    def from_dict(cls, data: Any, where: str = "", odd: list[str] | None = None) -> "Record":
        """A record from its JSON form (any schema up to SCHEMA); RecordError when it is not one."""
        if not isinstance(data, dict):
            raise RecordError(f"a JSON {type(data).__name__}, not a record object")
        missing = [k for k in ("run_id", "status") if not isinstance(data.get(k), str)]
        if missing:
            raise RecordError(f"lacks {' and '.join(missing)}")
        schema = data.get("schema", 1)
        if not isinstance(schema, int) or schema < 1:
            raise RecordError(f"schema {schema!r} is not a version number")
        if schema > SCHEMA:
            raise RecordError(f"written by a newer ftbench (schema {schema}; this one reads up to {SCHEMA}): "
                              "upgrade ftbench to read it")
        data = UPGRADES[schema](data) if schema < SCHEMA else data
        found: list[str] = []
        rec = cls._read({k: v for k, v in data.items() if k not in cls.NOT_WRITTEN}, where, found)
        rec.odd = found
        if rec.status == "ok":  # an ok record is read for its figures: say which are missing
            rec.odd += [f"metrics.{k}" for k in ("accuracy", "balanced_accuracy")
                        if not finite(getattr(rec.metrics, k, None))]
            rec.odd += ["cost"] if rec.cost is None else []
        return rec

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        for name in self.NOT_WRITTEN:
            out.pop(name, None)
        for name in ("predictions", "truth", "traceback", "comparison", "serving"):  # absent rather than null
            if out.get(name) is None:
                out.pop(name)
        return out

    @property
    def random_weights(self) -> bool:
        return self.model.random_weights is True


def _upgrade_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 kept a strategy's own cost figures beside the shared ones: move them to cost.strategy."""
    data = dict(data, schema=2)
    for block in ("model", "dataset"):  # the first records named them by a bare string
        if isinstance(data.get(block), str):
            data[block] = {"name": data[block]}
    cost = data.get("cost")
    if isinstance(cost, dict):
        declared = {f.name for f in dataclasses.fields(Cost)}
        data["cost"] = {k: v for k, v in cost.items() if k in declared}
        data["cost"]["strategy"] = {k: v for k, v in cost.items() if k not in declared}
    return data


UPGRADES = {1: _upgrade_1_to_2}
