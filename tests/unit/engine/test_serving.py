"""The serving measurement (bench/engine/serving.py) on served objects whose cost is known: a fake
whose predict sleeps a set time per call, and tfidf's real pipeline."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from bench.core.record import Record, Serving
from bench.engine import serving
from strategies.shared.base import ShipSize

SLEEP_S = 0.01


@pytest.fixture(autouse=True)
def _serving_on(monkeypatch):
    monkeypatch.setenv("FTBENCH_SERVING", "on")  # the suite turns it off (tests/conftest.py)


class Sleepy:
    """predict sleeps SLEEP_S a call, whatever the batch; save writes 1,000 bytes beside a 5,000-byte base."""

    def __init__(self, merged=None, fail_save=False):
        self.calls, self._merged, self.fail_save = [], merged, fail_save

    def predict(self, texts):
        self.calls.append(len(texts))
        time.sleep(SLEEP_S)
        return [0] * len(texts), None

    def save(self, folder: Path) -> ShipSize:
        if self.fail_save:
            raise OSError("disk full")
        (folder / "adapter.bin").write_bytes(b"x" * 1000)
        return ShipSize(1000, 5000)

    def merged(self):
        return self._merged if self._merged is not None else "nothing to merge"


def test_latency_is_the_sleep_per_call_and_warm_up_is_not_timed():
    fake = Sleepy()
    out = serving.measure(fake, ["a", "b", "c"], serve_batch=8)
    assert out["measured"] and out["error"] is None
    assert out["latency_texts"] == serving.LATENCY_TEXTS >= 50 and out["warmup"] == serving.WARMUP
    assert SLEEP_S * 1e3 <= out["latency_p50_ms"] < SLEEP_S * 1e3 * 3
    assert out["latency_p95_ms"] >= out["latency_p50_ms"]
    # warm-up singles, timed singles, then whole batches of 8 over at least 32 texts (on CUDA one
    # untimed batch before them)
    singles = serving.WARMUP + serving.LATENCY_TEXTS
    assert fake.calls[:singles] == [1] * singles and set(fake.calls[singles:]) == {8}
    assert len(fake.calls) == singles + 4 and out["throughput_texts"] == 32
    warmed = Sleepy()
    serving.timings(warmed, ["a"], 8, warm_batch=True)
    assert len(warmed.calls) == singles + 1 + 4
    # 8 texts per 10 ms call: at most 800 texts/s, and far above one text per call
    assert 200 < out["throughput_per_s"] <= 8 / SLEEP_S
    assert (out["ship_specific_bytes"], out["ship_base_bytes"], out["ship_total_bytes"]) == (1000, 5000, 6000)
    assert out["merged_reason"] == "nothing to merge" and "merged" not in out
    assert out["peak_rss_mb"] > 0 and out["rss_delta_mb"] >= 0 and out["memory_basis"]


def test_turned_off_it_says_so(monkeypatch):
    monkeypatch.setenv("FTBENCH_SERVING", "off")
    assert serving.measure(Sleepy(), ["a"]) == {"measured": False,
                                                "reason": "not measured: turned off (FTBENCH_SERVING=off)"}


def test_the_merged_variant_is_measured_beside_the_unmerged():
    out = serving.measure(Sleepy(merged=Sleepy()), ["a"], serve_batch=4)
    assert out["merged"]["measured"] and out["merged"]["latency_p50_ms"] >= SLEEP_S * 1e3
    assert "merged_reason" not in out


def test_no_served_model_is_not_measured_never_zeros():
    out = serving.measure(None, ["a"])
    assert out == {"measured": False, "reason": serving.NOT_SERVED}
    block = Serving.from_dict(out)
    assert block.latency_p50_ms is None and block.ship_total_bytes is None


def test_a_failing_step_leaves_its_figures_null_and_says_why():
    out = serving.measure(Sleepy(fail_save=True), ["a"], serve_batch=2)
    assert out["latency_p50_ms"] is not None and out.get("ship_total_bytes") is None
    assert "save: OSError: disk full" in out["error"]


def test_texts_are_cycled_to_the_count_asked():
    assert serving.cycled(["a", "b"], 5) == ["a", "b", "a", "b", "a"]
    with pytest.raises(ValueError):
        serving.cycled([], 3)


def test_the_block_round_trips_in_the_record():
    out = serving.measure(Sleepy(merged=Sleepy()), ["a"], serve_batch=2)
    rec = Record(run_id="r", status="ok", serving=Serving.from_dict(out))
    again = Record.from_dict(rec.to_dict())
    assert again.serving == rec.serving and again.serving.merged.measured
    assert again.to_dict()["serving"] == rec.to_dict()["serving"]
    assert not again.serving.extra and not again.serving.merged.extra  # every key it writes is declared
    assert "serving" not in Record(run_id="r", status="failed").to_dict()  # absent, not null, where none


def test_tfidf_served_predicts_as_its_run_and_ships_its_pipeline(tmp_path):
    from strategies.shared.served import load_served
    from strategies.tfidf import Tfidf, TfidfServed
    from tests.tiny import context, tiny_task

    ctx = context(tiny_task(), folder="", architecture=None)
    strategy = Tfidf()
    result = strategy.run(ctx, strategy.Params())
    ids, proba = result.served.predict(ctx.eval.texts)
    assert ids == result.predictions and np.allclose(np.sum(proba, axis=1), 1.0)
    size = result.served.save(tmp_path)
    assert size.base_bytes == 0 and size.specific_bytes == sum(f.stat().st_size for f in tmp_path.iterdir())
    assert TfidfServed.load(tmp_path).predict(ctx.eval.texts)[0] == ids
    assert load_served(tmp_path).predict(ctx.eval.texts)[0] == ids  # what bench predict loads
    assert isinstance(result.served.merged(), str)
    out = serving.measure(result.served, ctx.eval.texts)
    assert out["measured"] and out["error"] is None and out["latency_p50_ms"] > 0
    assert out["ship_total_bytes"] == size.specific_bytes
    assert result.trainable_params == result.total_params > 0


def test_a_tuning_trial_is_not_measured_and_a_test_run_is():
    from types import SimpleNamespace

    from bench.running.worker import serving_block

    ctx = SimpleNamespace(eval=SimpleNamespace(texts=["a", "b"]), tracker=SimpleNamespace(log=lambda m: None))
    trial = serving_block(Sleepy(), ctx, SimpleNamespace(eval_split="val", serve_batch=None, device="cpu"))
    assert not trial.measured and "tuning trial" in trial.reason
    assert trial.to_dict() == {"measured": False, "reason": trial.reason}  # no column of nulls
    run = serving_block(Sleepy(), ctx, SimpleNamespace(eval_split="test", serve_batch=4, device="cpu"))
    assert run.measured and run.serve_batch == 4 and run.latency_p50_ms >= SLEEP_S * 1e3
