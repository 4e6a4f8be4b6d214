"""Prompts for scoring labels with a causal LM, shared by zero-shot and instruct-ft: preset
templates, verbalizers (the words scored for each label), k-shot demonstrations, and the token ids
of each example's prompt and of each label's continuation."""

from __future__ import annotations

import numpy as np

from bench.core.errors import BenchError
from bench.data.task import Split

# Preset prompts: (template, answer prefix). In a template {labels} becomes the verbalizers joined
# by ", " and {text} the example's text. "news" suits topic classification of news (BBC News,
# AG News); the others name no domain.
TEMPLATES = {
    "terse": ("Categories: {labels}\nText: {text}", "Category:"),
    "question": ("Here is a text:\n\n{text}\n\nWhich category does this text belong to? Options: {labels}.",
                 "Category:"),
    "news": ("Here is a news article:\n\n{text}\n\nWhat is the topic of this article? Options: {labels}.",
             "Topic:"),
}
CUSTOM_ANSWER_PREFIX = "Answer:"  # for a template given as text, unless answer_prefix is set
TEXT_MARK = "\u2063"  # an invisible character that marks where the text goes, to find the shared prefix


def resolve_template(template: str, answer_prefix: str | None) -> tuple[str, str]:
    """(template text, answer prefix) from a preset name or a template text."""
    if answer_prefix is not None and not isinstance(answer_prefix, str):
        raise BenchError(f"zero-shot answer_prefix {answer_prefix!r} must be text (quote it in YAML: \"Answer:\")")
    if template in TEMPLATES:
        text, preset_prefix = TEMPLATES[template]
        return text, preset_prefix if answer_prefix is None else answer_prefix
    if isinstance(template, str) and "{text}" in template:
        return template, CUSTOM_ANSWER_PREFIX if answer_prefix is None else answer_prefix
    raise BenchError(f"zero-shot template {template!r} is neither a preset ({', '.join(TEMPLATES)}) "
                     "nor a template text containing {text}")


def verbalizer_list(labels: list[str], verbalizers: dict[str, str] | None) -> list[str]:
    """The words scored for each class, in class-id order."""
    if not verbalizers:
        return list(labels)
    unknown = sorted(set(verbalizers) - set(labels))
    missing = [x for x in labels if x not in verbalizers]
    if unknown or missing:
        raise BenchError(f"zero-shot verbalizers must name every label exactly: missing {missing}, "
                         f"unknown {unknown}; labels are {labels}")
    words = [verbalizers[x].strip() for x in labels]
    if len(set(words)) < len(words):
        raise BenchError(f"zero-shot verbalizers {words} repeat a word: each label needs its own")
    return words


def draw_demonstrations(train: Split, k: int, seed: int) -> list[tuple[str, int]]:
    """k (text, class id) pairs from the train split, the same for a given seed: a random order in
    which every class appears once before any appears twice (unbalanced demonstrations bias the
    model towards the repeated label)."""
    if k > len(train):
        raise BenchError(f"zero-shot k_shot={k} but the train split has {len(train)} rows: lower k_shot")
    order = np.random.default_rng(seed).permutation(len(train))
    seen: dict[int, int] = {}
    rank = np.empty(len(order), dtype=np.int64)  # how many of the same class came earlier in `order`
    for pos, i in enumerate(order):
        y = int(train.labels[i])
        rank[pos] = seen.get(y, 0)
        seen[y] = rank[pos] + 1
    chosen = order[np.lexsort((np.arange(len(order)), rank))[:k]]
    return [(train.texts[i], int(train.labels[i])) for i in chosen]


class PromptBuilder:
    """Token ids of each example's prompt and of each label's continuation. With a chat template,
    the filled template is the user's turn and the answer prefix opens the assistant's; without
    one, the answer prefix follows the filled template on a new line. Demonstrations come first,
    as earlier turns (or paragraphs) answered with their label."""

    def __init__(self, tokenizer, template: str, answer_prefix: str, words: list[str],
                 demos: list[tuple[str, int]], max_length: int):
        self.tokenizer = tokenizer
        self.template_text, self.demo_rows = template, list(demos)  # as given: what a saved model rebuilds from
        self.template = template.replace("{labels}", ", ".join(words))
        self.answer_prefix = answer_prefix
        self.words = words
        self.max_length = max_length
        self.chat = bool(getattr(tokenizer, "chat_template", None))
        texts = self.truncate([t for t, _ in demos])
        self.demos = [(text, words[y]) for text, (_, y) in zip(texts, demos)]

    def truncate(self, texts) -> list[str]:
        """Each text cut to max_length tokens (decoded back, so the prompt is rendered as text)."""
        if not texts:
            return []
        ids = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [t if len(x) <= self.max_length else self.tokenizer.decode(x[: self.max_length])
                for t, x in zip(texts, ids)]

    def _question(self, text: str) -> str:
        return self.template.replace("{text}", text)

    def _answer(self, word: str) -> str:
        return f"{self.answer_prefix} {word}".strip()

    def render(self, text: str) -> str:
        if self.chat:
            messages = []
            for demo, word in self.demos:
                messages += [{"role": "user", "content": self._question(demo)},
                             {"role": "assistant", "content": self._answer(word)}]
            messages.append({"role": "user", "content": self._question(text)})
            head = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return head + self.answer_prefix
        shots = [f"{self._question(demo)}\n{self._answer(word)}" for demo, word in self.demos]
        return "\n\n".join(shots + [f"{self._question(text)}\n{self.answer_prefix}"])

    def ids(self, prompt: str) -> list[int]:
        # a chat template writes its own special tokens; plain prompts get the tokenizer's (BOS)
        return self.tokenizer(prompt, add_special_tokens=not self.chat)["input_ids"]

    def encode_all(self, texts) -> list[list[int]]:
        return [self.ids(self.render(t)) for t in self.truncate(texts)]

    def shared_prefix_ids(self) -> list[int]:
        """Ids of the prompt up to where the text starts: the same for every example."""
        rendered = self.render(TEXT_MARK)
        return self.ids(rendered.split(TEXT_MARK)[0]) if TEXT_MARK in rendered else []

    def label_lead(self) -> str:
        """What comes before a label's word: a space, unless the prompt already ends in whitespace."""
        return "" if self.render("")[-1:].isspace() else " "

    def label_ids(self) -> list[list[int]]:
        """A label follows the prompt after a space, as a word in running text (" sports" is one
        common token where "sports" right after a newline may split oddly), unless the prompt
        already ends in whitespace."""
        ids = [self.tokenizer(self.label_lead() + w, add_special_tokens=False)["input_ids"] for w in self.words]
        empty = [w for w, x in zip(self.words, ids) if not x]
        if empty:
            raise BenchError(f"zero-shot verbalizers {empty} tokenize to nothing; choose other words")
        return ids
