"""What is wrong with a dataset's rows before any model sees them, found and said, never silently
fixed: one label written several ways, the same text twice, one text under two labels, and a text
on both sides of a split.

- Labels equal after trimming and case-folding (`spam`, `spam `, `Spam`) are one error naming them;
  a file or `hf:` dataset merges them on request (`--data-opt merge_labels=true`, `merge_spellings`).
- Repeated texts (whitespace-normalised) are dropped before splitting, the first row kept.
- A text (normalised: Unicode NFKC, case-folded, punctuation and whitespace collapsed) seen again
  under another label is a conflict: the first row's label is kept, the later rows are dropped, and
  the count is said.
- A near-duplicate in a later split of one in an earlier split (validation after train, test after
  both) is dropped from the later split, with a warning: a model must not be scored on a text it
  was trained on, whatever its case or punctuation.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

import pandas as pd

from bench.core.errors import BenchError, echoed

NORMALISATION = "Unicode NFKC, case-folded, punctuation and whitespace collapsed"
CONFLICT_RULE = "the first row's label is kept; later rows of the same text under another label are dropped"
LATER_SPLIT_RULE = "dropped from the later split (validation after train, test after train and validation)"
EXAMPLES = 3  # conflicts named in the note


# Memoised: one process prepares the same dataset's texts again and again (a comparison's trials, the
# test rows a comparison holds out), and normalising a long text costs far more than hashing it. Bounded:
# each entry keeps a copy of its text, and a dataset larger than the cache gains nothing from it anyway.
KEY_CACHE = 1 << 15


@functools.lru_cache(maxsize=KEY_CACHE)
def text_key(text: str) -> str:
    """A text as near-duplicates share it; a text of symbols alone keeps its symbols."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    words = re.sub(r"[\W_]+", " ", folded).split()
    return " ".join(words) if words else " ".join(folded.split())


@functools.lru_cache(maxsize=KEY_CACHE)
def spaced(text: str) -> str:
    """A text with its whitespace collapsed: repeated texts are equal in this form."""
    return " ".join(text.split())


def label_key(label: str) -> str:
    return str(label).strip().casefold()


@dataclass
class Hygiene:
    """What was found and done; the record's `dataset.hygiene`."""

    duplicates_dropped: int = 0
    conflicts_dropped: int = 0  # rows whose text an earlier row holds under another label
    conflict_examples: list[dict] = field(default_factory=list)
    near_duplicates_dropped: dict[str, int] = field(default_factory=dict)  # {val|test: rows}
    labels_merged: dict[str, list[str]] = field(default_factory=dict)  # {kept spelling: spellings merged}

    def notes(self) -> list[str]:
        out = []
        if self.duplicates_dropped:
            out.append(f"{self.duplicates_dropped} duplicate text(s) dropped before splitting")
        if self.conflicts_dropped:
            named = "; ".join(f"{echoed(c['text'], 50)}: {' vs '.join(map(str, c['labels']))}"
                              for c in self.conflict_examples)
            out.append(f"{self.conflicts_dropped} row(s) held a text already seen under another label "
                       f"(conflicting labels, e.g. {named}): {CONFLICT_RULE}")
        if any(self.near_duplicates_dropped.values()):
            where = ", ".join(f"{n} from {split}" for split, n in self.near_duplicates_dropped.items() if n)
            out.append(f"near-duplicates of an earlier split's texts dropped from the later split: {where} "
                       "(equal ignoring case, Unicode form, punctuation and spacing)")
        for kept, spellings in self.labels_merged.items():
            out.append(f"labels {', '.join(echoed(x, 30) for x in spellings)} merged into {echoed(kept, 30)} "
                       "(merge_labels)")
        return out

    def warnings(self) -> list[str]:
        """What a user must hear before the run starts (the rest is a note in the record)."""
        return [n for n in self.notes() if "conflicting" in n or "near-duplicates" in n]

    def record(self) -> dict:
        return {"duplicates_dropped": self.duplicates_dropped, "conflicts_dropped": self.conflicts_dropped,
                "conflict_examples": self.conflict_examples, "conflict_rule": CONFLICT_RULE,
                "near_duplicates_dropped": dict(self.near_duplicates_dropped), "normalisation": NORMALISATION,
                "near_duplicate_rule": LATER_SPLIT_RULE, "labels_merged": dict(self.labels_merged)}


