"""The strategy interface: every strategy is one module in `strategies/` and one registry line.

A strategy declares its name, a hyperparameter dataclass with defaults, an Optuna search space,
and `run(ctx, params)`, which trains (or not) and returns predictions on `ctx.eval_split` plus
its parameter counts. The harness does everything else: data, splits, metrics, timing, memory,
records, reports. Strategies report per-epoch figures through `ctx.tracker.epoch(...)` (which is
also where an Optuna pruner may stop them) and wrap their work in `ctx.tracker.phase(...)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:  # keep `bench list` and the CLI import-light
    import optuna

    from bench.engine.context import RunContext


@dataclass
class ShipSize:
    """What must ship to serve a saved model: `specific_bytes` is this run's own part (an adapter, a
    head, a prompt's calibration; the whole model for full-ft); `base_bytes` what a deployment must
    already have besides (the frozen base checkpoint), 0 where nothing is shared."""

    specific_bytes: int
    base_bytes: int = 0

    @property
    def total_bytes(self) -> int:
        return self.specific_bytes + self.base_bytes


class Served(Protocol):
    """A trained result as it would be deployed: what `bench predict` loads and the serving
    measurement times. Built by the strategy at the end of `run` (StrategyResult.served)."""

    def predict(self, texts: list[str]) -> tuple[list[int], list[list[float]] | None]:
        """Class ids for `texts`, and per-class probabilities where the strategy has them."""

    def save(self, folder: Path) -> ShipSize:
        """Write what is needed to serve from nothing into `folder` (save_pretrained form where the
        Hugging Face stack has one, plus `ftbench-model.json` saying how to load it); a frozen base is
        referenced by its path, not copied, and counted in `base_bytes`."""

    def merged(self) -> "Served | str":
        """The LoRA family: the adapter merged into its base (peft `merge_and_unload`), or why it
        cannot be (a 4-bit base). Every other strategy: why there is nothing to merge."""


@dataclass
class StrategyResult:
    """What a strategy hands back; the harness turns it into metrics and the record's cost."""

    predictions: list[int]  # class ids on ctx.eval_split, in its order
    trainable_params: int
    total_params: int
    baseline_predictions: list[int] | None = None  # the untrained starting point, same split
    # the strategy's own cost figures: a shared Cost key it measures (adapter_bytes, precision) lands
    # there, any other under the record's cost.strategy (bench/core/record.py)
    extra_cost: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # what a reader of the results must know
    served: Served | None = None  # the trained model, ready to serve and save (None: not built yet)


class Strategy:
    """Base class. Subclasses set the ClassVars and implement `run`."""

    name: ClassVar[str]
    description: ClassVar[str]
    default_model: ClassVar[str]
    Params: ClassVar[type]  # a dataclass; every field has a default
    # Params fields whose default differs on a CUDA device; bench.running.plan applies them where the
    # resolved device is CUDA and the user gave no value, so the record shows what ran
    gpu_defaults: ClassVar[dict[str, Any]] = {}
    # How its FLOPs are counted (bench/engine/flops.py): "forward" (no backbone training: a forward
    # pass per text), "full" (every weight trains: 3x forward), "adapter" (frozen base, small
    # trainable part: 2x forward + 6 per trainable parameter), "none" (no neural network: tfidf)
    flops_kind: ClassVar[str] = "adapter"
    # False for a strategy that loads no pretrained model (tfidf): it runs at its default_model
    # ("none") whatever --model says for the others, and a --model given for it alone is an error
    uses_model: ClassVar[bool] = True
    # Part of a plain `bench run` (no --strategies): the default comparison must fit ~10 CPU minutes
    in_default_run: ClassVar[bool] = False
    # False for a strategy that never quantizes: its worker hides bitsandbytes (bench/engine/four_bit.py),
    # which peft and transformers otherwise import wherever it is installed. True by default, so a plugin
    # that quantizes works without knowing about it
    uses_bitsandbytes: ClassVar[bool] = True
    # What to try when a run predicts one class for (nearly) every row: said after the record's
    # collapse warning (bench/core/metrics.collapse_warnings)
    collapse_advice: ClassVar[str | None] = None

    def check_device(self, params: Any, device: str) -> None:
        """Checks that need the resolved device, before any model loads (raise BenchError). Default:
        the speed options (bench/engine/kernels.py) where Params has them."""
        from bench.engine.kernels import SpeedParams, check_speed_params

        if isinstance(params, SpeedParams):
            check_speed_params(params, device, self.name)

    def search_space(self, trial: "optuna.Trial") -> dict[str, Any]:
        """Suggest hyperparameters for one Optuna trial; returns overrides of Params' fields."""
        return {}

    def check(self, params: Any, model: Any) -> None:
        """Cheap checks before any model loads (raise BenchError). Default: nothing to check."""

    def run(self, ctx: "RunContext", params: Any) -> StrategyResult:
        raise NotImplementedError
