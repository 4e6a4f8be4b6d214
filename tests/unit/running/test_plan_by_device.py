"""What planning does by device: CUDA defaults only on CUDA and never over the user's values;
speed options that cannot run are one error naming the fix, before any model loads."""

from __future__ import annotations

import pytest

from bench.core.errors import BenchError
from bench.running.config import Experiment


def plan_on(device, monkeypatch, **exp):
    import bench.running.plan

    monkeypatch.setattr(bench.running.plan, "resolve_device", lambda requested: device)
    return {s.strategy: s for s in bench.running.plan.plan(Experiment(**exp), check_data=False)}


def test_cuda_defaults_apply_only_on_cuda_and_never_over_the_user(monkeypatch):
    from strategies.full_ft import FullFTParams
    from strategies.shared.lora_adapters import GPU_DEFAULTS, LoRAParams

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


def test_liger_and_flash_name_their_package_on_cuda(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("liger_kernel", "flash_attn") else real(name, *a))
    with pytest.raises(BenchError, match="pip install liger-kernel"):
        plan_on("cuda", monkeypatch, strategies=["lora"], params={"lora": {"liger_kernels": True}})
    with pytest.raises(BenchError, match="pip install flash-attn"):
        plan_on("cuda", monkeypatch, strategies=["lora"], params={"lora": {"attn_implementation": "flash_attention_2"}})


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
