"""The result table as Markdown (bench/reporting/markdown.py, `bench report --format md`) from
hand-made records: figures and intervals as the HTML report has them, the tied set, what ran where,
runs left out, escaping, and the same text whatever order the records come in."""

from __future__ import annotations

import numpy as np
import pytest

from bench.commands.cli import main
from bench.reporting.markdown import markdown_summary, md_text
from tests.report_records import fixture_records, not_finished_record, ok_record, predicted_record, write_all


def rows_of(text: str) -> dict[str, list[str]]:
    """The table's body rows by their first cell (header and rule left out)."""
    lines = [line for line in text.splitlines() if line.startswith("| ")][2:]
    return {cells[0]: cells for cells in ([c.strip() for c in line.strip("|").split(" | ")] for line in lines)}


def header_of(text: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith("| strategy"))
    return [c.strip() for c in line.strip("|").split(" | ")]


def noisy(truth: np.ndarray, accuracy: float, rng) -> np.ndarray:
    return np.where(rng.random(len(truth)) < accuracy, truth, (truth + 1) % 3)


@pytest.fixture(scope="module")
def paired():
    """Two seeds of three strategies on the same 300 rows: two close, one far behind."""
    rng = np.random.default_rng(0)
    truth = np.repeat([0, 1, 2], 100)
    recs = []
    for seed in (0, 1):
        recs += [predicted_record("strong", seed, truth, noisy(truth, 0.92, rng), train_s=20.0 + seed),
                 predicted_record("close", seed, truth, noisy(truth, 0.91, rng), trainable=5_000),
                 predicted_record("weak", seed, truth, noisy(truth, 0.70, rng), baseline=None)]
    return recs


def test_figures_over_seeds_with_their_intervals():
    text = markdown_summary(fixture_records())
    rows = rows_of(text)
    assert list(rows) == ["full-ft", "lora", "zero-shot"]  # best first, as the report orders them
    assert header_of(text)[2:] == ["test accuracy [95% CI]", "balanced accuracy", "untrained", "trainable params",
                                   "peak memory (CPU peak RSS)", "run time", "serving p50 per text", "bytes to ship"]
    ft = rows["full-ft"]
    # 0.90 and 0.92: mean ± std, and the t-interval over the two seeds clipped to [0, 1]
    assert ft[2] == "0.910 ± 0.014 [0.783, 1.000]"
    assert ft[3] == "0.909 ± 0.014" and ft[4] == "0.330" and ft[5] == "22.7M (100%)"
    assert ft[6] == "1,460 MB ± 14 MB" and ft[7] == "108 s ± 7.1 s"  # totals 103.5 and 113.5 s
    assert rows["lora"][1] == "smollm2" and rows["lora"][5] == "500.0k (0.37%)"
    assert rows["zero-shot"][4] == "—"  # no untrained point
    assert ft[8:] == ["—", "—"]  # these records carry no serving block: not measured, never 0
    assert "± is the standard deviation over seeds" in text and "t-interval over 2 seeds" in text


def test_what_ran_where_and_what_was_left_out():
    text = markdown_summary(fixture_records())
    first = text.splitlines()[0]
    assert first == ("Measured on bbc-news (per-class, 150 test rows), seeds 0, 1, on cpu Test CPU, 2 threads, "
                     "with ftbench abc1234, 2026-01-01.")
    assert "Not in the table: 2 run(s) that did not finish ok (full-ft seed 2: oom; qlora seed 0: failed)" in text
    assert "Not in the table: 4 tuning trial(s)" in text
    assert "bitsandbytes cannot do 4-bit" not in text  # errors stay in the records and the HTML report


def test_one_seed_shows_its_bootstrap_interval(paired):
    text = markdown_summary([r for r in paired if r["seed"] == 0])
    strong = rows_of(text)["strong"]
    low, high = paired[0]["metrics"]["ci"]["accuracy"]
    assert strong[2] == f"{paired[0]['metrics']['accuracy']:.3f} [{low:.3f}, {high:.3f}]" and "±" not in strong[2]
    assert "BCa bootstrap over test rows" in text and "standard deviation" not in text


def test_the_tied_set_is_one_sentence(paired):
    text = markdown_summary(paired)
    [line] = [line for line in text.splitlines() if line.startswith("Is the difference real?")]
    assert line.startswith("Is the difference real? bbc-news: highest accuracy: strong (")
    assert "statistically tied with it (Holm-corrected p ≥ 0.05): close: the data cannot tell these apart" in line
    assert line.endswith("significantly worse (Holm-corrected p < 0.05): weak.")  # weak is not in the tied set


def test_the_same_records_in_any_order_give_the_same_text(paired):
    assert markdown_summary(paired) == markdown_summary(list(reversed(paired)))


def test_imbalanced_test_split_ranks_by_balanced_accuracy_and_shows_its_interval():
    rng = np.random.default_rng(1)
    truth = np.array([0] * 120 + [1] * 30 + [2] * 30)
    recs = [predicted_record("a", 0, truth, noisy(truth, 0.9, rng)), predicted_record("b", 0, truth, truth)]
    text = markdown_summary(recs)
    assert "ranked by balanced accuracy" in text
    assert rows_of(text)["b"][3] == "1.000 [1.000, 1.000]"  # balanced accuracy with its interval


def test_text_from_records_cannot_break_the_table():
    rec = ok_record("lora", 0, 0.8, model="org/m|<b>x</b>", trainable=1, total=10, train_s=1.0, memory_mb=1.0)
    text = markdown_summary([rec])
    row = next(line for line in text.splitlines() if line.startswith("| lora"))
    assert row.count(" | ") == len(header_of(text)) - 1  # the pipe in the name is no extra cell
    assert "org/m\\|\\<b\\>x\\</b\\>" in row and "<b>" not in text
    assert md_text("a\nb *c* [d]") == "a b \\*c\\* \\[d\\]"


def test_the_records_warnings_are_listed():
    records = fixture_records()
    records[1]["warnings"] = ["collapsed to one class: predicted '<b>' for 40 of 50 rows"]
    text = markdown_summary(records)
    assert "Warnings in the records:" in text and "warnings" not in markdown_summary(fixture_records()).lower()
    assert ("- lora \\[smollm2\\] on bbc-news, seed 0: collapsed to one class: predicted '\\<b\\>' for 40 of "
            "50 rows") in text


def test_no_run_finished_ok():
    text = markdown_summary([not_finished_record("lora", 0, "failed", "boom")])
    assert "No run finished ok" in text and "lora seed 0: failed" in text and "|" not in text


def test_bench_report_format_md(tmp_path, capsys):
    folder = write_all(tmp_path / "results", fixture_records())
    assert main(["report", "--format", "md", str(folder)]) == 0
    printed = capsys.readouterr().out
    assert printed == markdown_summary(fixture_records())
    out = tmp_path / "docs" / "table.md"
    assert main(["report", "--format", "md", "--results-dir", str(folder), "-o", str(out)]) == 0
    assert out.read_text() == printed and not (tmp_path / "docs" / "table.csv").exists()
    assert main(["report", "--format", "md", str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err.startswith("error: no run records in")
