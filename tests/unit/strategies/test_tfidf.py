"""tfidf, the classical floor: through the real CLI on BBC News (seconds: no model loads), its serving
block, energy and FLOPs figures; and what the plan does with a strategy that loads no model and
with the harness's serve_batch."""

from __future__ import annotations

import importlib.util

import pytest

from bench.core.errors import BenchError
from bench.core.records import iter_records
from bench.reporting.summary import flatten
from bench.running.config import Experiment, parse_param_flags
from bench.running.plan import plan
from tests.conftest import run_bench

HAS_CODECARBON = importlib.util.find_spec("codecarbon") is not None
MEASURED = {"FTBENCH_ENERGY": "on", "FTBENCH_SERVING": "on"}  # the suite turns both off (tests/conftest.py)


def test_tfidf_end_to_end_on_bbc_news(tmp_path):
    out = run_bench("run", "--strategies", "tfidf", "--per-class", "8,4,6", "--results-dir", str(tmp_path / "r"),
                    "-o", str(tmp_path / "index.html"), timeout=120, env=MEASURED)
    assert out.returncode == 0, out.stderr[-3000:]
    (rec,) = list(iter_records(tmp_path / "r"))
    assert rec.status == "ok" and rec.model.name == "none" and rec.metrics.accuracy > 0.5  # 5 classes: chance 0.2
    cost = rec.cost
    assert cost.trainable_params == cost.total_params > 5  # the coefficients and intercepts
    # no network: FLOPs and MFU absent, not 0
    assert cost.flops_kind == "none" and cost.train_mfu is None and cost.flops_per_eval_token is None
    s = rec.serving
    assert s.measured and s.error is None and s.latency_texts >= 50 and 0 < s.latency_p50_ms <= s.latency_p95_ms
    assert s.throughput_per_s > 0 and s.serve_batch == 32 and s.ship_total_bytes == s.ship_specific_bytes > 0
    assert s.ship_base_bytes == 0 and "no adapter to merge" in s.merged_reason
    # energy: a figure with its basis where codecarbon is installed (setup installs it), never a bare 0
    assert (cost.energy_kwh is None) == (cost.energy_estimated is None) and cost.energy_basis
    if HAS_CODECARBON:
        assert cost.energy_kwh > 0 and isinstance(cost.energy_estimated, bool)
    else:
        assert cost.energy_kwh is None and "not installed" in cost.energy_basis
    assert f"serving p50 {s.latency_p50_ms:.1f} ms" in out.stdout  # the run's line in the log says it too
    row = flatten(rec)
    assert row["latency_p50_ms"] == s.latency_p50_ms and row["ship_total_bytes"] == s.ship_total_bytes
    html = (tmp_path / "index.html").read_text()
    assert "Serving latency p50" in html and "Accuracy against serving cost" in html


def test_tfidf_holds_its_no_model_whatever_model_the_run_gives():
    exp = Experiment(strategies=["tfidf", "feature-extract"], model="minilm", per_class=(5, 2, 5))
    specs = {s.strategy: s for s in plan(exp, check_data=False)}
    assert specs["tfidf"].model == "none" and specs["feature-extract"].model == "minilm"
    with pytest.raises(BenchError, match="loads no pretrained model"):
        plan(Experiment(strategies=["tfidf"], models={"tfidf": "minilm"}, per_class=(5, 2, 5)), check_data=False)


def test_serve_batch_is_the_harness_s_and_changes_the_run_id_only_when_not_the_default():
    def specs(*flags):
        exp = Experiment(strategies=["tfidf", "feature-extract"], per_class=(5, 2, 5), params=parse_param_flags(list(flags)))
        return {s.strategy: s for s in plan(exp, check_data=False)}

    plain, default, eight = specs(), specs("serve_batch=32"), specs("serve_batch=8", "tfidf.serve_batch=4")
    assert plain["tfidf"].serve_batch is None and plain["tfidf"].run_id == default["tfidf"].run_id
    assert eight["feature-extract"].serve_batch == 8 and eight["tfidf"].serve_batch == 4  # its own wins
    assert eight["tfidf"].run_id != plain["tfidf"].run_id
    assert "serve_batch" not in eight["tfidf"].params  # not a strategy's parameter
    for bad in ("0", "-1", "many", "2.5", "true"):
        with pytest.raises(BenchError, match="serve_batch"):
            specs(f"serve_batch={bad}")


def test_a_class_missing_from_training_gets_probability_zero_not_a_shifted_column():
    import dataclasses

    import numpy as np

    from strategies.tfidf import Tfidf
    from tests.tiny import context, tiny_task

    task = tiny_task()
    keep = np.flatnonzero(task.train.labels != 1)  # no "tech" row to learn from
    ctx = context(dataclasses.replace(task, train=task.train.subset(keep)), folder="", architecture=None)
    result = Tfidf().run(ctx, Tfidf.Params())
    ids, proba = result.served.predict(ctx.eval.texts)
    proba = np.asarray(proba)
    assert proba.shape == (len(ctx.eval.texts), 3) and np.all(proba[:, 1] == 0) and 1 not in ids
    right = np.asarray(ids) == ctx.eval.labels
    assert right[ctx.eval.labels != 1].mean() > 0.5  # the other two columns are still the right ones
