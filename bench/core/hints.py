"""One reading of type annotations for every place that checks a value against one: an experiment
file's keys (running/config.py), hyperparameters (core/params.py) and records (core/record.py).

`fits(value, hint)` says whether a value already is of the annotated type (no conversion: params
converts text first, with `coerce_value`); `words(hint)` names the type in an error message."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any


def is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def without_none(hint: Any) -> tuple[Any, bool]:
    """(the hint without None, whether None was allowed); a union of several types stays a union
    (e.g. dict[str, str] | str: a mapping, or a word such as zero-shot's verbalizers=auto)."""
    if is_union(hint):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        return (args[0] if len(args) == 1 else typing.Union[tuple(args)]), optional
    return hint, False


def is_number(value: Any) -> bool:
    """A real number (an int or a float, never a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fits(value: Any, hint: Any) -> bool:
    """Whether `value` is of type `hint`: None only where the hint allows it, an int or a float for a
    float, never a bool for an int, lists and mappings element by element, a mapping for a dataclass
    (a record's blocks are read from JSON objects)."""
    if hint is Any:
        return True
    if value is None:
        return hint is type(None) or (is_union(hint) and type(None) in typing.get_args(hint))
    if is_union(hint):
        return any(fits(value, h) for h in typing.get_args(hint) if h is not type(None))
    if hint is float:
        return is_number(value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return isinstance(value, dict)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        return isinstance(value, list) and (not args or all(fits(v, args[0]) for v in value))
    if origin is dict:
        return isinstance(value, dict) and (not args or all(fits(k, args[0]) and fits(v, args[1])
                                                            for k, v in value.items()))
    return isinstance(value, origin or hint)


_SCALARS = {int: ("int (a whole number)", "whole numbers"), float: ("float (a finite number)", "numbers"),
            bool: ("bool (true or false)", "true/false values"), str: ("str (text)", "texts")}


def words(hint: Any, plural: bool = False) -> str:
    """The type in words for an error message: 'int (a whole number)', 'a list of texts, e.g. [a, b]'."""
    base, optional = without_none(hint)
    if is_union(base):
        text = " or ".join(words(a) for a in typing.get_args(base))
    elif base in _SCALARS:
        text = _SCALARS[base][plural]
    else:
        origin, args = typing.get_origin(base), typing.get_args(base)
        if origin is list:
            text = f"a list of {words(args[0], plural=True) if args else 'values'}, e.g. [a, b]"
        elif origin is dict:
            text = "a mapping" + (f" of {words(args[0], True)} to {words(args[1], True)}" if args else "") + \
                   ", e.g. {a: b}"
        else:
            text = "anything" if base is Any else getattr(base, "__name__", str(base))
    return text + (" or null" if optional else "")
