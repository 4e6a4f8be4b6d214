"""What differs between library releases is handled in one place (bench/engine/compat.py) and
behaves as the library's own code does."""

from __future__ import annotations

import warnings

import pytest
import torch

from bench.engine.compat import CACHE_ARGUMENTS, cache_argument, forward_with_cache
from bench.engine.four_bit import import_bitsandbytes
from bench.engine.training import linear_schedule_with_warmup
from tests.tiny import save_tiny_llama


@pytest.mark.parametrize("warmup,total", [(0, 10), (3, 10), (10, 10), (4, 1)])
def test_the_linear_schedule_gives_transformers_factors_step_for_step(warmup, total):
    import_bitsandbytes()  # quietly: transformers.optimization imports it through peft
    from transformers import get_linear_schedule_with_warmup

    def lrs(make):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        scheduler, seen = make(optimizer, warmup, total), []
        for _ in range(total + 2):
            seen.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return seen

    assert lrs(linear_schedule_with_warmup) == lrs(get_linear_schedule_with_warmup)


def test_the_cache_goes_in_under_the_name_the_model_takes_without_a_deprecation(tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(save_tiny_llama(tmp_path)).eval()
    assert cache_argument(type(model).forward) in CACHE_ARGUMENTS
    ids = torch.tensor([[5, 6, 7, 8]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a renamed argument's deprecation notice fails the test
        with torch.no_grad():
            whole = model(input_ids=ids).logits[:, -1]
            _, cache = forward_with_cache(model, None, input_ids=ids[:, :3], use_cache=True)
            out, _ = forward_with_cache(model, cache, input_ids=ids[:, 3:], use_cache=True)
    torch.testing.assert_close(out.logits[:, -1], whole, atol=1e-5, rtol=1e-5)  # the cache was used
