"""Experiments and runs. An `Experiment` is what the user asked for (a YAML file, CLI flags on top);
`plan()` resolves it into `RunSpec`s, one per (strategy, model, dataset, seed, hyperparameters),
each with an id that is a hash of its resolved config."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.core.errors import BenchError, echoed
from bench.core.hints import fits, words
from bench.data.splits import SplitSpec, parse_per_class, parse_split, parse_train_sizes
from strategies import default_run

FALLBACK_PER_CLASS = (60, 20, 40)


def legacy_options_identity(options: dict) -> dict:
    """Dataset options as run ids hashed them before sources owned their options: a top-level
    `ag_news_dir` key, null for every other dataset. Kept so that records written
    before still match (and skip) their runs; the `dir` option is the only one that existed."""
    ident = dict(options)
    source = dict(ident.pop("source", None) or {})
    ident["ag_news_dir"] = source.pop("dir", ident.get("ag_news_dir"))
    if source:
        ident["source"] = source
    return ident


@dataclass
class RunSpec:
    """Everything one run depends on; the worker process gets exactly this."""

    strategy: str
    model: str
    dataset: str
    dataset_options: dict
    per_class: list[int]
    test_from: str
    seed: int
    params: dict
    device: str
    precision: str = "auto"
    eval_split: str = "test"
    study: dict | None = None  # tuning: {"name", "trial", "objective", "objectives", "pruner"}
    split: str = ""  # "stratified:0.8,0.1,0.1" or "official"; empty: per-class with `per_class`
    max_rows: int | None = None  # cap on the pool, class shares kept (stratified, official)
    train_size: int | float | None = None  # rows per class (or fraction) kept of the train split
    # `bench compare`: {"name", "budget", "role", "variant", ...} (record.ComparisonInfo's keys)
    comparison: dict | None = None
    # seeds whose test rows are taken out of the pool before this run's split is drawn: a tuning
    # trial of a comparison never trains or validates on a row some test run evaluates on
    holdout_seeds: list[int] | None = None
    # --save-models: keep the trained model under RESULTS/models/RUN_ID (what is kept, not what runs: never in the id)
    save_models: bool = False
    # the serving measurement's batch (--param serve_batch=N); None: its default (bench/engine/serving.py)
    serve_batch: int | None = None

    # fields added after records existed: left out of the id while unset, so earlier ids stay valid
    LATER_FIELDS = ("split", "max_rows", "train_size", "holdout_seeds", "serve_batch")
    # what of `comparison` makes a run another run: a comparison's default-parameter test run is not
    # a plain `bench run` run, nor its tuned one when the best parameters are the defaults
    COMPARISON_IDENTITY = ("name", "role", "variant")

    def split_spec(self) -> str:
        return self.split or "per-class:" + ",".join(map(str, self.per_class))

    def identity(self) -> dict:
        ident = {k: v for k, v in dataclasses.asdict(self).items()
                 if k not in ("study", "comparison", "save_models") and not (k in self.LATER_FIELDS and v in ("", None))}
        ident["dataset_options"] = legacy_options_identity(self.dataset_options)
        if self.study:  # two trials with equal params are still two runs
            ident["study"] = {"name": self.study["name"], "trial": self.study["trial"]}
        if self.comparison:  # its budget and preference say how, not what, was run
            ident["comparison"] = {k: self.comparison.get(k) for k in self.COMPARISON_IDENTITY}
        return ident

    @property
    def run_id(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def label(self) -> str:
        size = "" if self.train_size is None else f", train size {self.train_size:g}"
        return f"{self.strategy} [{self.model}] on {self.dataset}, seed {self.seed}{size}"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Experiment:
    strategies: list[str] = field(default_factory=default_run)  # those whose class says in_default_run
    dataset: str = "bbc-news"
    text_cols: list[str] = field(default_factory=list)
    label_col: str | None = None
    data_opts: dict[str, str] = field(default_factory=dict)  # the dataset source's own options (--data-opt)
    # the split, read once into typed values where it is given (YAML or flags; bench/data/splits.py)
    per_class: tuple[int, int, int] | None = None  # TRAIN,VAL,TEST rows per class; None: the dataset's default
    split: SplitSpec | None = None  # per-class:T,V,E | stratified:F,F,F | official
    max_rows: int | None = None
    split_col: str | None = None
    train_sizes: list[int | float] | None = None  # a data-efficiency curve: rows per class, or fractions
    test_from: str = "pool"
    seeds: list[int] = field(default_factory=lambda: [0])
    model: str | None = None  # one model for every strategy
    models: dict[str, str] = field(default_factory=dict)  # per strategy
    params: dict[str, dict] = field(default_factory=dict)  # per strategy
    device: str = "auto"
    precision: str = "auto"
    results_dir: str = "results"
    save_models: bool = False  # keep each ok run's trained model under RESULTS/models/RUN_ID/

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Experiment":
        p = Path(path)
        if not p.is_file():
            raise BenchError(f"config file '{path}' does not exist; see configs/ for examples")
        data = load_config_yaml(p, path) or {}
        if not isinstance(data, dict):
            raise BenchError(f"config file '{path}' must be a mapping of keys (strategies:, dataset:, ...)")
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "Experiment":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BenchError(f"{source}: unknown key(s) {unknown}; known: {', '.join(sorted(known))}")
        data = dict(data)
        for key in ("strategies", "text_cols"):
            if isinstance(data.get(key), str):
                data[key] = [s.strip() for s in data[key].split(",") if s.strip()]
        if isinstance(data.get("seeds"), (int, str)):
            data["seeds"] = parse_int_list(str(data["seeds"]), "seeds")
        check_experiment_types({k: v for k, v in data.items() if k not in PARSED}, source)
        return cls(**data)

    def __post_init__(self) -> None:
        for key, parse in PARSED.items():  # text or lists from YAML, flags or code: typed once, here
            value = getattr(self, key)
            if value is not None:
                setattr(self, key, parse(str(value) if isinstance(value, (int, float)) else value))


# keys read into typed values by their own parsers, whose errors say what was expected
PARSED = {"per_class": parse_per_class, "split": parse_split, "train_sizes": parse_train_sizes}


CONFIG_MAX_BYTES = 1 << 20  # an experiment file is a few lines; anything this large is not one
CONFIG_MAX_VALUES = 100_000  # values after YAML's aliases are expanded: a "billion laughs" file stops here


def load_config_yaml(p: Path, path: str | Path) -> Any:
    """A config file's YAML, or one error line: too large, not UTF-8 (the byte and line said), not
    valid YAML, or expanding through aliases beyond CONFIG_MAX_VALUES values (checked before anything
    walks the value, so an alias bomb fails in milliseconds)."""
    size = p.stat().st_size
    if size > CONFIG_MAX_BYTES:
        raise BenchError(f"config file '{path}' is {size:,} bytes; an experiment file is a few lines "
                         f"(at most {CONFIG_MAX_BYTES:,} bytes): check that it is the right file")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise BenchError(f"config file '{path}' is not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line}); "
                         "save it as UTF-8 (the encoding expected)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where else ""
        raise BenchError(f"config file '{path}' is not valid YAML{at}; fix its syntax") from None
    except ValueError:  # YAML read an integer of thousands of digits
        raise BenchError(f"config file '{path}' holds a number too long to be one; fix that value") from None
    if expanded_size(data, CONFIG_MAX_VALUES) > CONFIG_MAX_VALUES:
        raise BenchError(f"config file '{path}' expands to more than {CONFIG_MAX_VALUES:,} values (YAML aliases "
                         "repeating each other?); an experiment needs a few dozen: remove the aliases")
    return data


def expanded_size(value: Any, budget: int) -> int:
    """How many values `value` holds once shared references (YAML aliases) are counted each time
    they appear; stops counting past `budget`, so it costs at most `budget` steps."""
    count, stack = 0, [value]
    while stack and count <= budget:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set)):
            stack.extend(item)
    return count


def check_experiment_types(data: dict, source: str) -> None:
    """Each key of a config file against the Experiment field's type (`strategies: 5`, `seeds: [a, b]`,
    `params: lr` are one clear error, not a crash mid-run)."""
    import typing

    hints = typing.get_type_hints(Experiment)
    for key, value in data.items():
        if not fits(value, hints[key]):
            raise BenchError(f"{source}: '{key}' must be {words(hints[key])}, got {echoed(value)}; "
                             f"see configs/ for examples")
        if key == "params":
            for strat, values in value.items():
                if not fits(values, dict[str, Any]):
                    raise BenchError(f"{source}: params.{strat} must be a mapping of NAME: VALUE, got {echoed(values)}")


def parse_int_list(value: str, what: str) -> list[int]:
    try:
        out = [int(x) for x in str(value).split(",") if x.strip()]
    except ValueError:
        out = []
    if not out:
        raise BenchError(f"--{what} {echoed(value)}: give comma-separated integers, e.g. 0,1,2")
    return out


def parse_data_opts(flags: list[str] | None) -> dict[str, str]:
    """--data-opt NAME=VALUE (repeatable): the dataset source's own options, kept as text."""
    out: dict[str, str] = {}
    for flag in flags or []:
        name, sep, value = flag.partition("=")
        if not sep or not name.strip():
            raise BenchError(f"--data-opt {echoed(flag)}: use NAME=VALUE, e.g. --data-opt dir=../shared/data/ag_news")
        out[name.strip()] = value
    return out


