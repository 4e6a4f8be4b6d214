"""What identifies a comparison and what every one of its records says about it: the comparison's
name (derived from the experiment, so the same command finds its studies again), each strategy's
study name, the protocol block of a trial or test run (record.ComparisonInfo), and the held-out
pool the trials draw from."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from bench.core.budget import Budget
from bench.core.errors import BenchError
from bench.running.config import Experiment

ROLE_TRIAL, ROLE_TEST = "trial", "test"
TUNED, DEFAULT = "tuned", "default"
NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Protocol:
    """One comparison: what each of its records' `comparison` block says."""

    name: str
    budget: Budget
    prefer: str

    def study_name(self, strategy: str) -> str:
        return f"{self.name}-{strategy}"

    def block(self, strategy: str, role: str, variant: str | None = None, **more) -> dict:
        block = {"name": self.name, "budget": self.budget.text(), "role": role, "variant": variant,
                 "prefer": self.prefer, "study": self.study_name(strategy)}
        block.update({k: v for k, v in more.items() if v is not None})
        return block


def comparison_name(exp: Experiment, tune_seed: int, device: str) -> str:
    """cmp-DATASET-HASH: the hash of what makes two comparisons' trials different runs (data, split,
    models, the user's params, device, precision, the trial seed). Strategies, test seeds and the
    budget are left out: adding a strategy or a seed, or a larger budget, continues the same studies."""
    ident = {"dataset": exp.dataset, "data_opts": exp.data_opts, "text_cols": exp.text_cols,
             "label_col": exp.label_col, "split": exp.split, "per_class": exp.per_class, "max_rows": exp.max_rows,
             "split_col": exp.split_col, "test_from": exp.test_from, "model": exp.model, "models": exp.models,
             "params": exp.params, "device": device, "precision": exp.precision, "seed": tune_seed}
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:8]
    dataset = NAME_CHARS.sub("-", exp.dataset.rsplit("/", 1)[-1].split(":")[-1]).strip("-") or "data"
    return f"cmp-{dataset}-{digest}"


def check_name(name: str) -> str:
    if not name or NAME_CHARS.search(name):
        raise BenchError(f"--name {name!r}: use letters, digits, '.', '_' and '-' only (it names the studies)")
    return name


def check_tuning_pool(spec, holdout_seeds: list[int]) -> None:
    """Before any model loads: the trials' pool, with the test rows of `holdout_seeds` taken out,
    still holds the split the trials draw (one error naming the way out when it does not)."""
    from bench.data.sources import DatasetOptions, load_raw
    from bench.data.task import hold_out_test_rows, prepare

    raw = load_raw(spec.dataset, DatasetOptions(**spec.dataset_options))
    try:
        pool = hold_out_test_rows(raw, spec.split_spec(), holdout_seeds, spec.test_from, spec.max_rows)
        prepare(pool, spec.split_spec(), spec.seed, spec.test_from, spec.max_rows, spec.train_size)
    except BenchError as exc:
        raise BenchError(f"with the test rows of seeds {','.join(map(str, holdout_seeds))} held out of the "
                         f"tuning data, {exc}; compare on fewer --seeds or a smaller split") from None
