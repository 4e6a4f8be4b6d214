"""User-facing errors: one clear line that says what is wrong and how to fix it, and the helpers that
keep it one short line whatever value it echoes."""

import reprlib


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


class Stopped(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM, wherever it is raised: it unwinds like Ctrl-C, so the running run
    is recorded cancelled either way. `outcome` carries that run's cancelled outcome where the code
    that ran it has one (the runner), for whoever logs it."""

    def __init__(self, signum: int = 2, outcome=None):
        super().__init__(signum)
        self.signum, self.outcome = signum, outcome


def signal_words(signum: int) -> str:
    """What stopped a run, as its record says it."""
    return {2: "interrupted (Ctrl-C, SIGINT)", 15: "terminated (SIGTERM)"}.get(signum, f"stopped by signal {signum}")


def stop_on_signal(signum, frame) -> None:
    """A SIGINT/SIGTERM handler: one stop (both signals ignored from here, so a repeat cannot break
    the cleanup: the cancelled record, the report), raised as Stopped."""
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    raise Stopped(signum)
# ---------------------------------------------------------------- echoing values in messages

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict, _REPR.maxset = 3, 6, 6, 6, 6
_REPR.maxstring, _REPR.maxlong, _REPR.maxother = 60, 40, 60
SHOWN_LIMIT = 80
LINE_LIMIT = 600


def echoed(value, limit: int = SHOWN_LIMIT) -> str:
    """A value as an error message echoes it: its repr, cut to `limit` characters (a value read from
    a YAML alias bomb or a 100k-character flag must not become a message of megabytes). Bounded
    work too: reprlib stops at a few items per level and a few levels deep."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cut(text: str, limit: int = LINE_LIMIT) -> str:
    """A line of text cut to `limit` characters, saying how long it was."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters in all)"
