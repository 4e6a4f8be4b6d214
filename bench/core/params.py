"""Hyperparameters checked by type and range in one place, before any model loads.

Each strategy's `Params` dataclass declares its fields' types (annotations) and bounds
(`param(default, ge=..., gt=..., le=..., choices=...)` puts them in the field's metadata);
`validate_params` coerces values given as text (`--param`) or YAML (config files) to those types and
checks the bounds, so `epochs=0`, `lr=inf` or `batch_size=0` are one clear error naming the
parameter, the value and the allowed range."""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import field
from typing import Any

import yaml

from bench.core.errors import BenchError, echoed
from bench.core.hints import is_union, without_none, words


class CliText(str):
    """A `--param` value kept as the text the user typed: the field's type decides how to read it
    (a str field takes it verbatim, so `template=Text: {text}` is not a YAML mapping)."""


def param(default: Any, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
          lt: float | None = None, choices: tuple | None = None):
    """A dataclass field with its allowed range (or choices) in the metadata."""
    bounds = {k: v for k, v in dict(ge=ge, gt=gt, le=le, lt=lt, choices=choices).items() if v is not None}
    return field(default=default, metadata=bounds)


def allowed(f: dataclasses.Field, hint: Any) -> str:
    """The allowed values of a field, in words: 'an int >= 1', 'a float > 0 and <= 1', 'one of a, b'."""
    md = f.metadata
    if "choices" in md:
        return "one of " + ", ".join(map(str, md["choices"]))
    parts = [f"{op} {md[key]:g}" for key, op in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
             if key in md]
    return f"{words(hint)}" + (" " + " and ".join(parts) if parts else "")


def _from_text(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ValueError(f"not valid YAML ({problem}{f' at column {mark.column + 1}' if mark else ''})") from None


def coerce_value(value: Any, hint: Any) -> Any:
    """`value` as `hint` (int, float, bool, str, list[str], dict[str, str], each maybe | None);
    ValueError when it cannot be one."""
    base, optional = without_none(hint)
    if isinstance(value, CliText) and base is not str and typing.get_origin(base) not in (list, dict):
        value = _from_text(value)  # numbers and booleans typed on the command line
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" as text
            try:
                value = float(value)
            except ValueError:
                pass
    if value is None or (isinstance(value, str) and value.strip().lower() in ("null", "none", "~") and optional):
        if optional:
            return None
        raise ValueError("null is not allowed")
    if is_union(base):  # the first type the value can be, in the declared order
        for option in typing.get_args(base):
            try:
                return coerce_value(value, option)
            except ValueError:
                continue
        raise ValueError
    if base is bool:
        if isinstance(value, str):
            table = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}
            if value.strip().lower() not in table:
                raise ValueError
            return table[value.strip().lower()]
        if isinstance(value, bool) or value in (0, 1):
            return bool(value)
        raise ValueError
    if base is int:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
        if not math.isfinite(number) or number != int(number):
            raise ValueError
        return int(number)
    if base is float:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{echoed(value)} is not a finite number")
        return number
    if base is str:
        if not isinstance(value, str):
            raise ValueError
        return str(value)
    origin = typing.get_origin(base)
    if origin is list:
        if isinstance(value, str):
            value = _from_text(value) if value.lstrip().startswith("[") else [s.strip() for s in value.split(",")]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            raise ValueError
        return [str(v) for v in value]
    if origin is dict:
        if isinstance(value, str):
            value = _from_text(value)
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ValueError
        return {str(k): str(v) for k, v in value.items()}
    raise ValueError(f"unsupported parameter type {hint!r}")


def check_bounds(f: dataclasses.Field, value: Any) -> bool:
    md = f.metadata
    if value is None:
        return True
    if "choices" in md:
        return value in md["choices"]
    return not (("gt" in md and not value > md["gt"]) or ("ge" in md and not value >= md["ge"])
                or ("lt" in md and not value < md["lt"]) or ("le" in md and not value <= md["le"]))


def validate_params(strategy, overrides: dict) -> dict:
    """The strategy's Params with `overrides` applied, as a plain dict, every value of its field's
    type and inside its bounds; anything else is one BenchError naming parameter, value and range."""
    fields = {f.name: f for f in dataclasses.fields(strategy.Params)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise BenchError(f"unknown parameter(s) {unknown} for strategy '{strategy.name}'; "
                         f"known: {', '.join(fields)}")
    hints = typing.get_type_hints(strategy.Params)
    out = dataclasses.asdict(strategy.Params())
    for key, value in overrides.items():
        f, hint = fields[key], hints[key]
        try:
            coerced = coerce_value(value, hint)
        except (ValueError, TypeError, OverflowError) as exc:
            why = f" ({exc})" if str(exc) and "could not convert" not in str(exc) else ""
            if "Exceeds the limit" in str(exc):  # Python's own words name a setting of its own
                why = " (a number of thousands of digits)"
            raise BenchError(f"parameter '{key}' of '{strategy.name}' must be {allowed(f, hint)}, got "
                             f"{echoed(str(value))}{why}; e.g. --param {strategy.name}.{key}="
                             f"{out[key] if out[key] is not None else '...'}") from None
        if not check_bounds(f, coerced):
            raise BenchError(f"parameter '{key}' of '{strategy.name}' is {echoed(coerced)}, out of range: it must be "
                             f"{allowed(f, hint)}")
        out[key] = coerced
    for key, value in out.items():  # the defaults too: a subclass may tighten a bound
        if not check_bounds(fields[key], value):
            raise BenchError(f"parameter '{key}' of '{strategy.name}' is {echoed(value)}, out of range: it must be "
                             f"{allowed(fields[key], hints[key])}")
    strategy.Params(**out)  # a dataclass __post_init__ may validate further
    return out
