"""What differs between the library releases ftbench supports, in one place, so that a rename in
transformers or peft is handled once and every caller works on the pinned versions and the newest.

- transformers renamed the key/value cache argument and output field `past_key_values` to `cache`
  (5.24; the old name is a deprecated alias that a later release removes);
- transformers renamed `gradient_checkpointing_enable` to `activation_checkpointing_enable` (5.24;
  the old one is deprecated for v6);
- peft still calls the old gradient-checkpointing names on the models it wraps or prepares: those
  notices are about peft's calls, not ours, so they are dropped around our calls into peft only.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings

# The cache argument's names, newest first.
CACHE_ARGUMENTS = ("cache", "past_key_values")

# peft (0.21) reads `is_gradient_checkpointing` and calls `gradient_checkpointing_enable`, which
# transformers 5.24 deprecates for v6; nothing a user (or we) can change.
_PEFT_CHECKPOINTING_NOTICE = r".*`?(is_gradient_checkpointing|gradient_checkpointing_enable)`? is deprecated"


def cache_argument(forward) -> str | None:
    """The name under which `forward` (a model class's or instance's forward) takes its key/value
    cache; None where it takes none."""
    parameters = inspect.signature(forward).parameters
    return next((name for name in CACHE_ARGUMENTS if name in parameters), None)


def takes_cache(forward) -> bool:
    return cache_argument(forward) is not None


def forward_with_cache(model, cache, **inputs):
    """`model(**inputs)` with `cache` passed under the name this transformers release takes; returns
    the output and the cache it hands back."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft model passes it on
    name = cache_argument(type(inner).forward) or "past_key_values"
    out = model(**inputs, **{name: cache})
    keys = out.keys()
    returned = next((out[k] for k in CACHE_ARGUMENTS if k in keys), None)
    return out, returned


def enable_activation_checkpointing(model, use_reentrant: bool = False, context_fn=None) -> None:
    """Gradient (activation) checkpointing under whichever name this transformers release has;
    non-reentrant by default (no need to make the inputs require grad); `context_fn` is
    torch.utils.checkpoint's (selective checkpointing, non-reentrant only)."""
    options = {"use_reentrant": use_reentrant}
    if context_fn is not None:
        options["context_fn"] = context_fn
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=options)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)


@contextlib.contextmanager
def peft_calls():
    """Around a call into peft: its own use of transformers' deprecated gradient-checkpointing names
    is not reported (see the module docstring); every other warning is."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=_PEFT_CHECKPOINTING_NOTICE)
        yield


def prefix_tuning_through_cache(peft_model) -> bool:
    """peft (0.21) feeds prefix tuning's key/value prefixes to a sequence classifier only under
    `past_key_values` and refuses a model whose forward takes them as `cache` ("Model does not
    support past key values"). Where the model takes `cache`, this instance feeds them under that
    name instead, as peft's own forward does otherwise; returns whether it did."""
    import types

    base_forward = type(peft_model.base_model).forward
    if cache_argument(base_forward) != "cache" or "past_key_values" in inspect.signature(base_forward).parameters:
        return False

    def _prefix_tuning_forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None,
                               output_attentions=None, output_hidden_states=None, return_dict=None, **kwargs):
        batch = (input_ids if input_ids is not None else inputs_embeds).shape[0]
        return self.base_model(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                               labels=labels, output_attentions=output_attentions,
                               output_hidden_states=output_hidden_states, return_dict=return_dict,
                               cache=self.get_prompt(batch), **kwargs)

    peft_model._prefix_tuning_forward = types.MethodType(_prefix_tuning_forward, peft_model)
    return True
