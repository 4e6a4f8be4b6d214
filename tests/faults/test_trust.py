"""What goes in and what comes out, met as a user meets it (the real CLI, small splits): data with its
own splits, near-duplicates and conflicting labels; a report over runs that do not compare, and over
records holding impossible figures."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from tests.faults.faultkit import QUICK, bench, records

HF_OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
FE = ["--strategies", "feature-extract"]


def topic_rows(n: int, tag: str) -> list[dict]:
    topics = ["football match goal", "stock market shares", "film actor award"]
    labels = ["sport", "money", "film"]
    return [{"text": f"{tag} report {i}: the {topics[i % 3]} story number {i}", "label": labels[i % 3]}
            for i in range(n)]


def test_a_stratified_split_pools_every_split_of_an_hf_dataset_and_per_class_says_what_it_left_out(tmp_path):
    data = tmp_path / "hfdata"
    data.mkdir()
    for name, rows in (("train", topic_rows(45, "tr")), ("test", topic_rows(15, "te"))):
        (data / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    folder = tmp_path / "results"
    out = bench("run", *FE, "--dataset", f"hf:{data}", "--split", "stratified:0.6,0.2,0.2", "--results-dir",
                str(folder), "--no-report", extra_env=HF_OFFLINE)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "stratified:0.6,0.2,0.2 draws from its train and test splits" in out.stdout
    (rec,) = records(folder)
    ds = rec["dataset"]
    assert ds["n_train"] + ds["n_val"] + ds["n_test"] == 60 and ds["split"]["pool"] == ["train", "test"]
    per_class = bench("run", *FE, "--dataset", f"hf:{data}", "--per-class", "5,2,5", "--results-dir",
                      str(folder), "--no-report", extra_env=HF_OFFLINE)
    assert per_class.returncode == 0, per_class.stderr[-2000:]
    assert "draws from its train split; its test split is left out" in per_class.stdout


def test_near_duplicates_conflicts_and_label_spellings_are_said_before_the_run_and_in_the_report(tmp_path):
    train = topic_rows(36, "tr")
    train[0]["label"] = "Sport "  # one label, two spellings: merged on request
    test = topic_rows(12, "te")
    test += [dict(r, text=r["text"].upper()) for r in train[1:5]]  # the same texts in capitals
    test += [dict(train[7], text=train[7]["text"] + "!!", label="film" if train[7]["label"] != "film" else "money")]
    csv = tmp_path / "data.csv"
    import csv as csvlib

    with open(csv, "w", newline="") as fh:
        w = csvlib.DictWriter(fh, ["text", "label", "part"])
        w.writeheader()
        w.writerows([dict(r, part="train") for r in train] + [dict(r, part="test") for r in test])
    folder, report = tmp_path / "results", tmp_path / "report.html"
    refused = bench("run", *FE, "--dataset", f"csv:{csv}", "--split", "official", "--split-col", "part",
                    "--results-dir", str(folder), "--no-report")
    assert refused.returncode == 2 and "'Sport '" in refused.stderr and "merge_labels=true" in refused.stderr
    out = bench("run", *FE, "--dataset", f"csv:{csv}", "--split", "official", "--split-col", "part",
                "--data-opt", "merge_labels=true", "--results-dir", str(folder), "-o", str(report))
    assert out.returncode == 0, out.stderr[-2000:]
    warned = [ln for ln in out.stderr.splitlines() if ln.startswith("warning:")]
    assert any("dropped from the later split: 5 from test" in w for w in warned), out.stderr
    assert any("conflicting labels" in w and "first row's label is kept" in w for w in warned), out.stderr
    (rec,) = records(folder)
    hygiene = rec["dataset"]["hygiene"]
    assert hygiene["near_duplicates_dropped"] == {"test": 5} and hygiene["conflicts_dropped"] == 1
    assert hygiene["labels_merged"] == {"sport": ["Sport ", "sport"]} and rec["dataset"]["n_test"] == 12
    assert "sport" in rec["dataset"]["labels"] and "Sport " not in rec["dataset"]["labels"]
    html = report.read_text()
    assert "dropped from the later split" in html and "merged into" in html


def test_runs_on_other_seeds_are_called_not_comparable_never_significantly_worse(tmp_path, copy_finished):
    folder, _ = copy_finished(tmp_path / "results")  # feature-extract, seed 0
    out = bench("run", *QUICK, "--seeds", "1", "--param", "feature-extract.C=4", "--results-dir", str(folder),
                "-o", str(tmp_path / "report.html"))
    assert out.returncode == 0, out.stderr[-2000:]
    html = (tmp_path / "report.html").read_text()
    assert "not comparable: different seeds/splits" in html
    assert "significantly worse" not in html and "is better" not in html


def test_impossible_figures_are_flagged_invalid_and_a_huge_integer_stops_nothing(tmp_path, copy_finished):
    folder, _ = copy_finished(tmp_path / "results")
    (good,) = records(folder)
    tampered = {"accuracy-5": ("metrics", "accuracy", 5.0), "accuracy-inf": ("metrics", "accuracy", float("inf")),
                "negative-time": ("cost", "time_s", {"train": -4.0, "total": 3.0}),
                "params-10-400": ("cost", "trainable_params", 10**400)}
    for name, (block, key, value) in tampered.items():
        rec = copy.deepcopy(good)
        rec.update(run_id=name, strategy=f"x-{name}")
        rec[block][key] = value
        (folder / f"{name}.json").write_text(json.dumps(rec))  # as another tool or a hand edit writes it
    out = bench("report", str(folder), "-o", str(tmp_path / "report.html"))
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    html = " ".join((tmp_path / "report.html").read_text().split())
    assert "4 ok runs hold figures that cannot be true" in html and "This section could not be built" not in html
    for flag in ("accuracy 5.0 (outside [0, 1])", "accuracy inf (not a finite number)", "too large to be a figure",
                 "train_time_s -4.0 (outside"):
        assert flag in html, flag
    summary = html.split('id="summary"')[1].split("</section>")[0]
    assert "x-accuracy-5" not in summary and "x-params-10-400" not in summary  # out of every ranking
    assert Path(tmp_path / "report.csv").exists()
