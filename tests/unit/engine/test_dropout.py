"""The fast CPU dropout is the same dropout: keep rate, scaling, gradients, seeding, attention math
equal to SDPA's, and identical masks when gradient checkpointing recomputes a layer."""

import pytest
import torch
import torch.nn.functional as F

from bench.engine.compat import enable_activation_checkpointing
from bench.engine.dropout import ATTENTION_NAME, FastDropout, attention_with_fast_dropout, keep_mask, use_fast_dropout


def test_keep_mask_keeps_one_minus_p_of_the_elements():
    torch.manual_seed(0)
    for p in (0.05, 0.1, 0.5):
        kept = keep_mask((1000, 1000), p).float().mean().item()
        assert abs(kept - (1 - p)) < 0.003, (p, kept)


def test_fast_dropout_scales_kept_values_and_its_gradient_is_the_mask():
    torch.manual_seed(0)
    x = torch.rand(64, 300) + 0.5
    x.requires_grad_(True)
    y = FastDropout(0.2)(x)
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / 0.8)
    assert 0.75 < kept.float().mean().item() < 0.85
    y.sum().backward()
    assert torch.allclose(x.grad, kept.float() / 0.8)


def test_fast_dropout_is_seeded_by_torch_and_off_in_eval_mode():
    x = torch.ones(32, 32)
    torch.manual_seed(1)
    a = FastDropout(0.3)(x)
    torch.manual_seed(1)
    b = FastDropout(0.3)(x)
    c = FastDropout(0.3)(x)
    assert torch.equal(a, b) and not torch.equal(b, c)
    assert torch.equal(FastDropout(0.3).eval()(x), x)


class _Attention(torch.nn.Module):
    def __init__(self, causal, groups=1):
        super().__init__()
        self.is_causal, self.num_key_value_groups = causal, groups


@pytest.mark.parametrize("causal,groups,padded", [(False, 1, True), (True, 2, False), (True, 1, True)])
def test_attention_math_equals_sdpa_when_nothing_is_dropped(causal, groups, padded):
    """p = 1e-9 rounds to a mask that keeps everything, so the fast path must give SDPA's output."""
    torch.manual_seed(0)
    b, h, length, d = 2, 4, 6, 8
    q = torch.randn(b, h, length, d)
    k, v = torch.randn(b, h // groups, length, d), torch.randn(b, h // groups, length, d)
    mask = None
    if padded:
        mask = torch.ones(b, 1, length, length, dtype=torch.bool)
        mask[1, :, :, 4:] = False  # the second row's last two keys are padding
        if causal:
            mask &= torch.ones(length, length, dtype=torch.bool).tril()
    module = _Attention(causal, groups).train()
    out, _ = attention_with_fast_dropout(module, q, k, v, mask, dropout=1e-9, scaling=d ** -0.5)
    ref = F.scaled_dot_product_attention(q, k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1),
                                         attn_mask=mask, is_causal=causal and mask is None)
    assert torch.allclose(out, ref.transpose(1, 2), atol=1e-5)


def _tiny_bert(dropout=0.3):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
                     num_labels=3)
    return BertForSequenceClassification(cfg)


def test_use_fast_dropout_swaps_modules_and_attention_and_leaves_eval_unchanged():
    model = _tiny_bert().eval()
    ids = torch.randint(5, 100, (3, 12))
    mask = torch.ones_like(ids)
    mask[2, 8:] = 0
    with torch.no_grad():
        before = model(input_ids=ids, attention_mask=mask).logits
    modules, attention = use_fast_dropout(model)
    assert modules > 0 and attention and model.config._attn_implementation == ATTENTION_NAME
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids, attention_mask=mask).logits, before)
    model.train()
    assert not torch.equal(model(input_ids=ids, attention_mask=mask).logits,
                           model(input_ids=ids, attention_mask=mask).logits)


@pytest.mark.parametrize("reentrant", [True, False])  # qlora uses the non-reentrant one
def test_gradient_checkpointing_recomputes_the_same_masks(reentrant):
    ids, labels = torch.randint(5, 100, (4, 10)), torch.tensor([0, 1, 2, 1])
    grads = []
    for checkpointing in (False, True):
        model = _tiny_bert()
        use_fast_dropout(model)
        if checkpointing:
            enable_activation_checkpointing(model, use_reentrant=reentrant)
        model.train()
        torch.manual_seed(7)
        F.cross_entropy(model(input_ids=ids).logits, labels).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
