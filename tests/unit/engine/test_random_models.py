"""Llama 3 aliases and random-weight models: built once, marked, never scored by the report."""

from __future__ import annotations

import json
import math

import pytest

from bench.core.errors import BenchError
from tests.conftest import run_bench


def test_llama3_alias_offline_names_what_to_do(monkeypatch):
    from bench.engine.models import resolve_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BenchError) as err:
        resolve_model("llama3-8b")
    text = str(err.value)
    assert "meta-llama/Meta-Llama-3-8B" in text and "--model PATH" in text and "random:llama3-8b" in text


def test_unknown_random_architecture_lists_the_known_ones():
    from bench.engine.models import resolve_model

    with pytest.raises(BenchError, match="random:llama3-8b"):
        resolve_model("random:gpt-17")


def test_random_llama3_config_is_llama3_8b_shaped():
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from bench.engine.models import RANDOM_ARCHITECTURES

    config = AutoConfig.for_model(**RANDOM_ARCHITECTURES["llama3-8b"])
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    assert model.num_parameters() == 8_030_261_248  # Meta-Llama-3-8B's count


def test_random_tiny_model_builds_once_and_is_marked(monkeypatch):
    from bench.engine.models import resolve_model

    ref = resolve_model("random:llama-tiny")
    assert ref.random_weights and ref.record()["random_weights"] is True and ref.architecture == "decoder"
    logs = []
    folder = ref.local_path(log=logs.append)
    assert logs and (folder and json.load(open(f"{folder}/config.json"))["hidden_size"] == 64)
    assert ref.local_path(log=logs.append) == folder and len(logs) == 1  # cached
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(folder)("hello world")["input_ids"]


def test_summary_never_scores_a_random_weight_run():
    from bench.reporting.summary import flatten

    rec = {"run_id": "x", "status": "ok", "strategy": "lora", "model": {"name": "random:llama-tiny",
           "random_weights": True}, "metrics": {"accuracy": 0.9, "balanced_accuracy": 0.9},
           "baseline": {"accuracy": 0.3}, "history": [{"epoch": 1, "val_accuracy": 0.9}],
           "cost": {"time_s": {"total": 3.0, "train": 1.0}, "peak_rss_mb": 100}}
    row = flatten(rec)
    assert row["random_weights"] and math.isnan(row["accuracy"]) and math.isnan(row["baseline_accuracy"])
    assert row["history"] == [] and row["total_time_s"] == 3.0
    rec["model"].pop("random_weights")
    assert flatten(rec)["accuracy"] == 0.9


def test_lora_on_a_random_model_end_to_end(tmp_path):
    """A run on random:llama-tiny with token-budget batches: ok, marked, precision recorded, and the
    report says time and memory only instead of an accuracy."""
    res = run_bench("run", "--strategies", "lora", "--model", "random:llama-tiny", "--per-class", "6,2,3",
                    "--param", "lora.max_tokens_per_batch=128", "--param", "lora.max_length=32",
                    "--results-dir", str(tmp_path / "results"), "-o", str(tmp_path / "report.html"),
                    timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    rec = json.loads(next((tmp_path / "results").glob("*.json")).read_text())
    assert rec["status"] == "ok" and rec["model"]["random_weights"] is True
    assert rec["params"]["max_tokens_per_batch"] == 128
    assert list(rec["cost"]["precision"]["trainable"]) == ["float32"]
    assert "random weights: time and memory only" in res.stdout
    html = (tmp_path / "report.html").read_text()
    assert "random weights: time and memory only" in html
