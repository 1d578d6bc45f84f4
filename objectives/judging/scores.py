"""The score tensor: every taker's judged score on every item of every generator.

S[particle, taker, item] holds scores in [0, 1]; NaN marks what has no score,
either because the item is invalid (never shown to takers) or because the
judge failed on it, or the taker gave no answer (a served taker's request that
failed for good): a *missing* score, counted, never replaced by a number.
Models are reached only through an ``answer`` callable, so this module stays
on the scores side of the one-way data flow.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from objectives.judging.judges import Judge
from objectives.tasks.item import Item

AnswerAll = Callable[[list[str]], list[list["str | None"]]]
"""answer_all(inputs) -> out[t][i], taker t's answer to inputs[i] (None: the taker gave none)."""
JudgeFn = Callable[[list[Item], list[str]], list["float | None"]]
"""judge(items, answers) -> one score in [0, 1] per pair, None when the judge failed."""


@dataclass
class Scores:
    """Scores of one set of items by ``T`` takers: ``values`` [T, N], NaN = no score."""

    values: torch.Tensor
    valid: torch.Tensor  # [N] bool: the item parsed and was shown to the takers
    missing: int  # judge failures and missing answers among valid items, summed over takers

    @property
    def mask(self) -> torch.Tensor:
        """[T, N]: valid item with a present score."""
        return torch.isfinite(self.values)


def score_sets(item_sets: Sequence[Sequence[Item]], answer_all: AnswerAll, n_takers: int, judge: JudgeFn) -> list[Scores]:
    """Scores of several item sets (one per generator): every taker answers every valid item, the judge scores.

    The distinct valid inputs of all sets are answered in one call (neighbouring
    particles write many of the same items; answers are greedy, so one answer
    serves every copy), and each distinct (item, taker's answer) is judged once,
    all in one call: the judge reads an item's input and reference answer, so
    every copy of an item gets that score (two items that share an input but not
    a reference answer are judged apart).
    """
    first: dict[tuple[str, str | None], Item] = {}
    for item in (item for items in item_sets for item in items if item.valid):
        first.setdefault((item.input, item.output), item)
    keys = list(first)
    inputs = list(dict.fromkeys(text for text, _ in keys))
    answers = answer_all(inputs) if inputs else [[] for _ in range(n_takers)]
    column = {text: i for i, text in enumerate(inputs)}
    pairs_items, pairs_answers, where = [], [], []
    for t in range(n_takers):
        for k, key in enumerate(keys):
            answer = answers[t][column[key[0]]]
            if answer is not None:  # no answer to judge: missing, not wrong
                pairs_items.append(first[key])
                pairs_answers.append(answer)
                where.append((t, k))
    judged = judge(pairs_items, pairs_answers) if pairs_items else []
    table = [[math.nan] * len(keys) for _ in range(n_takers)]  # [taker][distinct item]; NaN: missing
    for (t, k), s in zip(where, judged):
        if s is not None and 0.0 <= s <= 1.0:
            table[t][k] = float(s)
    index = {key: k for k, key in enumerate(keys)}
    out = []
    for items in item_sets:
        cols = [index[(item.input, item.output)] if item.valid else None for item in items]
        values = [[math.nan if c is None else row[c] for c in cols] for row in table]  # lists: a tensor write a pair cost ~1 % of a zoo step
        missing = sum(math.isnan(row[c]) for row in table for c in cols if c is not None)
        out.append(Scores(torch.tensor(values, dtype=torch.float32).reshape(n_takers, len(items)),
                          torch.tensor([item.valid for item in items], dtype=torch.bool), missing))
    return out


def score_items(items: Sequence[Item], answer: Callable[[int, list[str]], list[str]], n_takers: int, judge: Judge) -> Scores:
    """``score_sets`` for one item set, with ``answer(taker, inputs)`` one taker at a time."""
    return score_sets([items], lambda inputs: [answer(t, inputs) for t in range(n_takers)], n_takers, judge.score)[0]


def stack(scores: Sequence[Scores]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-particle scores -> (S [P, T, N], mask [P, T, N], valid [P, N])."""
    S = torch.stack([s.values for s in scores])
    return S, torch.isfinite(S), torch.stack([s.valid for s in scores])


def format_valid_sets(item_sets: Sequence[Sequence[Item]]) -> torch.Tensor:
    """[P, N] bool, for P item sets of one length: the item parsed, whatever the verifier said of its answer (or
    the contamination screen of it)."""
    flags = [[item.valid or item.verified is False or item.overlap is not None for item in items] for items in item_sets]
    return torch.tensor(flags, dtype=torch.bool)


def defeat_all(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[P] fraction of scored items on which every scored taker got < 0.5 (S, mask: [P, T, N]).

    With unchecked answers a high value is the sign of invented references: every taker
    is "wrong" against an answer nobody could give.
    """
    scored = mask.any(dim=1)
    beaten = (values < 0.5).logical_or(~mask).all(dim=1) & scored  # an unscored taker saves no item
    return beaten.sum(dim=1) / scored.sum(dim=1).clamp(min=1)
