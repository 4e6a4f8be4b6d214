"""Energy per run: codecarbon's offline tracker around the run, and how each part was had.

codecarbon reads the CPU's energy counters where the kernel exposes them (Intel RAPL), a GPU's through
NVML, and otherwise models power: the CPU as its TDP x its load ("cpu_load") or a constant share of
TDP ("constant"), RAM from its size. The record says which, and `energy_estimated` is true where any
part with energy in it was modelled. No figure is ever a silent 0: codecarbon missing, turned off
(FTBENCH_ENERGY=off) or failing gives null kWh and a reason; a GPU that reads 0 kWh (codecarbon issue
1316) gives a null GPU part and says so.

Its own output stays out of ours: its logger at ERROR, no CSV or other output (`output_methods=[]`), no lock file
(`allow_multiple_runs`, as parallel workers need); it writes nothing into the working folder. Its start
(hardware probes, a second or two) is paid once per run, before the run's clock; the record keeps it
(`energy.startup_s`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from bench.core.switches import turned_off

MEASURED_CPU_MODES = {"intel_rapl": "RAPL", "windows_emi": "Windows EMI", "intel_power_gadget": "Intel Power Gadget",
                      "apple_powermetrics": "powermetrics"}
ESTIMATED_CPU_MODES = {"cpu_load": "estimated from TDP x CPU load", "constant": "estimated from TDP (constant share)"}


def _parts_basis(tracker) -> dict[str, tuple[str, bool]]:
    """{part: (how, estimated)} from the tracker's hardware objects."""
    out: dict[str, tuple[str, bool]] = {}
    for hw in getattr(tracker, "_hardware", []):
        kind = type(hw).__name__
        if kind == "CPU":
            mode = getattr(hw, "_mode", "?")
            if mode in MEASURED_CPU_MODES:
                out["cpu"] = (MEASURED_CPU_MODES[mode], False)
            else:
                tdp = getattr(hw, "_tdp", None)
                how = ESTIMATED_CPU_MODES.get(mode, f"codecarbon mode {mode}")
                out["cpu"] = (f"{how}{f' ({tdp} W)' if tdp else ''}", mode not in MEASURED_CPU_MODES)
        elif kind == "GPU":
            out["gpu"] = ("NVML", False)
        elif kind == "RAM":
            out["ram"] = ("estimated from RAM size", True)
        else:  # an Apple chip or a future kind: said as codecarbon names it, taken as modelled
            out[kind.lower()] = (f"codecarbon {kind}", True)
    return out


class EnergyMeter:
    """start() before the run, stop() after; `figures()` gives the record's energy keys of `cost`."""

    def __init__(self) -> None:
        self.tracker: Any = None
        self.reason: str | None = None
        self.startup_s: float | None = None

    @classmethod
    def skipped(cls, why: str) -> "EnergyMeter":
        """A meter that measures nothing: the record's energy is null and says `why`."""
        meter = cls()
        meter.reason = f"not measured: {why}"
        return meter

    def start(self) -> "EnergyMeter":
        if turned_off("FTBENCH_ENERGY"):
            self.reason = "not measured: turned off (FTBENCH_ENERGY=off)"
            return self
        t = time.perf_counter()
        try:
            from codecarbon import OfflineEmissionsTracker

            logging.getLogger("codecarbon").setLevel(logging.ERROR)  # its import set INFO
            # the country only weighs emissions, which ftbench does not record; kWh do not depend on it
            settings = dict(country_iso_code="USA", log_level="error", allow_multiple_runs=True,
                            tracking_mode="process", project_name="ftbench")
            try:  # no output at all: output_methods=[] (3.x; it deprecates save_to_file), else save_to_file
                self.tracker = OfflineEmissionsTracker(output_methods=[], **settings)
            except TypeError:
                self.tracker = OfflineEmissionsTracker(save_to_file=False, **settings)
            logging.getLogger("codecarbon").setLevel(logging.ERROR)  # it sets its own level at init
            self.tracker.start()
        except ImportError:
            self.reason = "not measured: codecarbon is not installed (pip install codecarbon)"
        except Exception as exc:  # noqa: BLE001 - a measurement never fails a run
            self.tracker, self.reason = None, f"not measured: codecarbon failed to start ({type(exc).__name__}: {exc})"
        self.startup_s = round(time.perf_counter() - t, 3)
        return self

    def stop(self) -> dict[str, Any]:
        """The energy keys of the record's `cost` (bench/core/record.Cost)."""
        if self.tracker is None:
            return {"energy_kwh": None, "energy_estimated": None, "energy_basis": self.reason}
        try:
            self.tracker.stop()
            data = self.tracker.final_emissions_data
            basis = _parts_basis(self.tracker)
        except Exception as exc:  # noqa: BLE001
            return {"energy_kwh": None, "energy_estimated": None,
                    "energy_basis": f"not measured: codecarbon failed ({type(exc).__name__}: {exc})"}
        return figures(data, basis, self.startup_s)


def figures(data: Any, basis: dict[str, tuple[str, bool]], startup_s: float | None) -> dict[str, Any]:
    """The record's keys from codecarbon's final data (energies in kWh) and each part's basis."""
    parts: dict[str, Any] = {"duration_s": round(float(data.duration), 3), "startup_s": startup_s,
                             "codecarbon": getattr(data, "codecarbon_version", None),
                             "tracking_mode": getattr(data, "tracking_mode", None)}
    notes, total, estimated = [], 0.0, False
    for part in ("cpu", "gpu", "ram"):
        value = getattr(data, f"{part}_energy", None)
        if part not in basis:
            continue
        how, modelled = basis[part]
        if part == "gpu" and not value:  # NVML's counter read nothing (codecarbon issue 1316)
            parts["gpu_kwh"] = None
            notes.append("gpu: NVML read 0 kWh, not counted (codecarbon issue 1316)")
            continue
        parts[f"{part}_kwh"] = float(value or 0.0)
        total += float(value or 0.0)
        estimated |= modelled and bool(value)
        notes.append(f"{part}: {how}")
    if not any(k.endswith("_kwh") and v is not None for k, v in parts.items()):
        return {"energy_kwh": None, "energy_estimated": None, "energy": parts,
                "energy_basis": "not measured: codecarbon found no hardware to read or model"}
    return {"energy_kwh": float(f"{total:.6g}"), "energy_estimated": estimated, "energy_basis": "; ".join(notes),
            "energy": parts}
