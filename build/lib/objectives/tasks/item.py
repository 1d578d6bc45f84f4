"""The item type and the task protocol: the evaluation items a swarm writes and the takers answer.

A task says three things the rest of the run needs: which real items seed the
few-shot prompts (``dev``), which items measure held-out quality (``test``),
and how to turn one generated line into an :class:`Item` (``parse_item``),
including whether it is valid and, where it can be known, its answer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence


@dataclass(frozen=True)
class Item:
    """One evaluation item. ``output`` is the reference answer when known.

    ``verified`` is the answer verifier's verdict on a format-valid item (None: not checked);
    ``overlap`` is its n-gram overlap with the contamination references (objectives/contamination.py;
    None: not measured); ``valid`` is the final word: the format parsed, the answer was not rejected
    and, with ``task.drop_contaminated``, the item is no copy.
    """

    input: str
    output: str | None
    valid: bool
    verified: bool | None = None
    overlap: float | None = None

    def to_json(self) -> dict:
        row = {"input": self.input, "output": self.output, "valid": self.valid}
        if self.verified is not None:
            row["verified"] = self.verified
        if self.overlap is not None:
            row["overlap"] = self.overlap
        return row


class Task(Protocol):
    """What every task provides (arith, json)."""

    name: str
    dev: Sequence[Item]
    test: Sequence[Item]
    exact_answers: bool  # every parsed item's answer is computed, not written by a model (arith)

    def parse_item(self, text: str | None) -> Item:
        """Turn one generated item text into an Item; never raises."""

    def format_example(self, item: Item) -> str:
        """How a dev item is shown in the few-shot prompt: the form generators must write."""

    def realism_corpus(self) -> list[str]:
        """Real queries that generated items should resemble (realism)."""

    @property
    def realism_source(self) -> str:
        """Where the realism corpus comes from, said plainly (a proxy is named as one)."""
