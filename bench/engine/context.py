"""What a strategy receives: the prepared data, the resolved model, the device and the tracker."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.data.task import Split, TaskData
from bench.engine.models import ModelRef, cache_root
from bench.engine.trackers import Tracker


@dataclass
class RunContext:
    data: TaskData
    model: ModelRef
    seed: int
    device: str  # "cpu" | "cuda" | "cuda:1" ...
    tracker: Tracker
    eval_split: str = "test"  # "val" under tuning: the test split is never looked at then
    precision: str = "auto"  # "auto" (bf16 where the device has it) | "bf16" | "fp32"

    @property
    def eval(self) -> Split:
        return self.data.split(self.eval_split)

    @property
    def cache_dir(self) -> Path:
        return cache_root()

    def model_path(self) -> str:
        """Local folder (or Hub id) to pass to from_pretrained; converts a GGUF alias once."""
        return self.model.local_path(log=self.tracker.log)
