"""verbalizers=auto: label words chosen from labelled train rows (strategies/label_words.py)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.core.errors import BenchError
from bench.core.params import CliText, validate_params
from strategies.instruct_ft import InstructFineTune
from strategies.shared.label_words import choose_words, draw_rows_per_class, word_tokens
from strategies.zero_shot import ZeroShot, ZeroShotParams
from tests.tiny import LABELS, context, word_level_tokenizer

WORDS = ["the", "good", "bad", "film"]


def rows(per_class: dict[int, list[float]], n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """n rows of each class, every row with that class's log-probabilities over WORDS."""
    classes = np.repeat(list(per_class), n)
    return np.log(np.asarray([per_class[c] for c in classes])), classes


def test_each_class_gets_the_word_likeliest_after_its_rows_relative_to_the_others():
    # 'the' is the likeliest word after every row but separates nothing: it is not chosen
    logprobs, classes = rows({0: [0.6, 0.3, 0.05, 0.05], 1: [0.6, 0.05, 0.3, 0.05]})
    assert choose_words(logprobs, classes, 2, WORDS) == ["good", "bad"]


def test_two_classes_never_share_a_word():
    # both classes' best margin is 'good'; the class with the larger margin keeps it
    logprobs, classes = rows({0: [0.1, 0.8, 0.05, 0.05], 1: [0.5, 0.3, 0.1, 0.1], 2: [0.7, 0.1, 0.1, 0.1]})
    chosen = choose_words(logprobs, classes, 3, WORDS)
    assert chosen[0] == "good" and len(set(chosen)) == 3


def test_candidates_are_the_likely_words_only():
    # 'film' separates class 1 best but is unlikely after its rows; with 2 candidates 'bad' wins
    logprobs, classes = rows({0: [0.5, 0.4, 0.0999, 0.0001], 1: [0.5, 0.1, 0.39, 0.01]})
    assert choose_words(logprobs, classes, 2, WORDS, candidates=2) == ["good", "bad"]
    assert choose_words(logprobs, classes, 2, WORDS, candidates=4)[1] == "film"


def test_rows_are_drawn_per_class_and_seeded(task):
    first = draw_rows_per_class(task.train, 3, seed=0)
    assert first == draw_rows_per_class(task.train, 3, seed=0) != draw_rows_per_class(task.train, 3, seed=1)
    assert sorted(np.bincount(task.train.labels[first]).tolist()) == [3, 3, 3]


def test_word_tokens_are_words_scored_as_one_token():
    tok = word_level_tokenizer(chat=True)
    ids, words = word_tokens(tok, " ")
    assert "team" in words and "<pad>" not in words and "N/A" not in words
    assert all(tok(" " + w, add_special_tokens=False)["input_ids"] == [i] for i, w in zip(ids, words))


def test_zero_shot_with_auto_verbalizers_scores_the_chosen_words(task, tiny_llama):
    ctx = context(task, tiny_llama)
    result = ZeroShot().run(ctx, ZeroShotParams(verbalizers="auto", max_length=16))
    chosen = result.extra_cost["verbalizers"]
    assert list(chosen) == LABELS and len(set(chosen.values())) == 3
    assert set(chosen.values()) <= set(word_tokens(word_level_tokenizer(True), " ")[1])
    assert len(result.predictions) == len(task.test)
    assert ctx.tracker.counters["eval_examples"] == len(task.test)  # the search's rows are not evaluation


@pytest.mark.parametrize("strategy", [ZeroShot(), InstructFineTune()])
def test_auto_is_a_verbalizers_value_and_other_text_is_one_error(strategy):
    params = validate_params(strategy, {"verbalizers": CliText("auto")})
    assert params["verbalizers"] == "auto"
    strategy.check(strategy.Params(**params), model=None)
    with pytest.raises(BenchError, match="auto"):
        strategy.check(strategy.Params(**validate_params(strategy, {"verbalizers": CliText("words")})), model=None)
