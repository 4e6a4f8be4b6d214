"""The report's result table as Markdown, for documentation and terminals: `bench report --format md`
and the generated tables of README.md and docs/ (scripts/docs_tables.py).

It reads the same summary the HTML report shows (`summary.runs_frame`, `summary.summary_table`), writes
numbers with the same formats (`formats.py`) and states the tied set with the report's own sentence
(`report_trust.tied_lines`), so a published table and the report never disagree. Everything in it
comes from the records, what they were measured on included; the text depends only on the records,
not on the order they are read in, so a table regenerated from the same records is byte-identical.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from bench.core.errors import BenchError
from bench.core.record import Record
from bench.core.records import iter_records
from bench.core.secrets import mask_secrets
from bench.reporting import report, report_trust, summary
from bench.reporting.formats import (fmt_bytes, fmt_mb, fmt_mean_std, fmt_ms, fmt_params, fmt_score, fmt_seconds,
                                     missing)


def markdown_report(results_dir: str | Path) -> str:
    """The Markdown summary of every record under `results_dir` (files that are not records are
    skipped with a warning, as the HTML report skips them)."""
    records = list(iter_records(results_dir))
    if not records:
        raise BenchError(f"no run records in '{results_dir}/'; run `bench run` first "
                         "or pass the folder that holds them")
    return markdown_summary(records)


def markdown_summary(records: Iterable["Record | dict"]) -> str:
    """What was measured, the result table (one row per strategy, model and variant; seeds averaged),
    what its figures mean, the tied set per dataset, and which runs were left out."""
    records = sorted(summary.dedupe(records), key=lambda r: (str(r.run_id), str(r.finished_at)))
    if not records:
        raise BenchError("no run records to tabulate; run `bench run` first or pass the folder that holds them")
    runs = summary.runs_frame(records)
    table = summary.summary_table(runs)
    counted = [r for r in records if r.status == "ok" and not summary.is_trial(r)]
    lines = []
    if counted:
        lines += [measured_on(counted), ""]
    if len(table):
        labels = escaped(report.group_labeler(table))
        lines += table_lines(table, runs) + ["", notes(table, runs), ""]
        tied, _ = report_trust.tied_lines(runs, labels)
        lines += [f"Is the difference real? {line}" for dataset in sorted(tied) for line in tied[dataset]]
    else:
        lines.append("No run finished ok, so there is nothing to tabulate.")
    lines += warnings(counted) + left_out(records)
    return "\n".join(lines).rstrip("\n") + "\n"


# ---------------------------------------------------------------- what was measured

def measured_on(records: list[Record]) -> str:
    """One sentence from the records: data and split, seeds, device, precision, code version, dates."""
    data = sorted({f"{summary.name_of(r.dataset.name)} ({split_text(r)})" for r in records})
    seeds = sorted({r.seed for r in records if r.seed is not None})
    commits = sorted({str((r.env or {}).get("git_commit") or "an unknown commit") for r in records})
    days = sorted({r.finished_at[:10] for r in records if isinstance(r.finished_at, str)})
    when = days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}" if days else "an unknown date"
    seed_text = f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}" if seeds else "no seed"
    return md_text(f"Measured on {'; '.join(data)}, {seed_text}, on {devices_text(records)}, "
                   f"with ftbench {', '.join(commits)}, {when}.")


def split_text(record: Record) -> str:
    how = record.dataset.split if isinstance(record.dataset.split, dict) else {}
    spec = str(how.get("spec") or "per-class")
    test = record.dataset.n_test
    return spec + (f", {test} test rows" if isinstance(test, int) else "")


def devices_text(records: list[Record]) -> str:
    """Each device the runs used, with its threads (CPU) and the precisions computed in."""
    found: dict[str, set[str]] = {}
    for record in records:
        env = record.env or {}
        device = str(env.get("device") or "an unknown device")
        name = (env.get("gpu") if device.startswith("cuda") else env.get("cpu")) or env.get("device_name")
        threads = env.get("threads") if not device.startswith("cuda") else None
        where = f"{device} {name}" if name else device
        where += f", {threads} threads" if isinstance(threads, int) else ""
        compute = summary.dig(record.cost.precision if record.cost else None, "compute")
        found.setdefault(where, set()).update([str(compute)] if compute else [])
    return "; ".join(where + (f", {'/'.join(sorted(p))}" if p else "") for where, p in sorted(found.items()))


# ---------------------------------------------------------------- the table

def table_lines(table: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    several = {"dataset": table["dataset"].nunique() > 1, "train_size": bool(table["train_size"].astype(bool).any()),
               "variant": bool(table["variant"].astype(bool).any()), "seeds": table["seeds"].nunique() > 1}
    kinds = report.memory_kinds(table)
    headers = ["strategy", "model"] + [h for key, h in (("dataset", "dataset"), ("train_size", "train size"),
                                                        ("variant", "variant"), ("seeds", "seeds")) if several[key]]
    headers += ["test accuracy [95% CI]", "balanced accuracy", "untrained", "trainable params",
                f"peak memory ({', '.join(kinds) or 'headline figure'})", "run time",
                "serving p50 per text", "bytes to ship"]
    untrained = untrained_accuracy(runs)
    rows = []
    for _, row in table.iterrows():
        cells = [md_text(row["strategy"]), md_text(row["model"])]
        cells += [md_text(row[key] or "all") for key in ("dataset", "train_size", "variant", "seeds") if several[key]]
        cells += [with_interval(row, "accuracy"),
                  with_interval(row, "balanced_accuracy") if row["headline"] == "balanced_accuracy"
                  else fmt_mean_std(row["balanced_accuracy_mean"], row["balanced_accuracy_std"], fmt_score),
                  figure(untrained.get(tuple(row[k] for k in summary.GROUP_KEYS)), fmt_score),
                  fmt_params(row["trainable_params_mean"], row["trainable_pct"]),
                  fmt_mean_std(row["memory_mb_mean"], row["memory_mb_std"], fmt_mb),
                  fmt_mean_std(row["total_time_s_mean"], row["total_time_s_std"], fmt_seconds),
                  fmt_mean_std(row["latency_p50_ms_mean"], row["latency_p50_ms_std"], fmt_ms),
                  fmt_mean_std(row["ship_total_bytes_mean"], row["ship_total_bytes_std"], fmt_bytes)]
        rows.append(cells)
    return [markdown_row(headers), markdown_row(["---"] * len(headers))] + [markdown_row(r) for r in rows]


def with_interval(row: pd.Series, metric: str) -> str:
    text = fmt_mean_std(row[f"{metric}_mean"], row[f"{metric}_std"], fmt_score)
    interval = report_trust.fmt_interval(row[f"{metric}_ci_low"], row[f"{metric}_ci_high"])
    return f"{text} {interval}" if interval and text != "—" else text


def untrained_accuracy(runs: pd.DataFrame) -> dict[tuple, float]:
    """Mean accuracy of each group's untrained starting point (the record's `baseline`)."""
    counted = runs[summary.summary_mask(runs)]
    if counted.empty:
        return {}
    means = counted.groupby(summary.GROUP_KEYS, sort=True)["baseline_accuracy"].mean()
    return {key: float(value) for key, value in means.items()}


def figure(value: float | None, fmt: Callable[[float], str]) -> str:
    return "—" if missing(value) else fmt(value)


def notes(table: pd.DataFrame, runs: pd.DataFrame) -> str:
    """What the table's figures are, in the words the records support."""
    kinds = sorted({k for k in table["accuracy_ci_kind"] if isinstance(k, str) and k})
    text = []
    if kinds:
        text.append(f"Brackets: 95% interval ({'; '.join(k.replace('bootstrap', 'BCa bootstrap') for k in kinds)}).")
    if (table["n_seeds"] > 1).any():
        text.append("± is the standard deviation over seeds.")
    headline = set(table["headline"])
    if "balanced_accuracy" in headline:
        text.append("The test split is imbalanced, so strategies are ranked by balanced accuracy.")
    text.append("Untrained: the run's own starting point before training (instruct-ft's is zero-shot on its "
                "prompt); trainable params: what the optimizer updated (% of all); run time: the whole run "
                "(loading, the untrained baseline, training, evaluation); serving: one text at a time, after "
                "training, as deployed (the LoRA family unmerged); bytes to ship: everything needed to serve "
                "from nothing, the frozen base counted.")
    if runs["random_weights"].fillna(False).astype(bool).any():
        text.append("Runs on random weights (random:NAME) measure time and memory only; their accuracy is left out.")
    return " ".join(text)


