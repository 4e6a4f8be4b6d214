"""What every model run imports before its clock starts, in a fresh worker and in the preloaded
server its forked workers come from (bench/running/preloaded.py), so run times compare between them."""

from __future__ import annotations

# what nearly every worker imports before its run starts (strategy modules import the rest on use)
SHARED_MODULES = ("torch", "transformers", "peft", "sklearn.linear_model", "sklearn.metrics", "pandas",
           "bench.running.worker", "bench.engine.training", "bench.engine.serving", "bench.engine.energy",
           "strategies")


def import_shared(extra: tuple[str, ...] = ()) -> None:
    """Import what every model run uses, as the server does before it forks: a fresh worker calls it
    too, so no run's clock counts these imports in either kind of worker. A module that will not
    import is left to the worker that needs it (its own import then says why)."""
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a library's import-time notice would reach no run's log
        for name in SHARED_MODULES + extra:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001
                pass
        try:
            from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer  # noqa: F401
        except Exception:  # noqa: BLE001
            pass
