"""The PEFT family (dora, ia3, prompt-tuning, prefix-tuning, adalora, vera, bitfit, lora-8bit) on tiny
random models (offline, seconds): each trains only its own parameters and the head, counts them right,
writes its adapter, and refuses a model it cannot do sequence classification with before loading."""

from __future__ import annotations

import json

import pytest
import torch

from bench.core.errors import BenchError
from bench.engine.compat import peft_calls, prefix_tuning_through_cache
from bench.engine.models import ModelRef, resolve_model
from strategies import REGISTRY, default_run, get_strategy
from strategies.adalora import AdaLoRAParams, budget_updates, orthogonality_penalty
from strategies.bitfit import backbone_biases, train_only_biases_and_head
from strategies.lora_8bit import LoRA8bitParams
from strategies.prompt_tuning import left_pad_prompted_rows
from strategies.shared.bases import load_8bit_classifier, prepare_for_training, require_8bit_backend
from strategies.shared.lora_adapters import LoRAParams
from strategies.shared.trained import load_classifier, load_tokenizer
from tests.tiny import add_lora, context

FAMILY = ["dora", "ia3", "prompt-tuning", "prefix-tuning", "adalora", "vera", "bitfit", "lora-8bit"]


# what each method adds and trains, by parameter name (the head trains too: modules_to_save)
ADAPTER_MARK = {"dora": "lora_magnitude_vector", "ia3": "ia3_l", "prompt-tuning": "prompt_encoder",
                "prefix-tuning": "prompt_encoder", "adalora": "lora_E", "vera": "vera_lambda",
                "lora-8bit": "lora_A", "bitfit": ".bias"}


QUICK = dict(epochs=1, batch_size=8, max_length=16)


def model_ref(folder, architecture="decoder") -> ModelRef:
    return ModelRef("tiny", str(folder), "test", architecture)


def test_registered_outside_the_default_run():  # the contract test checks each one's declarations
    assert set(FAMILY) <= set(REGISTRY)
    assert not set(FAMILY) & set(default_run())


@pytest.mark.parametrize("name", [n for n in FAMILY if n != "bitfit"])
def test_run_on_a_tiny_decoder_trains_only_the_method_and_the_head(task, tiny_llama, name, monkeypatch, caplog,
                                                                   recwarn):
    strategy = get_strategy(name)
    strategy.check(strategy.Params(**QUICK), model_ref(tiny_llama))
    wrapped = []
    import strategies.shared.adapters as adapters

    real = adapters.place_adapter  # every member places its adapter through it
    monkeypatch.setattr(adapters, "place_adapter", lambda *a, **k: wrapped.append(real(*a, **k)) or wrapped[-1])
    ctx = context(task, tiny_llama)
    result = strategy.run(ctx, strategy.Params(**QUICK))
    assert len(result.predictions) == len(result.baseline_predictions) == len(task.test)
    assert not [r for r in caplog.records if "inputs will be cast" in r.getMessage()]  # lora-8bit: not per call
    # notices about what the strategy handles: prompt-tuning's padding, adalora's rank-0 matrices
    assert not [r for r in caplog.records if "inputs_embeds" in r.getMessage()]
    assert not [w for w in recwarn if "invalid shape" in str(w.message)]
    model = wrapped[0]
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert any(ADAPTER_MARK[name] in n for n in trainable), sorted(trainable)
    assert any("score.modules_to_save" in n for n in trainable)  # the head trains in full
    assert all(ADAPTER_MARK[name] in n or "lora_" in n or "score" in n for n in trainable), sorted(trainable)
    assert result.trainable_params == sum(p.numel() for p in trainable.values())
    base = load_classifier(str(tiny_llama), ctx, load_tokenizer(str(tiny_llama))).num_parameters()
    # peft's total: the base (its frozen original head kept, int8 weights one each) plus what trains;
    # adalora keeps its current rank as a one-element frozen parameter per adapted matrix (8 here)
    assert result.total_params == base + result.trainable_params + (8 if name == "adalora" else 0)
    if name == "adalora":  # saved at the ranks kept after pruning, below what trained
        assert 0 < result.extra_cost["adapter_bytes"] < 4 * result.trainable_params + 8192
    else:
        assert result.extra_cost["adapter_bytes"] >= 4 * result.trainable_params  # fp32 tensors on disk


