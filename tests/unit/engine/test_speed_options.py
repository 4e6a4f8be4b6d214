"""Token-budget batches and compile_layers' choice of the decoder blocks."""

from __future__ import annotations

import numpy as np
import pytest

from bench.engine.training import token_budget_batches


@pytest.mark.parametrize("budget", [64, 300, 4096])
def test_token_budget_batches_cover_every_row_once_within_budget(budget):
    rng = np.random.default_rng(1)
    lengths = rng.integers(5, 64, 1000)
    batches = token_budget_batches(lengths, budget, np.random.default_rng(0))
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(1000))  # every row exactly once
    assert all(len(b) * lengths[b].max() <= budget for b in batches)  # padded size within budget
    again = token_budget_batches(lengths, budget, np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again)) and len(again) == len(batches)
    other = token_budget_batches(lengths, budget, np.random.default_rng(1))
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other))  # a seed's own order
    # length grouping: far fewer padded tokens than the same row counts drawn at random would pad
    padded = sum(len(b) * lengths[b].max() for b in batches)
    assert padded < 1.25 * lengths.sum()


def test_a_row_longer_than_the_budget_is_a_batch_of_one():
    lengths = np.array([10, 500, 10, 10])
    batches = token_budget_batches(lengths, 100, np.random.default_rng(0))
    assert [1] in [b.tolist() for b in batches]
    assert sorted(np.concatenate(batches).tolist()) == [0, 1, 2, 3]


def test_compile_layers_finds_the_decoder_blocks():
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from bench.engine.kernels import repeated_layers

    with torch.device("meta"):
        model = LlamaForSequenceClassification(LlamaConfig(hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                                                           intermediate_size=64, vocab_size=100, num_labels=2))
    assert repeated_layers(model) is model.model.layers
