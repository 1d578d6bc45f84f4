"""Contamination: how much of a generated item is copied from data it must not contain.

An item's overlap is the fraction of its token n-grams that occur in the references'
n-grams (the protocol of PaLM, Chowdhery et al. 2022, §8: contaminated when at least
70 % of an example's 8-grams appear in the reference data), or 1.0 when its tokens equal
a reference's exactly, whatever its length: on arith, where a problem is 3 or 5 tokens
and has no 8-gram, an exact copy of a dev problem counts. Tokens are realism's
(objectives/realism.py: lowercased numbers, words and operator symbols), so "47 + 38"
and "47+38" are the same item.

The references are the task's dev inputs (the generators' few-shot pool), its test
inputs, and the files named by ``task.contamination_refs``. With ``drop`` an item at or
over the threshold is invalid (never scored); either way its overlap is kept on the item.
Pure functions of texts and token sets; the one stateful object holds the built n-gram set.
"""
from __future__ import annotations

import functools
import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from objectives.realism import tokenize, tokens
from objectives.tasks.item import Item, Task
from objectives.tasks.json_task import read_query_file

Gram = tuple[str, ...]
_MEMO_SIZE = 100_000  # distinct texts whose overlap is remembered


def ngrams(tokens: Sequence[str], n: int) -> list[Gram]:
    """Every run of ``n`` consecutive tokens, in order (none when there are fewer than ``n``)."""
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def overlap(tokens: Sequence[str], grams: set[Gram], exact: set[Gram], n: int) -> float:
    """1.0 for an exact copy of a reference, else the fraction of the item's n-grams found in ``grams``."""
    if tuple(tokens) in exact:
        return 1.0
    mine = ngrams(tokens, n)
    return sum(g in grams for g in mine) / len(mine) if mine else 0.0


def reference_texts(path: str | Path) -> list[str]:
    """The texts of a reference file: a task file in the reference format ({"dev": [...], "test": [...]}: the
    inputs of both), or what a realism corpus may be (.json list, .jsonl with "input", .txt one a line)."""
    path = Path(path)
    if path.suffix == ".json" and path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({str(err).splitlines()[0]})") from None
        if isinstance(data, dict) and ("dev" in data or "test" in data):
            rows = [r for split in ("dev", "test") for r in data.get(split) or []]
            texts = [r.get("input") for r in rows if isinstance(r, dict)]
            return [t for t in texts if isinstance(t, str) and t.strip()]
    return read_query_file(path)


class Contamination:
    """The references' n-grams, built once; ``screen`` marks (and with ``drop`` invalidates) copied items."""

    def __init__(self, references: dict[str, Sequence[str]], n: int = 8, threshold: float = 0.7, drop: bool = False) -> None:
        if n < 1 or not 0.0 < threshold <= 1.0:
            raise ValueError(f"contamination: need n >= 1 and threshold in (0, 1], got {n}, {threshold}")
        self.n, self.threshold, self.drop = n, threshold, drop
        self.sources = {name: len(texts) for name, texts in references.items()}
        token_lists = [tokenize(t) for texts in references.values() for t in texts]
        self.exact = {tuple(t) for t in token_lists}
        self.grams = {g for t in token_lists for g in ngrams(t, n)}
        # overlap_of(text): a text's `overlap` with the references, measured once a run (the references never
        # change; a search's steps write many of the same items), the least recently asked forgotten first
        self.overlap_of = functools.lru_cache(maxsize=_MEMO_SIZE)(self._measure)

    @classmethod
    def of_task(cls, task: Task, files: Sequence[str] = (), **options: Any) -> "Contamination":
        """References: the task's dev and test inputs and each file of ``files`` (task.contamination_refs)."""
        refs: dict[str, Sequence[str]] = {"dev": [it.input for it in task.dev], "test": [it.input for it in task.test]}
        for i, path in enumerate(files):
            try:
                refs[str(path)] = reference_texts(path)
            except (OSError, ValueError) as err:
                raise ValueError(f"task.contamination_refs[{i}]: {str(err).splitlines()[0]}") from None
        return cls(refs, **options)

    def overlaps(self, texts: Sequence[str]) -> list[float]:
        """Each text's `overlap` with the references."""
        return [self.overlap_of(text) for text in texts]

    def _measure(self, text: str) -> float:
        return overlap(tokens(text), self.grams, self.exact, self.n)

    def check(self, item: Item, **changes: Any) -> Item:
        """``item`` with ``changes`` (a verifier's verdict, say) and, if it is then valid, its ``overlap``; with
        ``drop``, invalid at or over the threshold. One copy of the item for all of it."""
        if changes.get("valid", item.valid):
            value = self.overlap_of(item.input)
            changes.update(overlap=value, valid=not (self.drop and value >= self.threshold))
        return replace(item, **changes) if changes else item

    def screen(self, items: Sequence[Item]) -> list[Item]:
        """``items`` with each valid one's ``overlap``; with ``drop``, those at or over the threshold invalid."""
        return [self.check(item) for item in items]

    def report(self, items: Sequence[Item]) -> dict[str, Any]:
        """The contamination of one dataset (summary.json, the dataset card)."""
        values = [item.overlap for item in items if item.overlap is not None]
        over = sum(v >= self.threshold for v in values)
        return {"rate": over / len(values) if values else 0.0, "contaminated": over, "checked": len(values),
                "mean_overlap": sum(values) / len(values) if values else 0.0, "n": self.n,
                "threshold": self.threshold, "dropped": self.drop, "references": dict(self.sources)}


def rate(items: Sequence[Item], threshold: float) -> float:
    """The fraction of the checked items (those with an overlap) at or over ``threshold``."""
    values = [item.overlap for item in items if item.overlap is not None]
    return sum(v >= threshold for v in values) / len(values) if values else 0.0