def test_bitfit_trains_the_biases_and_head_of_an_encoder_and_refuses_a_llama(task, tiny_bert, tiny_llama):
    from strategies.bitfit import BitFit, BitFitParams

    ctx = context(task, tiny_bert, "encoder")
    model = load_classifier(str(tiny_bert), ctx, load_tokenizer(str(tiny_bert)))
    n_biases = train_only_biases_and_head(model)
    assert n_biases == len(backbone_biases(model)) > 10
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all(n.endswith(".bias") or n.startswith("classifier.") for n in trainable)
    assert "classifier.weight" in trainable
    result = BitFit().run(ctx, BitFitParams(**QUICK))
    assert result.trainable_params == sum(p.numel() for n, p in model.named_parameters() if n in trainable)
    assert result.total_params == model.num_parameters()
    assert 4 * result.trainable_params <= result.extra_cost["adapter_bytes"] < 4 * result.trainable_params + 8192
    BitFit().check(BitFitParams(), model_ref(tiny_bert, "encoder"))
    with pytest.raises(BenchError, match="no bias terms.*minilm"):
        BitFit().check(BitFitParams(), model_ref(tiny_llama))  # config.json: llama, no biases
    with pytest.raises(BenchError, match="no bias terms"):
        BitFit().check(BitFitParams(), resolve_model("smollm2"))  # its GGUF header says llama