def check_label_spellings(labels: Iterable[str], name: str) -> None:
    """One error for labels that are one label written several ways."""
    groups: dict[str, list[str]] = {}
    for label in dict.fromkeys(map(str, labels)):
        groups.setdefault(label_key(label), []).append(label)
    clashes = [g for g in groups.values() if len(g) > 1]
    if clashes:
        first = clashes[0]
        more = f" (and {len(clashes) - 1} more such group(s))" if len(clashes) > 1 else ""
        raise BenchError(f"dataset '{name}' has labels {', '.join(echoed(x, 30) for x in first[:5])} that differ "
                         f"only by case or surrounding spaces{more}: they would be separate classes. Merge them "
                         "in the data, or pass --data-opt merge_labels=true to count each group as one class")


def merge_spellings(frames: list[pd.DataFrame]) -> tuple[list[pd.DataFrame], dict[str, list[str]]]:
    """Labels equal after trimming and case-folding mapped to one spelling (the commonest, trimmed;
    ties alphabetically), in every frame; and {kept: [every spelling merged into it]}."""
    counts = Counter(str(v) for f in frames for v in f["label"] if isinstance(v, str))
    groups: dict[str, list[str]] = {}
    for label in sorted(counts):
        groups.setdefault(label_key(label), []).append(label)
    mapping, merged = {}, {}
    for spellings in groups.values():
        if len(spellings) < 2:
            continue
        trimmed = Counter()
        for s in spellings:
            trimmed[s.strip()] += counts[s]
        kept = sorted(trimmed, key=lambda s: (-trimmed[s], s))[0]
        merged[kept] = spellings
        mapping.update({s: kept for s in spellings})
    if not mapping:
        return frames, {}
    return [f.assign(label=f["label"].map(lambda v: mapping.get(v, v))) for f in frames], merged


def deduplicate(df: pd.DataFrame, hygiene: Hygiene | None = None) -> pd.DataFrame:
    """Drop repeated texts (whitespace-normalized), keeping the first: a duplicate split across
    train and test would leak the answer; and rows whose normalised text an earlier row holds under
    another label (the conflict rule). Counts go to `hygiene`."""
    exact = df["text"].map(spaced)
    near = df["text"].map(text_key)
    first_label = df.groupby(near, sort=False)["label"].transform("first")
    conflict = df["label"] != first_label
    repeated = exact.duplicated(keep="first") & ~conflict
    if hygiene is not None:
        hygiene.duplicates_dropped += int(repeated.sum())
        hygiene.conflicts_dropped += int(conflict.sum())
        for key in near[conflict].drop_duplicates().head(EXAMPLES - len(hygiene.conflict_examples)):
            rows = df[near == key]
            hygiene.conflict_examples.append({"text": str(rows["text"].iloc[0])[:80],
                                              "labels": list(dict.fromkeys(rows["label"].map(str)))})
    return df[~(repeated | conflict)].reset_index(drop=True)


def drop_later_duplicates(splits: dict, labels: list[str], hygiene: Hygiene) -> dict:
    """`splits` ({train, val, test: Split}) with every val row whose normalised text train holds, and
    every test row whose text train or val holds, dropped; counts (and conflicting labels among
    them) go to `hygiene`."""
    seen: dict[str, int] = {}  # text key -> its label id in the earliest split holding it
    out = {}
    for name in ("train", "val", "test"):
        split = splits[name]
        keys = [text_key(t) for t in split.texts]
        drop = [i for i, k in enumerate(keys) if k in seen] if name != "train" else []
        if drop:
            hygiene.near_duplicates_dropped[name] = len(drop)
            clash = [i for i in drop if seen[keys[i]] != int(split.labels[i])]
            hygiene.conflicts_dropped += len(clash)
            for i in clash[: max(0, EXAMPLES - len(hygiene.conflict_examples))]:
                hygiene.conflict_examples.append({"text": split.texts[i][:80],
                                                  "labels": [labels[seen[keys[i]]], labels[int(split.labels[i])]]})
        for k, y in zip(keys, split.labels.tolist()):
            seen.setdefault(k, int(y))
        dropped = set(drop)
        out[name] = split.subset([i for i in range(len(split)) if i not in dropped]) if drop else split
    return out


MERGE_OPTION = {"merge_labels": "true: labels that differ only by case or surrounding spaces are one class "
                                "(the commonest spelling kept)"}


def wants_merge(options) -> bool:
    """The `merge_labels` dataset option, as true/false (one error for anything else)."""
    value = (options.get("merge_labels") or "false").strip().lower()
    if value not in ("true", "false", "yes", "no", "1", "0"):
        raise BenchError(f"--data-opt merge_labels={echoed(value)}: use true or false")
    return value in ("true", "yes", "1")
