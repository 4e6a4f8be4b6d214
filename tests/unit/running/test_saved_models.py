"""`bench run --save-models` through the real CLI and worker, with a plug-in strategy whose served
model writes a file (seconds, no model): the model is kept under RESULTS/models/RUN_ID with its card,
a run done before without it runs again to keep it, and a save that fails mid-way (disk full) is one
error line and a warning while the ok record is still written; the card is built from the record."""

from __future__ import annotations

import json
import textwrap

import pytest

from bench.core.record import Record
from bench.running.saved_models import model_card
from tests.conftest import run_bench

PLUGIN = textwrap.dedent('''
    import os
    from dataclasses import dataclass

    import strategies
    from strategies.shared.base import ShipSize, Strategy, StrategyResult


    class Saved:
        def predict(self, texts):
            return [0] * len(texts), None

        def save(self, folder):
            (folder / "weights.bin").write_bytes(b"x" * 1000)
            if os.environ.get("PLUGIN_SAVE_FAILS") == "disk":
                raise OSError(28, "No space left on device")
            if os.environ.get("PLUGIN_SAVE_FAILS") == "library":
                raise ValueError("a library's own save refused")
            return ShipSize(1000, 5000)

        def merged(self):
            return "nothing to merge"


    @dataclass
    class NoParams:
        pass


    class First(Strategy):
        name = "first"
        description = "always class 0, with a served model"
        default_model = "minilm"
        Params = NoParams
        flops_kind = "forward"

        def run(self, ctx, p):
            return StrategyResult([0] * len(ctx.eval.labels), 0, 1, served=Saved())


    strategies.REGISTRY["first"] = f"{__name__}:First"
''')


def bench_run(tmp_path, *extra, fails=""):
    (tmp_path / "saving_plugin.py").write_text(PLUGIN)
    env = {"FTBENCH_PLUGINS": "saving_plugin", "PYTHONPATH": str(tmp_path), **({"PLUGIN_SAVE_FAILS": fails} if fails else {})}
    return run_bench("run", "--strategies", "first", "--per-class", "4,2,4", "--results-dir", str(tmp_path / "results"),
                     "--no-report", *extra, env=env)


def only_record(tmp_path) -> dict:
    (path,) = (tmp_path / "results").glob("*.json")
    return json.loads(path.read_text())


def test_the_model_is_kept_with_its_card_and_a_run_done_without_it_runs_again(tmp_path):
    out = bench_run(tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert not (tmp_path / "results" / "models").exists()  # off by default
    assert only_record(tmp_path).get("saved_model") is None
    out = bench_run(tmp_path, "--save-models")
    assert out.returncode == 0 and "skipped" not in out.stdout, out.stdout + out.stderr[-2000:]
    rec = only_record(tmp_path)
    folder = tmp_path / "results" / "models" / rec["run_id"]
    assert rec["saved_model"]["path"] == f"models/{rec['run_id']}"
    assert rec["saved_model"]["specific_bytes"] == 1000 and rec["saved_model"]["base_bytes"] == 5000
    assert (folder / "weights.bin").stat().st_size == 1000 and (folder / "MODEL_CARD.md").is_file()
    assert "model saved: models/" in out.stdout and "1.0 kB" in out.stdout
    assert not list((tmp_path / "results" / "models").glob(".*"))  # no partial folder left
    again = bench_run(tmp_path, "--save-models")
    assert "skipped" in again.stdout  # its model is there now


@pytest.mark.parametrize("fails,words", [("disk", "No space left on device"),
                                         ("library", "ValueError: a library's own save refused")])
def test_a_save_that_fails_keeps_the_record_and_says_so_in_one_line(tmp_path, fails, words):
    out = bench_run(tmp_path, "--save-models", fails=fails)
    assert out.returncode == 1
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and words in errors[0] and "record is kept" in errors[0], out.stderr
    rec = only_record(tmp_path)
    assert rec["status"] == "ok" and rec["metrics"]["accuracy"] is not None
    assert words in rec["saved_model"]["error"]
    assert any(w.startswith("model not saved") for w in rec["warnings"])
    assert not [p for p in (tmp_path / "results" / "models").iterdir()]  # neither the folder nor its partial


def test_the_card_states_data_split_metrics_with_intervals_and_cost():
    rec = Record.from_dict({
        "run_id": "abc", "status": "ok", "strategy": "lora", "seed": 1, "params": {"r": 8},
        "model": {"name": "smollm2", "source": "/m"},
        "dataset": {"name": "bbc-news", "n_train": 40, "n_val": 20, "n_test": 30, "labels": ["a", "b"],
                    "split": {"spec": "per-class:8,4,6"}},
        "metrics": {"accuracy": 0.9, "balanced_accuracy": 0.85, "macro_f1": 0.8,
                    "ci": {"accuracy": [0.8, 0.95], "balanced_accuracy": [0.7, 0.9], "macro_f1": [0.6, 0.9]}},
        "cost": {"time_s": {"total": 12.5}, "peak_rss_mb": 900.0, "trainable_params": 10, "total_params": 100}})
    card = model_card(rec, {"specific_bytes": 2_500_000, "base_bytes": 90_000_000})
    for words in ("lora on bbc-news", "per-class:8,4,6 (seed 1): 40 train, 20 validation, 30 test",
                  "accuracy: 0.900 [0.800, 0.950]", "macro_f1: 0.800 [0.600, 0.900]", "12.5 s", "900 MB",
                  "10 of 100", "2.5 MB, with the base (90.0 MB) by reference", "r=8", "bench predict abc"):
        assert words in card, (words, card)


def test_save_models_from_yaml_reaches_the_spec_and_leaves_the_run_id_alone(tmp_path):
    from bench.core.errors import BenchError
    from bench.running.config import Experiment
    from bench.running.plan import plan

    config = tmp_path / "exp.yaml"
    config.write_text("strategies: [feature-extract]\nper_class: 5,2,5\nsave_models: true\n")
    kept = plan(Experiment.from_yaml(config), check_data=False)[0]
    plain = plan(Experiment(strategies=["feature-extract"], per_class=(5, 2, 5)), check_data=False)[0]
    assert kept.save_models and not plain.save_models
    assert kept.run_id == plain.run_id  # what is kept is not what runs: the same run, skipped or not alike
    config.write_text("save_models: maybe\n")
    with pytest.raises(BenchError, match="save_models"):
        Experiment.from_yaml(config)
