"""One spelling of "off" for every FTBENCH_* switch (serving, energy, the preloaded workers)."""

from __future__ import annotations

import pytest

from bench.core.switches import switch, turned_off
from bench.running import preloaded


@pytest.mark.parametrize("value", ["off", "OFF", " 0", "no", "False"])
def test_every_spelling_of_off_turns_a_switch_off(monkeypatch, value):
    monkeypatch.setenv("FTBENCH_SERVING", value)
    assert turned_off("FTBENCH_SERVING")


def test_an_unset_or_other_value_is_on_and_says_what_it_is(monkeypatch):
    monkeypatch.delenv("FTBENCH_ENERGY", raising=False)
    assert not turned_off("FTBENCH_ENERGY") and switch("FTBENCH_ENERGY") == "on"
    for value, mode in (("Always", "always"), ("no", "off"), ("yes", "on")):
        monkeypatch.setenv("FTBENCH_PRELOAD", value)
        assert preloaded.mode() == mode
