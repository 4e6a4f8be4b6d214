"""A run that predicts one class for nearly every row carries a warning, and the report lists it."""

from __future__ import annotations

import html

from bench.core.metrics import collapse_warnings
from bench.core.records import write_record
from bench.reporting.report import render_report
from strategies.zero_shot import ZeroShot
from tests.report_records import ok_record, text_of


def test_collapse_to_one_class_is_a_warning():
    labels = ["fresh", "rotten"]
    truth = [0, 1] * 50
    [line] = collapse_warnings(truth, [1] * 100, labels)
    assert "'rotten' for 100 of 100" in line and "true share 50%" in line and "0.500" in line
    [line] = collapse_warnings(truth, [0] + [1] * 99, labels)  # 99 of 100: still a collapse
    assert "'rotten' for 99 of 100" in line and "0.510" in line
    assert collapse_warnings(truth, [0] * 10 + [1] * 90, labels) == []  # 90%: not flagged
    assert collapse_warnings([1] * 96 + [0] * 4, [1] * 100, labels) == []  # the truth is that skewed too
    assert collapse_warnings([1, 1], [1, 1], labels) == []  # one true class: nothing else to predict
    [line] = collapse_warnings(truth, [1] * 100, labels, ZeroShot.collapse_advice)  # what to try, at the end
    assert line.endswith("--param zero-shot.verbalizers='{label: word}'") and "k_shot=4" in line


def test_report_lists_record_warnings(tmp_path):
    rec = ok_record("zero-shot", 0, 0.5, model="smollm2", trainable=0, total=135_000_000, train_s=0.0,
                    memory_mb=1000, baseline=None, epochs=0)
    rec["warnings"] = ["collapsed to one class: predicted 'rotten' for all 100 evaluated rows"]
    quiet = ok_record("full-ft", 0, 0.9, trainable=1, total=1, train_s=1.0, memory_mb=1)
    for r in (rec, quiet):
        write_record(tmp_path / "r" / f"{r['run_id']}.json", r)
    page = render_report(tmp_path / "r", tmp_path / "index.html").read_text(encoding="utf-8")
    shown = html.unescape(text_of(page))
    assert "zero-shot [smollm2] on bbc-news, seed 0: collapsed to one class: predicted 'rotten'" in shown
    assert "full-ft [minilm] on bbc-news, seed 0:" not in shown  # a run without warnings is not listed
