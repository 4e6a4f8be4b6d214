"""The environment switches that turn a measurement or a mechanism off (FTBENCH_SERVING, FTBENCH_ENERGY,
FTBENCH_PRELOAD): one spelling of "off" for all of them."""

from __future__ import annotations

import os

OFF_WORDS = ("off", "0", "no", "false")


def switch(name: str, default: str = "on") -> str:
    """The switch's value, lower-case; "off" for any spelling of off."""
    value = os.environ.get(name, default).strip().lower()
    return "off" if value in OFF_WORDS else value


def turned_off(name: str) -> bool:
    return switch(name) == "off"
