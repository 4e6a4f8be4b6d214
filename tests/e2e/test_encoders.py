"""End-to-end through the CLI with the real shipped MiniLM on the embedded BBC News and on the
local AG News file. Slow (a minute or two each): `pytest -m 'not slow'` skips them; CI runs them."""

import pytest

from bench.core.records import iter_records
from tests.conftest import SHARED_AG_NEWS, run_bench

pytestmark = pytest.mark.slow


def by_strategy(folder):
    return {r.strategy: r.to_dict() for r in iter_records(folder)}


def test_feature_extract_and_full_ft_on_bbc_news(tmp_path):
    out = run_bench("run", "--strategies", "feature-extract,full-ft", "--dataset", "bbc-news", "--seeds", "0",
                    "--per-class", "30,10,30", "--param", "full-ft.epochs=2", "--param", "full-ft.max_length=96",
                    "--results-dir", str(tmp_path / "r"), "-o", str(tmp_path / "index.html"))
    assert out.returncode == 0, out.stderr[-3000:]
    recs = by_strategy(tmp_path / "r")
    fe, ft = recs["feature-extract"], recs["full-ft"]
    assert fe["status"] == ft["status"] == "ok"
    # real pretrained MiniLM: a frozen encoder + logistic regression separates BBC topics well
    assert fe["metrics"]["accuracy"] >= 0.9, fe["metrics"]
    assert fe["cost"]["trainable_params"] == 384 * 5 + 5  # the head alone
    assert fe["cost"]["total_params"] > 22_000_000
    # full fine-tuning from a random head: near chance before, far above after
    assert ft["baseline"]["accuracy"] < 0.5 and ft["metrics"]["accuracy"] >= ft["baseline"]["accuracy"] + 0.3
    assert ft["cost"]["trainable_params"] == ft["cost"]["total_params"] > 22_000_000
    # each run measured in its own process: the frozen path needs far less memory than training
    assert fe["cost"]["peak_rss_mb"] < ft["cost"]["peak_rss_mb"]
    assert "sentence-transformers/all-MiniLM-L6-v2" in ft["model"]["provenance"]
    # every accuracy carries its bootstrap interval; the majority floor sits beside the untrained baseline
    low, high = fe["metrics"]["ci"]["accuracy"]
    assert low <= fe["metrics"]["accuracy"] <= high and high - low < 0.2
    assert fe["majority_baseline"]["accuracy"] == pytest.approx(0.2)  # balanced 5 classes
    assert fe["dataset"]["class_counts"]["test"] == dict.fromkeys(fe["dataset"]["labels"], 30)
    assert fe["truth"] == ft["truth"]  # same test rows, so the report can pair them
    html = (tmp_path / "index.html").read_text()
    assert "Is the difference real?" in html and "highest accuracy" in html
    again = run_bench("run", "--strategies", "feature-extract,full-ft", "--dataset", "bbc-news", "--seeds", "0",
                      "--per-class", "30,10,30", "--param", "full-ft.epochs=2", "--param", "full-ft.max_length=96",
                      "--results-dir", str(tmp_path / "r"), "--no-report")
    assert again.returncode == 0 and again.stdout.count("skipped") == 2


@pytest.mark.skipif(not SHARED_AG_NEWS.is_dir(), reason="../shared/data/ag_news is absent")
def test_feature_extract_on_local_ag_news(tmp_path):
    out = run_bench("run", "--strategies", "feature-extract", "--dataset", "ag_news", "--data-opt",
                    f"dir={SHARED_AG_NEWS}", "--per-class", "200,50,200", "--results-dir", str(tmp_path), "--no-report")
    assert out.returncode == 0, out.stderr[-3000:]
    rec = by_strategy(tmp_path)["feature-extract"]
    assert rec["dataset"]["labels"] == ["World", "Sports", "Business", "Sci/Tech"]
    assert rec["dataset"]["n_test"] == 800
    assert rec["metrics"]["accuracy"] >= 0.8, rec["metrics"]


def test_imbalanced_csv_through_a_stratified_split(tmp_path):
    """Two BBC topics at about 87/13: the test split keeps the imbalance, balanced accuracy is the
    headline, and the majority floor (accuracy 0.87, balanced 0.5) is in the record."""
    import pandas as pd

    from bench.data.sources import load_raw

    pool = load_raw("bbc-news").pool.drop_duplicates("text")
    big = pool[pool["label"] == "business"].head(260)
    small = pool[pool["label"] == "politics"].head(39)
    pd.concat([big, small])[["text", "label"]].to_csv(tmp_path / "imb.csv", index=False)
    out = run_bench("run", "--strategies", "feature-extract", "--dataset", f"csv:{tmp_path / 'imb.csv'}",
                    "--split", "stratified:0.6,0.2,0.2", "--results-dir", str(tmp_path / "r"),
                    "-o", str(tmp_path / "index.html"))
    assert out.returncode == 0, out.stderr[-3000:]
    rec = by_strategy(tmp_path / "r")["feature-extract"]
    assert rec["dataset"]["class_counts"]["test"] == {"business": 52, "politics": 8}
    assert rec["majority_baseline"]["accuracy"] == pytest.approx(52 / 60)
    assert rec["majority_baseline"]["balanced_accuracy"] == 0.5
    assert rec["metrics"]["balanced_accuracy"] > 0.6
    assert "rank by balanced accuracy" in (tmp_path / "index.html").read_text()
