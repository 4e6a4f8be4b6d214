"""prompt-tuning's padding hook on decoder classifiers, shared by the strategy (prompt_tuning.py) and
the served adapter (served_classifier.py), which sets it again on the base it loads."""

from __future__ import annotations

import logging


def left_pad_prompted_rows(module, args, kwargs):
    """Forward pre-hook for decoders: peft hands the model input embeddings (soft prompt first), no
    input ids, so transformers' decoder classifiers read the last position, which on a right-padded
    row is padding. Moving each row's padding to its front puts the last real token there; RoPE sees
    only relative positions, so the real tokens' attention is unchanged."""
    import torch

    embeds, mask = kwargs.get("inputs_embeds"), kwargs.get("attention_mask")
    if embeds is None or mask is None:
        return None
    width = mask.shape[1]
    shift = (width - mask.sum(1)).long()  # peft's prompt mask is float ones
    if not bool(shift.any()):
        return None
    index = (torch.arange(width, device=mask.device)[None, :] - shift[:, None]) % width
    kwargs["inputs_embeds"] = embeds.gather(1, index[..., None].expand_as(embeds))
    kwargs["attention_mask"] = mask.gather(1, index)
    return args, kwargs


def not_the_inputs_embeds_notice(record: logging.LogRecord) -> bool:
    return "will not detect padding tokens in `inputs_embeds`" not in record.getMessage()
