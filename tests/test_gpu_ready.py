"""What the GPU path adds, checked on the CPU: token-budget batches, CUDA defaults applied at plan
time (and the CPU's left alone), the fast-kernel knobs' errors, Llama 3 aliases and random-weight
models, whose accuracy the report never shows."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bench.running.config import Experiment
from bench.core.errors import BenchError
from bench.engine.training import token_budget_batches

from tests.conftest import run_bench


# ---------------------------------------------------------------- token-budget batches

@pytest.mark.parametrize("budget", [64, 300, 4096])
def test_token_budget_batches_cover_every_row_once_within_budget(budget):
    rng = np.random.default_rng(1)
    lengths = rng.integers(5, 64, 1000)
    batches = token_budget_batches(lengths, budget, np.random.default_rng(0))
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(1000))  # every row exactly once
    assert all(len(b) * lengths[b].max() <= budget for b in batches)  # padded size within budget
    again = token_budget_batches(lengths, budget, np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again)) and len(again) == len(batches)
    other = token_budget_batches(lengths, budget, np.random.default_rng(1))
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other))  # a seed's own order
    # length grouping: far fewer padded tokens than the same row counts drawn at random would pad
    padded = sum(len(b) * lengths[b].max() for b in batches)
    assert padded < 1.25 * lengths.sum()


def test_a_row_longer_than_the_budget_is_a_batch_of_one():
    lengths = np.array([10, 500, 10, 10])
    batches = token_budget_batches(lengths, 100, np.random.default_rng(0))
    assert [1] in [b.tolist() for b in batches]
    assert sorted(np.concatenate(batches).tolist()) == [0, 1, 2, 3]


# ---------------------------------------------------------------- defaults by device, knobs

def plan_on(device, monkeypatch, **exp):
    import bench.running.plan

    monkeypatch.setattr(bench.running.plan, "resolve_device", lambda requested: device)
    return {s.strategy: s for s in bench.running.plan.plan(Experiment(**exp), check_data=False)}


def test_cuda_defaults_apply_only_on_cuda_and_never_over_the_user(monkeypatch):
    from strategies.full_ft import FullFTParams
    from strategies.peft_common import GPU_DEFAULTS, LoRAParams

    cpu = plan_on("cpu", monkeypatch, strategies=["lora", "full-ft"])
    assert cpu["lora"].params == {**LoRAParams().__dict__}  # the CPU run is what it was
    assert cpu["full-ft"].params == {**FullFTParams().__dict__}
    cuda = plan_on("cuda", monkeypatch, strategies=["lora", "qlora"],
                   params={"qlora": {"max_tokens_per_batch": 0, "batch_size": 8}})
    assert cuda["lora"].params["max_length"] == GPU_DEFAULTS["max_length"] == 512
    assert cuda["lora"].params["max_tokens_per_batch"] == GPU_DEFAULTS["max_tokens_per_batch"]
    assert cuda["qlora"].params["max_tokens_per_batch"] == 0  # the user's value wins
    assert cuda["qlora"].params["max_length"] == 512
    assert cuda["lora"].run_id != cpu["lora"].run_id


@pytest.mark.parametrize("param, value, needle", [
    ("attn_implementation", "flash_attention_2", "needs a CUDA device"),
    ("attn_implementation", "fast", "use one of"),
    ("liger_kernels", True, "needs a CUDA device"),
    ("max_tokens_per_batch", 32, "below max_length"),
    ("max_tokens_per_batch", -1, "must be 0"),
])
def test_speed_knobs_fail_before_loading_with_the_fix(param, value, needle, monkeypatch):
    with pytest.raises(BenchError, match=needle):
        plan_on("cpu", monkeypatch, strategies=["lora"], params={"lora": {param: value}})


def test_liger_and_flash_name_their_package_on_cuda(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("liger_kernel", "flash_attn") else real(name, *a))
    with pytest.raises(BenchError, match="pip install liger-kernel"):
        plan_on("cuda", monkeypatch, strategies=["lora"], params={"lora": {"liger_kernels": True}})
    with pytest.raises(BenchError, match="pip install flash-attn"):
        plan_on("cuda", monkeypatch, strategies=["lora"], params={"lora": {"attn_implementation": "flash_attention_2"}})


def test_compile_layers_finds_the_decoder_blocks():
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from bench.engine.kernels import repeated_layers

    with torch.device("meta"):
        model = LlamaForSequenceClassification(LlamaConfig(hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                                                           intermediate_size=64, vocab_size=100, num_labels=2))
    assert repeated_layers(model) is model.model.layers


# ---------------------------------------------------------------- models

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


# ---------------------------------------------------------------- provenance

def test_git_commit_is_none_inside_an_enclosing_repository(tmp_path):
    """ftbench copied (not cloned) into another project's repository reports no commit, not theirs."""
    import shutil
    import subprocess
    import sys

    from tests.conftest import ROOT

    outer = tmp_path / "other-project"
    outer.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=outer, check=True)
    subprocess.run(["git", "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "x"],
                   cwd=outer, check=True)
    copy = outer / "vendor" / "ftbench"
    shutil.copytree(ROOT / "bench", copy / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    probe = "from bench.engine.env import git_commit; print(git_commit())"
    out = subprocess.run([sys.executable, "-c", probe], cwd=copy, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(copy)})
    assert out.stdout.strip() == "None", out.stderr[-500:]
    mine = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    if (ROOT / ".git").exists():  # this checkout itself still reports its commit
        assert len(mine.stdout.strip().split("+")[0]) == 12, mine.stderr[-500:]


# ---------------------------------------------------------------- bench perf

def perf_args(*flags):
    from bench.commands.cli import build_parser

    return build_parser().parse_args(["perf", "--legs", "lora", *flags])


def test_perf_model_device_precision_reach_both_sides(tmp_path):
    import dataclasses

    from bench.commands.perf.harness import handwritten_precision, suite_spec

    spec = suite_spec("lora", perf_args("--model", "random:llama-tiny", "--device", "cpu", "--precision", "fp32"),
                      {}, tmp_path)
    assert (spec.model, spec.device, spec.precision) == ("random:llama-tiny", "cpu", "fp32")
    assert handwritten_precision(spec) == ["--device", "cpu", "--dtype", "float32"]
    bf16 = dataclasses.replace(spec, precision="bf16")
    assert handwritten_precision(bf16) == ["--device", "cpu", "--dtype", "float32", "--bf16"]
    on_gpu = dataclasses.replace(spec, device="cuda", precision="bf16")  # lora's frozen base: bf16 there
    assert handwritten_precision(on_gpu) == ["--device", "cuda", "--dtype", "bfloat16", "--bf16"]
    assert handwritten_precision(dataclasses.replace(on_gpu, strategy="full-ft"))[3] == "float32"


def test_perf_sides_alternate_which_goes_first():
    from bench.commands.perf.harness import compare

    calls = []
    ok = lambda side: (lambda r: calls.append((side, r)) or {"status": "ok", "wall_s": 1.0, "cpu_s": 1.0})
    compare(ok("suite"), ok("hand"), 4)
    firsts = [calls[i][0] for i in range(0, 8, 2)]
    assert firsts == ["suite", "hand", "suite", "hand"]
    assert sorted(calls) == sorted([(s, r) for s in ("suite", "hand") for r in range(4)])


def test_handwritten_trainer_trains_a_bf16_checkpoint_with_class_weights(tmp_path):
    """The script once failed here: bf16 logits against fp32 class weights in its cross-entropy."""
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.test_precision import save_bf16
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=30522, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                      num_hidden_layers=2, intermediate_size=128, max_position_embeddings=128, pad_token_id=0)
    folder = save_bf16(LlamaForCausalLM(cfg), tmp_path / "bf16-llama")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "handwritten_trainer.py"), "--strategy", "lora",
                          "--model", str(folder), "--per-class", "4,2,2", "--epochs", "1", "--batch-size", "4",
                          "--max-length", "16", "--device", "cpu", "--dtype", "auto"],
                         capture_output=True, text=True, cwd=ROOT, timeout=600,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"})
    assert out.returncode == 0, out.stderr[-1500:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["device"] == "cpu" and result["dtype"] == "auto" and result["n_train"] > 0
