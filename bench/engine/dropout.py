"""Dropout with its mask drawn fast on the CPU, for training.

torch's CPU dropout draws one mt19937 number per element (`bernoulli_`), a tenth or more of a small
model's training step on a CPU (the adapters' dropout in LoRA; attention-probability and hidden
dropout in full fine-tuning; docs/performance.md has the profile). This is the same
dropout -- each element kept with probability 1-p, kept ones scaled by 1/(1-p) -- with the keep mask
drawn from numpy's PCG64, 64 random bits at a time read as four 16-bit uniforms (p is resolved to
1/65536), several times faster per mask. GPUs, eval mode and p = 0 or 1 keep torch's own path.

`use_fast_dropout(model)` swaps a model's `nn.Dropout` modules and, where its attention has dropout,
its attention function (registered with transformers' AttentionInterface, the documented way to
plug one in) for these."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

ATTENTION_NAME = "ftbench_sdpa"
_LEVELS = 1 << 16


def keep_mask(shape, p: float) -> torch.Tensor:
    """Bool tensor of `shape`, each element True with probability 1 - round(p * 65536) / 65536.

    The PCG64 stream is seeded from torch's RNG on every call, so torch.manual_seed fixes every
    mask, and gradient checkpointing (which restores torch's RNG state before it recomputes a
    layer) recomputes the very same mask."""
    n = int(np.prod(shape))
    bits = np.random.PCG64(int(torch.randint(0, 2**62, (1,))))
    uniforms = bits.random_raw((n + 3) // 4).view(np.uint16)[:n]
    return torch.from_numpy(uniforms >= round(p * _LEVELS)).view(shape)


def _drop(x: torch.Tensor, p: float) -> torch.Tensor:
    return x * keep_mask(x.shape, p).to(x.dtype).mul_(1.0 / (1.0 - p))


def _fast(x: torch.Tensor, p: float, training: bool) -> bool:
    return training and 0.0 < p < 1.0 and x.device.type == "cpu"


class FastDropout(nn.Dropout):
    """nn.Dropout whose CPU training mask comes from numpy (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not _fast(x, self.p, self.training):
            return super().forward(x)
        return _drop(x, self.p)


def attention_with_fast_dropout(module, query, key, value, attention_mask, dropout: float = 0.0,
                                scaling: float | None = None, is_causal: bool | None = None, **kwargs):
    """transformers' SDPA attention, except in CPU training with attention dropout: there SDPA runs
    its math path with torch's slow mask anyway; this runs the same math with the fast mask."""
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    if not _fast(query, dropout, module.training):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, is_causal=is_causal, **kwargs)
    groups = getattr(module, "num_key_value_groups", 1)
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    weights = torch.matmul(query, key.transpose(2, 3)) * scale
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", False)
    if attention_mask is None and causal and query.shape[2] > 1:
        lq, lk = query.shape[2], key.shape[2]
        attention_mask = torch.ones(lq, lk, dtype=torch.bool, device=query.device).tril(lk - lq)
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            weights = weights.masked_fill(~attention_mask, torch.finfo(weights.dtype).min)
        else:
            weights = weights + attention_mask
    weights = torch.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = _drop(weights, dropout)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), None


def _register_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, attention_with_fast_dropout)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)  # the same masks SDPA gets


def _attention_dropout(config) -> float:
    return float(getattr(config, "attention_probs_dropout_prob", 0.0) or getattr(config, "attention_dropout", 0.0)
                 or 0.0)


def use_fast_dropout(model) -> tuple[int, bool]:
    """Swap, in place, the model's dropout for the fast CPU one: (dropout modules swapped, whether
    the attention function was)."""
    swapped = 0
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is nn.Dropout and 0.0 < child.p < 1.0:
                setattr(parent, name, FastDropout(child.p).train(child.training))
                swapped += 1
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    if (config is not None and getattr(config, "_attn_implementation", None) == "sdpa"
            and _attention_dropout(config) > 0 and hasattr(base, "set_attn_implementation")):
        _register_attention()
        base.set_attn_implementation(ATTENTION_NAME)  # a model that cannot switch keeps SDPA (and says so)
        return swapped, base.config._attn_implementation == ATTENTION_NAME
    return swapped, False