# ---------------------------------------------------------------- what a reader must know besides

def warnings(records: list[Record]) -> list[str]:
    """What the runs noticed (a collapse to one class, ...), as the report's warnings section has it."""
    found = sorted(report_trust.warning_lines(records), key=lambda w: (w["run"], w["text"]))
    return ["", "Warnings in the records:", ""] + [f"- {md_text(w['run'])}: {md_text(w['text'])}"
                                                  for w in found] if found else []


# ---------------------------------------------------------------- what is not in the table

def left_out(records: list[Record]) -> list[str]:
    trials = [r for r in records if summary.is_trial(r)]
    unfinished = [r for r in records if r.status != "ok" and not summary.is_trial(r)]
    lines = []
    if unfinished:
        runs = "; ".join(md_text(f"{r.strategy} seed {r.seed}: {r.status}") for r in unfinished)
        lines.append(f"Not in the table: {len(unfinished)} run(s) that did not finish ok ({runs}); "
                     "`bench report` shows their errors.")
    if trials:
        lines.append(f"Not in the table: {len(trials)} tuning trial(s) (scored on the validation split).")
    return [""] + lines if lines else []


# ---------------------------------------------------------------- Markdown text

MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


def md_text(value: Any) -> str:
    """Text from a record, safe in a Markdown table cell: one line, secrets masked, and the characters
    Markdown or HTML would read (pipes, brackets, emphasis, tags) escaped."""
    text = "—" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    text = mask_secrets(" ".join(text.split()))
    return MARKDOWN_SPECIAL.sub(r"\\\1", text)


def escaped(label: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda row: md_text(label(row))


def markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"
