"""`bench perf`: its help, an unknown leg, the printed table."""

from __future__ import annotations

import json

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
