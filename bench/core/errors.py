"""User-facing errors: one clear line that says what is wrong and how to fix it."""


class BenchError(Exception):
    """Bad input or an unusable environment. The CLI prints it as one line and exits 2.

    The message names the problem *and* the fix, e.g.
    "unknown strategy 'lroa'; known: feature-extract, full-ft, lora, qlora, zero-shot".
    """


class Pruned(Exception):
    """Raised inside a run when an Optuna pruner stops a trial early (not a failure)."""


class Diverged(BenchError):
    """The training loss became NaN or infinite: the run is `failed` (no NaN figure reaches a record)."""

    def __init__(self, value: float, step: int, epoch: int, lr: float):
        super().__init__(f"loss became {'NaN' if value != value else value} at step {step} (epoch {epoch}); "
                         f"lower lr (it was {lr:g})")
