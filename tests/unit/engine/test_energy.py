"""Energy per run (bench/engine/energy.py): how each part was had, estimates marked, never a silent 0."""

from __future__ import annotations

import importlib.util
import os
import sys
from types import SimpleNamespace

import pytest

from bench.engine import energy

HAS_CODECARBON = importlib.util.find_spec("codecarbon") is not None


def data(cpu=2e-5, gpu=0.0, ram=1e-5):
    return SimpleNamespace(duration=12.5, cpu_energy=cpu, gpu_energy=gpu, ram_energy=ram,
                           codecarbon_version="3.3.2", tracking_mode="process")


def test_a_modelled_cpu_marks_the_figure_estimated_and_says_how():
    out = energy.figures(data(), {"cpu": ("estimated from TDP x CPU load (8 W)", True),
                                  "ram": ("estimated from RAM size", True)}, startup_s=1.6)
    assert out["energy_kwh"] == pytest.approx(3e-5) and out["energy_estimated"] is True
    assert out["energy_basis"] == "cpu: estimated from TDP x CPU load (8 W); ram: estimated from RAM size"
    assert out["energy"]["cpu_kwh"] == 2e-5 and out["energy"]["startup_s"] == 1.6


def test_rapl_and_nvml_read_are_measured_and_a_gpu_reading_zero_is_left_out_not_counted():
    measured = energy.figures(data(ram=0.0), {"cpu": ("RAPL", False), "ram": ("estimated from RAM size", True)}, None)
    assert measured["energy_estimated"] is False and measured["energy_basis"].startswith("cpu: RAPL")
    zero_gpu = energy.figures(data(gpu=0.0), {"cpu": ("RAPL", False), "gpu": ("NVML", False)}, None)
    assert zero_gpu["energy"]["gpu_kwh"] is None and "issue 1316" in zero_gpu["energy_basis"]
    assert zero_gpu["energy_kwh"] == pytest.approx(2e-5)


def test_nothing_read_is_null_with_a_reason():
    out = energy.figures(data(), {}, None)
    assert out["energy_kwh"] is None and out["energy_basis"].startswith("not measured")


def test_turned_off_or_not_installed_is_null_with_a_reason(monkeypatch):
    monkeypatch.setenv("FTBENCH_ENERGY", "off")
    assert energy.EnergyMeter().start().stop() == {"energy_kwh": None, "energy_estimated": None,
                                                   "energy_basis": "not measured: turned off (FTBENCH_ENERGY=off)"}
    monkeypatch.delenv("FTBENCH_ENERGY", raising=False)
    monkeypatch.setitem(sys.modules, "codecarbon", None)  # import fails as where it is not installed
    out = energy.EnergyMeter().start().stop()
    assert out["energy_kwh"] is None and "codecarbon is not installed" in out["energy_basis"]


@pytest.mark.skipif(not HAS_CODECARBON, reason="codecarbon is not installed")
def test_codecarbon_measures_a_span_silently_and_writes_no_file(tmp_path, monkeypatch, capfd, recwarn):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FTBENCH_ENERGY", raising=False)  # the suite turns it off (tests/conftest.py)
    meter = energy.EnergyMeter().start()
    sum(i * i for i in range(2_000_000))
    out = meter.stop()
    assert out["energy_kwh"] > 0 and out["energy_basis"] and isinstance(out["energy_estimated"], bool)
    assert os.listdir(tmp_path) == []
    assert "codecarbon" not in capfd.readouterr().err
    assert not any("codecarbon" in str(w.filename) for w in recwarn), [str(w.message) for w in recwarn]
