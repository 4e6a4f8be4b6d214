"""`bench perf`: both sides get the same model, device and precision, and alternate which goes first;
the hand-written Trainer trains a bf16 checkpoint with class weights."""

from __future__ import annotations

import json


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

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tests.conftest import ROOT
    from tests.unit.engine.test_precision import save_bf16

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


def test_a_trainer_legs_suite_side_runs_without_the_serving_measurement(monkeypatch):
    """The hand-written script measures no serving, so the suite's side of a full-ft or lora leg skips it
    (FTBENCH_SERVING=off for that run only); the default-run leg keeps it, as `bench run` does."""
    import os

    import bench.running.runner as runner
    from bench.commands.perf.harness import Workspace, run_suite

    seen = []

    def fake_run_one(spec, results_dir, quiet=False):
        seen.append(os.environ.get("FTBENCH_SERVING"))
        return runner.Outcome(spec, "failed", None, 0.1)

    monkeypatch.setattr(runner, "run_one", fake_run_one)
    monkeypatch.delenv("FTBENCH_SERVING", raising=False)
    ws = Workspace(keep=False)
    try:
        spec = type("Spec", (), {"run_id": "x", "params": {}})()
        assert run_suite(spec, ws, "c", "r", False, serving=False)["serving_measured"] is False
        assert run_suite(spec, ws, "c", "r", False)["serving_measured"] is True
    finally:
        ws.close()
    assert seen == ["off", None] and "FTBENCH_SERVING" not in os.environ
