"""`verbalizers: auto`: label words chosen from a few labelled train rows, for label names the model
does not read as words of the task (fresh / rotten on film reviews). A simplified form of LM-BFF's
automatic label-word search (Gao et al. 2021): the prompt is filled with each row's text, the LM's
next-token distribution after the answer prefix is taken, and each class gets the word token that
is likeliest after its own rows relative to the other classes' rows, among the tokens that are
likely after its rows at all (so the word reads naturally, not a rare token that merely
discriminates). It uses train labels: it is no longer zero-shot, as k_shot demonstrations are not."""

from __future__ import annotations

import re

import numpy as np

from bench.core.errors import BenchError
from bench.data.task import Split
from bench.engine.context import RunContext

AUTO = "auto"
ROWS_PER_CLASS = 16  # LM-BFF's few-shot setting; more rows cost a forward pass each
CANDIDATES = 100  # per class, the likeliest word tokens after its rows that may become its word
SHORTLIST = 20  # of those, the most class-specific, among which accuracy on the rows decides
WORD = re.compile(r"^[A-Za-z]{3,}$")  # a whole word of letters


def is_auto(verbalizers) -> bool:
    return isinstance(verbalizers, str) and verbalizers.strip().lower() == AUTO


def draw_rows_per_class(train: Split, per_class: int, seed: int) -> list[int]:
    """Up to `per_class` train row indices of every class, the same for a given seed."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(train.labels)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return sorted(int(i) for i in np.concatenate(chosen))


def word_tokens(tokenizer, lead: str) -> tuple[np.ndarray, list[str]]:
    """Ids and words of the vocabulary's tokens that are a whole alphabetic word (3+ letters) and
    exactly what a label of that word would be scored as (`lead` + word is that one token)."""
    ids = np.arange(len(tokenizer))
    texts = [t.strip() for t in tokenizer.batch_decode(ids[:, None].tolist())]
    keep = [i for i, t in zip(ids, texts) if WORD.match(t)]
    encoded = tokenizer([lead + texts[i] for i in keep], add_special_tokens=False)["input_ids"]
    chosen = [i for i, e in zip(keep, encoded) if e == [i]]
    if not chosen:
        raise BenchError("verbalizers=auto: no token of this tokenizer is a whole word as labels are scored; "
                         "give the words with --param zero-shot.verbalizers='{label: word, ...}'")
    return np.asarray(chosen), [texts[i] for i in chosen]


def next_token_logprobs(model, prompt_ids: list[list[int]], ctx: RunContext, token_ids: np.ndarray) -> np.ndarray:
    """(rows, candidate tokens) log-probabilities of the token after each prompt."""
    import torch

    device = next(model.parameters()).device
    index = torch.as_tensor(token_ids, device=device)
    bar = ctx.tracker.progress(total=len(prompt_ids), desc="choosing label words", unit="ex")
    rows = []
    with torch.inference_mode():
        for ids in prompt_ids:
            logits = model(input_ids=torch.tensor([ids], device=device), logits_to_keep=1).logits[0, -1]
            rows.append(torch.log_softmax(logits.float(), -1)[index].cpu().numpy())
            bar.update(1)
    bar.close()
    return np.stack(rows)


def choose_words(logprobs: np.ndarray, classes: np.ndarray, n_classes: int, words: list[str],
                 candidates: int = CANDIDATES, shortlist: int = SHORTLIST) -> list[str]:
    """One distinct word per class. Each class's shortlist: among its `candidates` likeliest words
    (mean log-probability over its rows), the `shortlist` whose mean log-probability exceeds their
    mean over the other classes' rows (each class weighted alike) by the most. Start from the best
    margins (greedy, distinct), then, as LM-BFF re-ranks its candidates by accuracy, change one
    class's word at a time to the shortlisted word that most raises the calibrated balanced accuracy
    on these rows, until no change helps."""
    means = np.stack([logprobs[classes == c].mean(0) for c in range(n_classes)])  # (classes, words)
    margins = np.stack([means[c] - np.delete(means, c, 0).mean(0) for c in range(n_classes)])
    short = []
    for c in range(n_classes):
        likely = np.argsort(-means[c])[:candidates]
        short.append(likely[np.argsort(-margins[c, likely])][:shortlist])
    options = sorted(((margins[c, w], c, w) for c in range(n_classes) for w in short[c]), reverse=True)
    chosen: dict[int, int] = {}
    for _, c, w in options:
        if c not in chosen and w not in chosen.values():
            chosen[c] = w
    if len(chosen) < n_classes:  # fewer distinct candidates than classes: widen the pool
        return choose_words(logprobs, classes, n_classes, words, candidates * 4, shortlist * 4)
    assignment = [chosen[c] for c in range(n_classes)]
    best = assignment_score(logprobs, classes, assignment)
    improved = True
    while improved:
        improved = False
        for c in range(n_classes):
            for w in short[c]:
                if w in assignment:
                    continue
                trial = assignment[:c] + [w] + assignment[c + 1:]
                score = assignment_score(logprobs, classes, trial)
                if score > best + 1e-9:
                    assignment, best, improved = trial, score, True
    return [words[w] for w in assignment]


def assignment_score(logprobs: np.ndarray, classes: np.ndarray, assignment: list[int]) -> float:
    """Balanced accuracy on the search rows when class c is scored by word assignment[c], with the
    batch calibration zero-shot applies (label_scoring)."""
    from sklearn.metrics import balanced_accuracy_score

    from strategies.shared.label_scoring import calibrate, content_free_prior

    scores = logprobs[:, assignment]
    return float(balanced_accuracy_score(classes, calibrate(scores, content_free_prior(scores)).argmax(1)))


def search_label_words(model, tokenizer, make_prompts, ctx: RunContext) -> list[str]:
    """The label words for `verbalizers: auto`; `make_prompts(words)` builds the PromptBuilder (the
    search fills {labels} with the label names themselves)."""
    train = ctx.data.train
    rows = draw_rows_per_class(train, ROWS_PER_CLASS, ctx.seed)
    classes = np.asarray(train.labels)[rows]
    if len(np.unique(classes)) < len(ctx.data.labels):
        raise BenchError("verbalizers=auto needs train rows of every class; give the words with "
                         "--param zero-shot.verbalizers='{label: word, ...}'")
    prompts = make_prompts(list(ctx.data.labels))
    token_ids, words = word_tokens(tokenizer, prompts.label_lead())
    logprobs = next_token_logprobs(model, prompts.encode_all([train.texts[i] for i in rows]), ctx, token_ids)
    chosen = choose_words(logprobs, classes, len(ctx.data.labels), words)
    ctx.tracker.log(f"label words chosen on {len(rows)} train rows: " + ", ".join(
        f"{name} -> {word}" for name, word in zip(ctx.data.labels, chosen)))
    return chosen
