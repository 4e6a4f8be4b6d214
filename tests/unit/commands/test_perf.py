"""`bench perf`: its help, an unknown leg, the printed table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import run_bench


def test_bench_perf_help_documents_its_flags():
    out = run_bench("perf", "--help", timeout=60)
    assert out.returncode == 0, out.stderr
    for flag in ("--legs", "--per-class", "--epochs", "--output", "--repeats", "default-run", "feature-extract"):
        assert flag in out.stdout


def test_bench_perf_rejects_an_unknown_leg(tmp_path):
    out = run_bench("perf", "--legs", "full-ft,warp-drive", "--output", str(tmp_path / "p.json"), timeout=60)
    assert out.returncode == 2 and "warp-drive" in out.stderr
    assert not (tmp_path / "p.json").exists()


def test_perf_table_prints_from_a_report(capsys):
    from bench.commands.perf import print_table

    suite = {"status": "ok", "wall_s": 10.0, "accuracy": 0.9, "train_mfu": 0.3}
    hand = {"status": "ok", "wall_s": 20.0, "accuracy": 0.89}
    print_table({"legs": [{"leg": "full-ft", "model": "minilm", "suite": suite, "handwritten": hand, "ratio": 0.5},
                          {"leg": "feature-extract", "params": {"epochs": 5}, "suite": suite, "suite_warm": suite,
                           "handwritten": hand, "ratio": 0.5, "ratio_warm": 0.5, "speedup": 2.0,
                           "speedup_warm": 2.0}]})
    text = capsys.readouterr().out
    assert "hand-written Trainer" in text and "0.50" in text and json.dumps(0.9) in text


def test_the_report_leg_renders_copies_of_real_records_and_prints_time_and_size(tmp_path, capsys):
    from bench.commands import cli
    from bench.core.records import iter_records
    from tests.report_records import comparison_run, write_all

    source = write_all(tmp_path / "real", [comparison_run("lora", 0, "default", 50)])
    out = tmp_path / "perf.json"
    assert cli.main(["perf", "--legs", "report", "--report-records", "120", "--report-from", str(source),
                     "--output", str(out), "--keep"]) == 0
    leg = json.loads(out.read_text())["legs"][0]
    # two seeds: the default run's 6 strategies x default/tuned x 2 = 24 test runs; 96 trials
    assert (leg["records"], leg["tests"], leg["trials"]) == (120, 24, 96)
    records = list(iter_records(leg["records_dir"]))
    assert len(records) == 120 and len({r.run_id for r in records}) == 120 and all(not r.odd for r in records)
    assert {r.status for r in records} == {"ok", "pruned", "failed"}
    html = open(leg["page"]).read()
    assert "Comparison: each strategy at its best" in html and leg["page_mb"] > 0
    assert "render 120 records (96 trials)" in capsys.readouterr().out
    shutil.rmtree(Path(leg["records_dir"]).parent)  # the leg's folder, kept by --keep to be read here