def test_prompt_tuning_classifies_a_padded_row_as_the_same_row_alone(task, tiny_llama):
    from peft import PromptTuningConfig, get_peft_model

    ctx = context(task, tiny_llama)
    model = load_classifier(str(tiny_llama), ctx, load_tokenizer(str(tiny_llama)))
    model.register_forward_pre_hook(left_pad_prompted_rows, with_kwargs=True)
    with peft_calls():
        model = get_peft_model(model, PromptTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=4)).eval()
    ids = torch.tensor([[7, 8, 9, 10, 11], [12, 13, 14, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    with torch.no_grad():
        batch = model(input_ids=ids, attention_mask=mask).logits
        alone = model(input_ids=ids[1:, :3], attention_mask=mask[1:, :3]).logits
    # without the hook the padded row is read at a pad position and differs
    torch.testing.assert_close(batch[1:], alone, atol=1e-4, rtol=1e-4)


def test_prefix_and_prompt_tuning_refuse_models_that_cannot_take_them_before_loading(tmp_path, tiny_llama):
    (tmp_path / "distil").mkdir()
    (tmp_path / "distil" / "config.json").write_text(json.dumps({"model_type": "distilbert"}))
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "config.json").write_text(json.dumps({"model_type": "clip"}))
    prefix, prompt = get_strategy("prefix-tuning"), get_strategy("prompt-tuning")
    with pytest.raises(BenchError, match="prefix-tuning cannot do sequence classification.*distilbert"):
        prefix.check(prefix.Params(), model_ref(tmp_path / "distil", "encoder"))
    with pytest.raises(BenchError, match="no sequence-classification model.*clip"):
        prompt.check(prompt.Params(), model_ref(tmp_path / "clip", "encoder"))
    prompt.check(prompt.Params(), model_ref(tmp_path / "distil", "encoder"))  # input embeddings: fine
    for strategy in (prefix, prompt):
        strategy.check(strategy.Params(), model_ref(tiny_llama))
        strategy.check(strategy.Params(), resolve_model("minilm"))  # BERT passes past_key_values on


def test_adalora_reallocates_its_rank_budget_and_leaves_no_hooks(task, tiny_llama):
    from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks

    hooks = (len(_global_optimizer_pre_hooks), len(_global_optimizer_post_hooks))
    kept = []
    import strategies.adalora as module

    real = module.budget_updates
    module.budget_updates = lambda m, p: kept.append(m) or real(m, p)
    try:
        # 24 rows, 2 a step, 1 epoch (no best-epoch reload): 12 steps; ranks 6 -> 2 per matrix on
        # average between steps 1 and 10
        p = AdaLoRAParams(init_r=6, target_r=2, tinit_ratio=0.1, tfinal_ratio=0.2, epochs=1, batch_size=2,
                          max_length=16)
        result = module.AdaLoRA().run(context(task, tiny_llama), p)
    finally:
        module.budget_updates = real
    assert (len(_global_optimizer_pre_hooks), len(_global_optimizer_post_hooks)) == hooks
    model = kept[0]
    singular = [t for n, t in model.named_parameters() if "lora_E" in n]
    assert len(singular) == 2 * 4  # q, k, v, o in 2 layers
    kept_ranks = sum(int((t != 0).sum()) for t in singular)
    assert kept_ranks == 2 * len(singular)  # the budget: target_r per matrix on average, spread unevenly
    assert model.peft_config["default"].rank_pattern  # the final allocation, saved with the adapter
    assert result.extra_cost["adalora_ranks"] == {"initial": 6 * 8, "kept": 2 * 8, "matrices": 8}


def test_adalora_penalty_and_checks():
    q, _ = torch.linalg.qr(torch.randn(8, 8))

    class Holder(torch.nn.Module):
        def __init__(self, a):
            super().__init__()
            self.lora_A = torch.nn.Parameter(a)

    assert orthogonality_penalty(Holder(q[:4].clone()), 1.0).item() == pytest.approx(0, abs=1e-5)
    assert orthogonality_penalty(Holder(2 * q[:4].clone()), 1.0).item() > 1
    adalora, ref = get_strategy("adalora"), ModelRef("tiny", "/x", "test", "decoder")
    with pytest.raises(BenchError, match="target_r 8 is above init_r 4"):
        adalora.check(AdaLoRAParams(init_r=4, target_r=8), ref)
    with pytest.raises(BenchError, match="max_tokens_per_batch"):
        adalora.check(AdaLoRAParams(max_tokens_per_batch=1024), ref)
    assert budget_updates  # the context manager the run holds around training


def test_lora_8bit_base_is_int8_and_counts_like_lora(task, tiny_llama, monkeypatch):
    import bitsandbytes as bnb

    ctx = context(task, tiny_llama)
    tok = load_tokenizer(str(tiny_llama))
    model = load_8bit_classifier(ctx, str(tiny_llama), tok, threshold=6.0)
    q_proj = model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj, bnb.nn.Linear8bitLt) and q_proj.weight.dtype == torch.int8
    assert q_proj.weight.numel() == 64 * 64  # one byte a weight
    assert type(model.score) is torch.nn.Linear and model.score.weight.dtype == torch.float32
    peft_8bit = add_lora(prepare_for_training(model, True), LoRA8bitParams(r=4))
    peft_fp32 = add_lora(load_classifier(str(tiny_llama), ctx, tok), LoRAParams(r=4))
    assert peft_8bit.get_nb_trainable_parameters() == peft_fp32.get_nb_trainable_parameters()

    monkeypatch.setattr(bnb.nn, "Linear8bitLt", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no int8")))
    with pytest.raises(BenchError, match="cannot run LLM.int8 matmuls on device 'cpu'.*no int8"):
        require_8bit_backend("cpu")


def test_ia3_checks_its_module_lists():
    ia3, ref = get_strategy("ia3"), ModelRef("tiny", "/x", "test", "decoder")
    with pytest.raises(BenchError, match="feedforward_modules needs target_modules"):
        ia3.check(ia3.Params(feedforward_modules=["down_proj"]), ref)
    with pytest.raises(BenchError, match="must be among target_modules"):
        ia3.check(ia3.Params(target_modules=["k_proj"], feedforward_modules=["down_proj"]), ref)
    ia3.check(ia3.Params(target_modules=["k_proj", "down_proj"], feedforward_modules=["down_proj"]), ref)


def test_prefix_tuning_feeds_its_prefixes_to_attention(task, tiny_llama):
    """The prefixes reach every attention layer under whichever cache name the installed
    transformers takes: changing them changes the logits (they would not, were they dropped)."""
    from peft import PrefixTuningConfig, get_peft_model

    
    ctx = context(task, tiny_llama)
    model = load_classifier(str(tiny_llama), ctx, load_tokenizer(str(tiny_llama)))
    model.config.use_cache = False  # as in training
    with peft_calls():
        model = get_peft_model(model, PrefixTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=4))
    prefix_tuning_through_cache(model)
    model.eval()
    ids, mask = torch.tensor([[7, 8, 9, 10, 11]]), torch.ones(1, 5, dtype=torch.long)
    with torch.no_grad():
        before = model(input_ids=ids, attention_mask=mask).logits.clone()
        for p in model.prompt_encoder.parameters():
            p.add_(torch.randn_like(p))
        after = model(input_ids=ids, attention_mask=mask).logits
    assert not torch.allclose(before, after, atol=1e-4)


def test_a_model_types_forward_arguments_are_inspected_once_per_transformers_release(tmp_path, monkeypatch):
    import strategies.shared.model_checks as family

    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path))
    names = family.forward_arguments("llama", "prefix-tuning")
    assert {"input_ids", "attention_mask"} <= names and list((tmp_path / "forward-arguments").glob("*.json"))

    def no_inspection(*args):
        raise AssertionError("inspected again")

    monkeypatch.setattr(family, "_forward_arguments", no_inspection)
    assert family.forward_arguments("llama", "prompt-tuning") == names  # kept: no modeling code imported
    with pytest.raises(AssertionError, match="inspected again"):
        family.forward_arguments("bert", "prefix-tuning")


def test_whether_a_model_has_biases_is_found_once_per_config(tmp_path, monkeypatch, tiny_llama):
    import strategies.bitfit as bitfit

    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path))
    assert bitfit.has_backbone_biases(model_ref(tiny_llama)) is False  # Llama: no biases
    assert bitfit.has_backbone_biases(resolve_model("minilm")) is True

    def no_build(*args):
        raise AssertionError("built again")

    monkeypatch.setattr(bitfit, "_has_backbone_biases", no_build)
    assert bitfit.has_backbone_biases(model_ref(tiny_llama)) is False  # kept: no modeling code imported
    with pytest.raises(BenchError, match="no bias terms"):
        get_strategy("bitfit").check(bitfit.BitFitParams(), model_ref(tiny_llama))
