"""4-bit layers on the CPU (bench/engine/four_bit.py): the gradients reaching the adapters through
qlora's 4-bit layers equal those through a de-quantized fp32 copy of the same weights, after an
evaluation pass as in every run (the untrained baseline comes first); without our fix they do not
on CPUs with AVX512-BF16; and bitsandbytes' hub-kernel notice is dropped, its other messages kept."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings

import pytest
import torch

from bench.engine import four_bit
from bench.engine.compat import enable_activation_checkpointing
from strategies.shared.bases import load_4bit_classifier, prepare_for_training
from strategies.shared.lora_adapters import QuantizedLoRAParams as QLoRAParams
from strategies.shared.trained import load_classifier, load_tokenizer
from tests.tiny import add_lora, context

AUTOGRAD_WARNING = "an autograd kernel was not registered"


def dequantized_twin(quantized, path, ctx, tokenizer):
    """An fp32 model holding exactly the weights the 4-bit model computes with."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as bnbf

    twin = load_classifier(path, ctx, tokenizer)
    with torch.no_grad():
        for name, module in quantized.named_modules():
            if isinstance(module, bnb.nn.Linear4bit):
                weight = bnbf.dequantize_4bit(module.weight.data, module.weight.quant_state).float()
                twin.get_submodule(name).weight.copy_(weight)
        twin.score.weight.copy_(quantized.score.weight)
    return twin


def same_adapters(*models) -> None:
    """Equal, non-zero adapter weights in every model (peft starts lora_B at zero, which would
    leave lora_A without gradient)."""
    generator = torch.Generator().manual_seed(0)
    state = {k: 0.1 * torch.randn(v.shape, generator=generator) for k, v in models[0].state_dict().items()
             if "lora_" in k}
    for model in models:
        assert not model.load_state_dict(state, strict=False).unexpected_keys


def adapter_grads(model, ids, labels, compute_dtype):
    """One evaluation pass without gradients, then one training step's gradients of every adapter."""
    model.eval()
    with torch.inference_mode():
        model(input_ids=ids)
    model.train()
    model.zero_grad()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=compute_dtype == torch.bfloat16):
            model(input_ids=ids, labels=labels).loss.backward()
    grads = {n: p.grad.float().clone() for n, p in model.named_parameters() if "lora_" in n}
    return grads, [str(w.message) for w in caught]


def compare(task, tiny_llama, precision: str, gradient_checkpointing: bool):
    """Smallest cosine and largest relative norm difference over all adapter gradients, and the
    warnings seen in the 4-bit model's backward pass."""
    ctx = context(task, tiny_llama)
    ctx.precision = precision
    path = str(tiny_llama)
    tokenizer = load_tokenizer(path)
    params = QLoRAParams(r=4, alpha=8, dropout=0.0)
    quantized = load_4bit_classifier(ctx, path, tokenizer)
    twin = dequantized_twin(quantized, path, ctx, tokenizer)
    compute_dtype = quantized.model.layers[0].self_attn.q_proj.compute_dtype
    quantized = add_lora(prepare_for_training(quantized, gradient_checkpointing), params)
    twin = add_lora(twin, params)
    if gradient_checkpointing:
        enable_activation_checkpointing(twin)
    same_adapters(quantized, twin)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(5, len(tokenizer), (4, 12), generator=generator)
    labels = torch.tensor([0, 1, 2, 1])
    expected, _ = adapter_grads(twin, ids, labels, compute_dtype)
    got, caught = adapter_grads(quantized, ids, labels, compute_dtype)
    assert expected.keys() == got.keys() and len(got) >= 8
    cosines = [torch.nn.functional.cosine_similarity(got[k].flatten(), expected[k].flatten(), dim=0).item()
               for k in expected]
    relative = [((got[k] - expected[k]).norm() / expected[k].norm()).item() for k in expected]
    return min(cosines), max(relative), caught


@pytest.mark.parametrize("precision,gradient_checkpointing", [("fp32", True), ("bf16", True)])  # qlora checkpoints
def test_adapter_gradients_through_4bit_layers_equal_a_dequantized_copy(task, tiny_llama, precision,
                                                                       gradient_checkpointing):
    cosine, relative, caught = compare(task, tiny_llama, precision, gradient_checkpointing)
    assert not [w for w in caught if AUTOGRAD_WARNING in w]
    if precision == "fp32":
        assert cosine > 0.99999 and relative < 1e-3, (cosine, relative)
    else:  # both sides compute in bf16 under autocast; rounding differs a little between the kernels
        assert cosine > 0.99 and relative < 0.1, (cosine, relative)


def test_without_the_fix_gradients_are_wrong_where_bitsandbytes_repacks(task, tiny_llama, monkeypatch):
    """The control: the comparison above can fail. On CPUs with AVX512-BF16, bitsandbytes repacks
    4-bit weights during the evaluation pass and its repacked matmul passes no gradient on."""
    if not four_bit.import_bitsandbytes().functional.has_avx512bf16():
        pytest.skip("bitsandbytes repacks 4-bit weights only on CPUs with AVX512-BF16")
    monkeypatch.setattr("strategies.shared.bases.keep_4bit_layers_trainable", lambda model: 0)
    cosine, relative, caught = compare(task, tiny_llama, "fp32", gradient_checkpointing=False)
    assert [w for w in caught if AUTOGRAD_WARNING in w]
    assert cosine < 0.99 and relative > 0.1, (cosine, relative)


