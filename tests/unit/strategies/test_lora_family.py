"""lora and qlora on a tiny random Llama: adapters and the head are the only things trained,
4-bit layers are really 4-bit, and qlora's pre-load check names bitsandbytes when it cannot run."""

from __future__ import annotations

import importlib.metadata
import sys

import pytest
import torch

from bench.core.errors import BenchError
from bench.core.params import validate_params
from bench.engine.models import ModelRef
from strategies.lora import LoRA
from strategies.qlora import QLoRA
from strategies.shared.adapters import default_target_modules
from strategies.shared.bases import load_4bit_classifier, prepare_for_training
from strategies.shared.lora_adapters import LoRAParams
from strategies.shared.lora_adapters import QuantizedLoRAParams as QLoRAParams
from strategies.shared.trained import classifier_head_names, load_classifier, load_tokenizer
from tests.tiny import add_lora, context


def assert_only_adapters_and_head_train(peft_model, head: str):
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or f"{head}.modules_to_save" in n for n in trainable), trainable
    assert any(f"{head}.modules_to_save" in n for n in trainable)  # the head is trained in full
    assert sum(p.numel() for n, p in peft_model.named_parameters() if n in trainable) == \
        peft_model.get_nb_trainable_parameters()[0]
    peft_model.train()
    ids = torch.randint(5, 40, (2, 7))
    peft_model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.sum().backward()
    with_grad = {n for n, p in peft_model.named_parameters() if p.grad is not None}
    assert with_grad == trainable


def test_target_modules_and_head_are_detected(task, tiny_llama, tiny_bert):
    llama = load_classifier(str(tiny_llama), context(task, tiny_llama), load_tokenizer(str(tiny_llama)))
    assert default_target_modules(llama) == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert classifier_head_names(llama) == ["score"]
    bert = load_classifier(str(tiny_bert), context(task, tiny_bert, "encoder"), load_tokenizer(str(tiny_bert)))
    assert default_target_modules(bert) == ["query", "key", "value"]
    assert classifier_head_names(bert) == ["classifier"]
    assert_only_adapters_and_head_train(add_lora(bert, LoRAParams(r=4)), "classifier")


def test_lora_run_on_a_decoder(task, tiny_llama, monkeypatch):
    import bench.engine.dropout

    swaps = []
    real = bench.engine.dropout.use_fast_dropout
    monkeypatch.setattr(bench.engine.dropout, "use_fast_dropout", lambda m: swaps.append(real(m)) or swaps[-1])
    ctx = context(task, tiny_llama)
    result = LoRA().run(ctx, LoRAParams(r=4, alpha=8, epochs=2, batch_size=8, max_length=16))
    assert swaps and swaps[0][0] >= 2  # training on the CPU drew the adapters' dropout masks with numpy
    assert len(result.predictions) == len(result.baseline_predictions) == len(task.test)
    assert 0 < result.trainable_params < result.total_params
    assert result.extra_cost["adapter_bytes"] > result.trainable_params * 4  # fp32 weights plus config
    assert [e["epoch"] for e in ctx.tracker.history] == [1, 2]


def test_lora_gradients_reach_only_adapters_and_head(task, tiny_llama):
    ctx = context(task, tiny_llama)
    model = load_classifier(str(tiny_llama), ctx, load_tokenizer(str(tiny_llama)))
    assert_only_adapters_and_head_train(add_lora(model, LoRAParams(r=4)), "score")


def test_qlora_base_is_4bit_and_only_adapters_and_head_train(task, tiny_llama):
    import bitsandbytes as bnb

    ctx = context(task, tiny_llama)
    model = load_4bit_classifier(ctx, str(tiny_llama), load_tokenizer(str(tiny_llama)))
    q_proj = model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj, bnb.nn.Linear4bit)
    assert q_proj.weight.dtype == torch.uint8 and q_proj.weight.quant_type == "nf4"
    assert q_proj.weight.numel() == 64 * 64 // 2  # two 4-bit values per byte
    assert q_proj.weight.quant_state.nested  # double quantization
    assert type(model.score) is torch.nn.Linear and model.score.weight.dtype == torch.float32
    peft_model = add_lora(prepare_for_training(model, gradient_checkpointing=True), LoRAParams(r=4))
    assert_only_adapters_and_head_train(peft_model, "score")
    trainable, total = peft_model.get_nb_trainable_parameters()
    full = load_classifier(str(tiny_llama), ctx, load_tokenizer(str(tiny_llama)))
    # 4-bit weights counted by their real element count; peft's total holds the base (its frozen
    # original head included) plus the adapters and the head's trained copy
    assert total == full.num_parameters() + trainable


def test_qlora_run(task, tiny_llama):
    ctx = context(task, tiny_llama)
    result = QLoRA().run(ctx, QLoRAParams(r=4, alpha=8, epochs=1, batch_size=8, max_length=16))
    assert len(result.predictions) == len(result.baseline_predictions) == len(task.test)
    assert 0 < result.trainable_params < result.total_params
    assert result.extra_cost["adapter_bytes"] > 0
    assert result.extra_cost["quantized_footprint_mb"] > 0


def test_qlora_check_names_bitsandbytes_when_it_cannot_run(monkeypatch):
    qlora, model, params = QLoRA(), ModelRef("tiny", "/x", "test", "decoder"), QLoRAParams()
    qlora.check(params, model)  # installed here

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # as if not importable
    with pytest.raises(BenchError, match="bitsandbytes.*not installed"):
        qlora.check(params, model)
    monkeypatch.delitem(sys.modules, "bitsandbytes")

    real_version = importlib.metadata.version

    def version(name, old=None):
        if name != "bitsandbytes":
            return real_version(name)
        if old is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return old

    monkeypatch.setattr(importlib.metadata, "version", version)
    with pytest.raises(BenchError, match="bitsandbytes.*not installed"):
        qlora.check(params, model)
    monkeypatch.setattr(importlib.metadata, "version", lambda name: version(name, old="0.42.0"))
    with pytest.raises(BenchError, match=r"bitsandbytes>=0\.47.*0\.42\.0"):
        qlora.check(params, model)


def test_lora_params_are_checked_before_loading():
    model = ModelRef("tiny", "/x", "test", "decoder")
    with pytest.raises(BenchError, match="parameter 'r' of 'lora' is 0, out of range: .*>= 1"):  # the field's bounds
        validate_params(LoRA(), {"r": 0})
    with pytest.raises(BenchError, match="target_modules"):
        QLoRA().check(QLoRAParams(target_modules=[]), model)
    LoRA().check(LoRAParams(target_modules="q_proj,v_proj"), model)