def parse_param_flags(flags: list[str]) -> dict[str, dict]:
    """--param lora.lr=1e-4 --param r=8 (no prefix: every strategy that has the field).

    Numbers, booleans and null are read here; any other value stays the text typed (CliText), read
    by its field's type later: a text field takes it verbatim (`template=Text: {text}`), a list or
    mapping field reads it as YAML and says so when it is not."""
    from bench.core.params import CliText

    out: dict[str, dict] = {}
    for flag in flags or []:
        key, sep, raw = flag.partition("=")
        strat, dot, name = key.strip().rpartition(".")
        if not sep or not name.strip() or (dot and not strat):
            raise BenchError(f"--param {echoed(flag)}: use STRATEGY.NAME=VALUE, e.g. --param lora.lr=1e-4")
        value: Any = CliText(raw)
        try:
            parsed = yaml.safe_load(raw) if raw.strip() else raw
        except (yaml.YAMLError, ValueError):  # ValueError: an integer of thousands of digits
            parsed = value
        if isinstance(parsed, str):  # YAML 1.1 reads "1e-4" as a string
            try:
                number = float(parsed)
            except ValueError:
                number = None
            # a number past any float stays the text typed, so its error echoes that, not "inf"
            words = parsed.strip().lower().lstrip("+-") in ("inf", "infinity", "nan")
            parsed = number if number is not None and (math.isfinite(number) or words) else value
        if isinstance(parsed, (bool, int, float)) or parsed is None:
            value = parsed
        out.setdefault(strat if dot else "*", {})[name.strip()] = value
    return out
