"""Every kind of Served on tiny random models: the run's predictions come back from `predict` on its
own test texts, and again after `save` and `load_served` in the folder; `merged()` merges where peft
can and says why not elsewhere; the ship size counts the base by path, never a copy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from strategies import get_strategy
from strategies.shared.served import MANIFEST, checkpoint_bytes, load_served
from tests.tiny import context

QUICK = dict(epochs=1, batch_size=8, max_length=16)
# strategy -> (tiny model fixture, architecture, params, whether peft can merge it)
CLASSIFIERS = {
    "lora": ("tiny_llama", "decoder", QUICK, True),
    "full-ft": ("tiny_bert", "encoder", QUICK, False),
    "bitfit": ("tiny_bert", "encoder", QUICK, False),
    "prompt-tuning": ("tiny_llama", "decoder", QUICK, False),
    "prefix-tuning": ("tiny_llama", "decoder", QUICK, False),
    "ia3": ("tiny_llama", "decoder", QUICK, True),
    "qlora": ("tiny_llama", "decoder", QUICK, False),
    "lora-8bit": ("tiny_llama", "decoder", QUICK, False),
    "dora": ("tiny_llama", "decoder", QUICK, True),
    "adalora": ("tiny_llama", "decoder", QUICK, True),
    "vera": ("tiny_llama", "decoder", QUICK, True),
}


def run_strategy(request, task, name, fixture, architecture, params):
    folder = request.getfixturevalue(fixture)
    strategy = get_strategy(name)
    ctx = context(task, folder, architecture=architecture)
    return strategy.run(ctx, strategy.Params(**params)), folder


def round_trip(result, task, tmp_path):
    """The run's predictions == served.predict == the loaded folder's predict, on the run's test texts."""
    served = result.served
    assert served is not None
    labels, probs = served.predict(list(task.test.texts))
    assert labels == result.predictions
    size = served.save(tmp_path / "model")
    # data formats only (safetensors, JSON, tokenizer files): no pickle that would run code on load
    assert not [f for f in (tmp_path / "model").rglob("*") if f.suffix in (".pkl", ".joblib", ".pickle", ".bin")]
    manifest = json.loads((tmp_path / "model" / MANIFEST).read_text())
    loaded = load_served(tmp_path / "model")
    again, probs_again = loaded.predict(list(task.test.texts))
    assert again == result.predictions
    if probs is not None:
        assert len(probs[0]) == len(task.labels) and abs(sum(probs[0]) - 1) < 1e-4
        assert np.allclose(probs_again, probs, atol=1e-5)
    return served, loaded, size, manifest


@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_classifier_round_trip(request, task, tmp_path, name):
    fixture, architecture, params, mergeable = CLASSIFIERS[name]
    result, base = run_strategy(request, task, name, fixture, architecture, params)
    served, loaded, size, manifest = round_trip(result, task, tmp_path)
    assert manifest["kind"] == "classifier" and manifest["strategy"] == name
    assert manifest["labels"] == task.labels
    if name == "full-ft":
        assert manifest["base_model"] is None and size.base_bytes == 0
        assert (tmp_path / "model" / "model.safetensors").is_file()
    else:  # the frozen base is referenced, counted, never copied
        assert manifest["base_model"] == str(base.resolve())
        assert size.base_bytes == checkpoint_bytes(base) > 0
        assert not (tmp_path / "model" / "model.safetensors").exists()
        assert 0 < size.specific_bytes < size.base_bytes
    # one text at a time (no padding beside longer rows): the labels the batches gave
    assert [loaded.predict([t])[0][0] for t in task.test.texts] == result.predictions
    merged = loaded.merged()
    if mergeable:
        assert merged.predict(list(task.test.texts))[0] == result.predictions
        assert isinstance(served.merged(), type(loaded))
    else:
        assert isinstance(merged, str) and merged == served.merged()


@pytest.mark.parametrize("head", ["logreg", "mlp"])
def test_feature_extract_round_trip(task, tiny_bert, tmp_path, head):
    strategy = get_strategy("feature-extract")
    ctx = context(task, tiny_bert, architecture="encoder")
    result = strategy.run(ctx, strategy.Params(head=head, epochs=3, max_length=32))
    served, loaded, size, manifest = round_trip(result, task, tmp_path)
    assert manifest["kind"] == "features" and manifest["head"] == head
    assert size.base_bytes == checkpoint_bytes(tiny_bert) and 0 < size.specific_bytes < size.base_bytes
    assert isinstance(served.merged(), str)


def test_feature_extract_served_from_cached_embeddings(task, tiny_bert, tmp_path):
    """A second run finds every split's embeddings cached and never loads the encoder: its served model
    loads it on first use and still predicts what the run did."""
    strategy = get_strategy("feature-extract")
    for _ in range(2):
        result = strategy.run(context(task, tiny_bert, architecture="encoder"), strategy.Params(max_length=32))
    assert result.extra_cost["embeddings_cached"] is True and result.served.encoder is None
    round_trip(result, task, tmp_path)


@pytest.mark.parametrize("name,params", [("zero-shot", {}), ("zero-shot", {"k_shot": 2, "calibration_prior": "content-free"}),
                                         ("zero-shot", {"calibrate": False}),
                                         ("instruct-ft", dict(QUICK, epochs=1))])
def test_prompted_round_trip(task, tiny_llama, tmp_path, name, params):
    strategy = get_strategy(name)
    result = strategy.run(context(task, tiny_llama), strategy.Params(**params))
    served, loaded, size, manifest = round_trip(result, task, tmp_path)
    assert manifest["kind"] == "prompted" and manifest["prompt"]["words"] == task.labels
    assert (manifest["prior"] is None) == (params.get("calibrate") is False)
    assert size.base_bytes == checkpoint_bytes(tiny_llama)
    # one text alone gets the label it gets among the others: the run's prior is kept, not re-estimated
    assert served.predict([task.test.texts[1]])[0] == [result.predictions[1]]
    merged = loaded.merged()
    if name == "instruct-ft":
        assert merged.predict(list(task.test.texts))[0] == result.predictions
        merged.save(tmp_path / "merged")
        assert load_served(tmp_path / "merged").predict(list(task.test.texts))[0] == result.predictions
    else:
        assert isinstance(merged, str)


def test_setfit_round_trip(task, tiny_bert, tmp_path):
    strategy = get_strategy("setfit")
    ctx = context(task, tiny_bert, architecture="encoder")
    result = strategy.run(ctx, strategy.Params(num_iterations=2, max_steps=4, max_length=32))
    served, loaded, size, manifest = round_trip(result, task, tmp_path)
    assert manifest["kind"] == "setfit" and size.base_bytes == 0 and size.specific_bytes > 0
    assert isinstance(served.merged(), str)


def test_every_registered_strategy_returns_a_served_model():
    """Each strategy's run builds its Served: a kind per module, none left without one."""
    import inspect

    from strategies import REGISTRY, strategy_class
    from strategies.shared.trained import TrainedStrategy

    for name in REGISTRY:
        cls = strategy_class(name)
        if issubclass(cls, TrainedStrategy):
            assert cls.served is not TrainedStrategy.served, name
        else:
            assert "served=" in inspect.getsource(cls.run), name
