"""`bench compare` end to end through the CLI with the shipped models on a small split of the
embedded BBC News: feature-extract and bitfit (MiniLM), two trials each, then their defaults and
best parameters on the test split. Slow (a couple of minutes)."""

import pytest

from bench.core.records import iter_records
from tests.conftest import run_bench

pytestmark = pytest.mark.slow


def test_compare_feature_extract_and_bitfit(tmp_path):
    results = tmp_path / "r"
    args = ["compare", "--strategies", "feature-extract,bitfit", "--budget", "trials:2", "--seeds", "0",
            "--per-class", "8,4,8", "--param", "bitfit.max_length=64", "--results-dir", str(results),
            "-o", str(tmp_path / "index.html")]
    out = run_bench(*args)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    records = [r for r in iter_records(results) if r.comparison is not None]
    trials = [r for r in records if r.comparison.role == "trial"]
    tests = {(r.strategy, r.comparison.variant): r for r in records if r.comparison.role == "test"}
    assert len(trials) == 4 and len(tests) == 4 and all(r.status == "ok" for r in tests.values())
    assert all(r.eval_split == "val" and r.dataset.n_test == 0 for r in trials)
    # a trial measures neither serving nor energy (its test runs do) and is forked from the preloaded server
    assert all(r.cost.energy_kwh is None and "tuning trial" in r.cost.energy_basis for r in trials)
    assert all(r.env["worker_start"] == "forked" for r in records)
    # the real pretrained encoder: its defaults separate BBC topics; tuning picks the best validation trial
    assert tests[("feature-extract", "default")].metrics.accuracy >= 0.8
    assert all(r.comparison.budget == "trials:2" and r.comparison.prefer == "train-time" for r in records)
    assert "used 2 of 2 trials" in out.stdout and "test tuned" in out.stdout
    html = (tmp_path / "index.html").read_text()
    assert "Comparison: each strategy at its best" in html and "could not be built" not in html
    assert "statistically tied" in html or "significantly ahead" in html or "only strategy" in html
