"""setfit on a tiny BERT: the whole encoder and a head train, the step cap never adds steps,
a causal LM is refused."""

from __future__ import annotations

import pytest

from bench.core.errors import BenchError
from bench.engine.models import ModelRef
from strategies.setfit import SetFit, SetFitParams, capped_steps
from tests.tiny import context


def test_setfit_trains_encoder_and_head(task, tiny_bert, capfd):
    ctx = context(task, tiny_bert, architecture="encoder")
    result = SetFit().run(ctx, SetFitParams(num_iterations=2, max_steps=6, batch_size=8, max_length=16))
    printed = "".join(capfd.readouterr())
    # quiet (-q): none of setfit's, the Trainer's or datasets' own output, only our log line
    for chatter in ("Running training", "model_head.pkl", "embedding_loss", "train_runtime", "pin_memory", "Map"):
        assert chatter not in printed, printed
    assert len(result.predictions) == len(task.test) and set(result.predictions) <= {0, 1, 2}
    assert len(result.baseline_predictions) == len(task.test)
    head = result.extra_cost["head_params"]
    assert head == 3 * 32 + 3  # logistic regression on the tiny encoder's 32-wide embeddings, 3 classes
    assert result.trainable_params == result.total_params > head  # the whole encoder trains
    [entry] = ctx.tracker.history
    assert 0 <= entry["val_accuracy"] <= 1 and entry["train_loss"] > 0
    assert {"load", "baseline", "train", "eval"} <= set(ctx.tracker.time_s)


def test_setfit_step_cap_never_adds_steps():
    # 8 rows per class, 5 classes: 20 pairs of each polarity per row, batches of 16 -> 100 steps
    assert capped_steps(SetFitParams(), 40) == 100
    assert capped_steps(SetFitParams(num_iterations=5), 40) == 25  # fewer pairs: fewer steps, not cycled to 100
    assert capped_steps(SetFitParams(), 300) == 100  # 60 rows per class: capped
    assert capped_steps(SetFitParams(max_steps=-1, epochs=2), 300) == 2 * 750


def test_setfit_refuses_a_causal_lm(tiny_llama):
    decoder = ModelRef(name="tiny", source=str(tiny_llama), provenance="test", architecture="decoder")
    with pytest.raises(BenchError, match="sentence encoder"):
        SetFit().check(SetFitParams(), decoder)