def test_kernel_notice_is_dropped_and_other_bitsandbytes_messages_kept():
    """In a fresh interpreter with every warning shown: importing through import_bitsandbytes, then
    peft, prints neither the notice nor torch's deprecation of its own script_method (bitsandbytes'
    import compiles); the filter drops that message only."""
    code = "from bench.engine.four_bit import import_bitsandbytes; import_bitsandbytes(); import peft"
    result = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "kernels" not in result.stderr and "gemm_4bit" not in result.stderr, result.stderr
    assert "script_method" not in result.stderr, result.stderr

    four_bit.silence_kernel_notice()
    four_bit.silence_kernel_notice()  # idempotent: one filter
    notice_logger = logging.getLogger(four_bit.KERNEL_NOTICE_LOGGER)
    assert notice_logger.filters.count(four_bit._not_the_kernel_notice) == 1

    def record(message):
        return logging.LogRecord(four_bit.KERNEL_NOTICE_LOGGER, logging.WARNING, "ops.py", 1, message, (), None)

    assert not notice_logger.filter(record(four_bit.KERNEL_NOTICE_START + ": No module named 'kernels'. %s"))
    assert notice_logger.filter(record("Input type into Linear4bit is torch.float16 ..."))


def test_every_worker_drops_the_kernel_notice_whatever_imports_bitsandbytes_first():
    """The worker installs the filter before any strategy runs: dora's first import of bitsandbytes
    (through peft) printed the notice while lora's, guarded at its own import site, did not."""
    from bench.running.worker import quiet_library_noise

    quiet_library_noise()
    notice_logger = logging.getLogger(four_bit.KERNEL_NOTICE_LOGGER)
    assert four_bit._not_the_kernel_notice in notice_logger.filters
    # and in a fresh interpreter, peft first (the notice is printed without the worker's call)
    code = ("from bench.running.worker import quiet_library_noise; quiet_library_noise(); "
            "import peft, bitsandbytes")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "gemm_4bit" not in result.stderr, result.stderr


def test_hidden_bitsandbytes_reads_as_uninstalled_and_lora_still_trains():
    """What a worker of a strategy that quantizes nothing does first: peft and transformers then take
    their no-bitsandbytes path (it is never imported), and a LoRA adapter is placed and trains."""
    code = """
import sys
from bench.engine.four_bit import hide_bitsandbytes, import_bitsandbytes
assert hide_bitsandbytes()
import torch
from peft import LoraConfig, get_peft_model
from peft.import_utils import is_bnb_available
from transformers.utils import is_bitsandbytes_available
assert not is_bnb_available() and not is_bitsandbytes_available() and import_bitsandbytes() is None
assert sys.modules["bitsandbytes"] is None

class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.q = torch.nn.Linear(8, 8)
    def forward(self, x):
        return self.q(x)

model = get_peft_model(Tiny(), LoraConfig(r=2, target_modules=["q"], init_lora_weights=False))
before = model.base_model.model.q.lora_A["default"].weight.detach().clone()
model(torch.randn(4, 8)).pow(2).sum().backward()
torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1).step()
assert not torch.equal(before, model.base_model.model.q.lora_A["default"].weight)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # once imported, it stays: hiding never breaks a process that already uses it
    result = subprocess.run([sys.executable, "-c", "import bitsandbytes, sys\nfrom bench.engine.four_bit import "
                             "hide_bitsandbytes\nassert not hide_bitsandbytes() and sys.modules['bitsandbytes']"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_checkpointing_keeps_the_4bit_outputs_and_the_gradients_stay_bit_for_bit(task, tiny_llama):
    """qlora's selective checkpointing: the backward pass no longer runs the 4-bit matmuls again
    (one de-quantization fewer per layer and step), and every gradient is that of recomputing all."""
    from torch.profiler import ProfilerActivity, profile

    ctx = context(task, tiny_llama)
    path = str(tiny_llama)
    tokenizer = load_tokenizer(path)
    model = add_lora(prepare_for_training(load_4bit_classifier(ctx, path, tokenizer), True),
                     QLoRAParams(r=4, alpha=8, dropout=0.1))
    same_adapters(model)
    ids = torch.randint(5, len(tokenizer), (4, 12), generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 1])

    def step(context_fn):
        enable_activation_checkpointing(model.get_base_model(), context_fn=context_fn)
        model.train()
        model.zero_grad()
        torch.manual_seed(0)  # the same dropout masks in both
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model(input_ids=ids, labels=labels).loss.backward()
        runs = sum(e.count for e in prof.key_averages() if e.key == "bitsandbytes::dequantize_4bit")
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, runs

    kept, kept_runs = step(four_bit.keep_4bit_outputs)
    recomputed, recomputed_runs = step(None)
    import bitsandbytes as bnb

    layers = sum(1 for m in model.modules() if type(m) is bnb.nn.Linear4bit)  # the base's, not peft's wrappers
    assert layers == 14 and kept_runs == 2 * layers  # forward and backward: no second forward through them
    assert recomputed_runs > kept_runs  # recomputing all runs them again (those the backward needs)
    assert kept.keys() == recomputed.keys() and len(kept) >= 8
    assert all(torch.equal(kept[n], recomputed[n]) for n in kept)
