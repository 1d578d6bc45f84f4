"""The score tensor: every taker's judged score on every item of every generator.

S[particle, taker, item] holds scores in [0, 1]; NaN marks what has no score,
either because the item is invalid (never shown to takers) or because the
judge failed on it (a *missing* score, counted, never replaced by a number).
Models are reached only through an ``answer`` callable, so this module stays
on the scores side of the one-way data flow.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from objectives.judges import Judge
from objectives.tasks import Item

AnswerFn = Callable[[int, list[str]], list[str]]
"""answer(taker_index, inputs) -> one answer text per input."""


@dataclass
class Scores:
    """Scores of one set of items by ``T`` takers: ``values`` [T, N], NaN = no score."""

    values: torch.Tensor
    valid: torch.Tensor  # [N] bool: the item parsed and was shown to the takers
    missing: int  # judge failures among valid items, summed over takers

    @property
    def mask(self) -> torch.Tensor:
        """[T, N]: valid item with a present score."""
        return torch.isfinite(self.values)


def score_items(items: Sequence[Item], answer: AnswerFn, n_takers: int, judge: Judge) -> Scores:
    """Have every taker answer the valid items and the judge score each answer."""
    valid = torch.tensor([item.valid for item in items], dtype=torch.bool)
    values = torch.full((n_takers, len(items)), float("nan"))
    shown = [i for i, item in enumerate(items) if item.valid]
    missing = 0
    if shown:
        shown_items = [items[i] for i in shown]
        inputs = [item.input for item in shown_items]
        columns = torch.tensor(shown)
        for t in range(n_takers):
            judged = [s if s is not None and 0.0 <= s <= 1.0 else None for s in judge.score(shown_items, answer(t, inputs))]
            missing += judged.count(None)
            values[t, columns] = torch.tensor([float("nan") if s is None else float(s) for s in judged])
    return Scores(values, valid, missing)


def stack(scores: Sequence[Scores]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-particle scores -> (S [P, T, N], mask [P, T, N], valid [P, N])."""
    S = torch.stack([s.values for s in scores])
    return S, torch.isfinite(S), torch.stack([s.valid for s in scores])
