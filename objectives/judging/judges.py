"""Judges: score a test taker's answer to an item, in [0, 1], or None when the judge fails.

One interface, four judges, each built by the ``judge`` config group's ``_target_`` (a judge
of your own is any class with ``score``, ``confirm`` and ``failures``):

- ``score(items, answers)``: is each taker's answer right?
- ``confirm(items)``: is each item's own answer right? The same question a verifier answers
  (objectives/judging/verify.py); Adversarial Swarms asks it before a generated item may
  train its takers.

The two exact ones are here:

- ``verifier``  exact arithmetic check of the arith task (objectives/tasks/arith.py);
- ``reference`` numeric-aware match of the answer against ``item.output``;

and the two LLM judges (``hf_llm``, ``openai``: a model rates the answer 1-10) are in
objectives/judging/llm_judges.py.

A None score is *missing*: the objectives exclude it; no judge ever substitutes a
default such as 0.5. Every judge counts its missing scores in ``failures``.
"""
from __future__ import annotations

import math
import re
import string
from typing import Protocol, Sequence

from objectives.tasks.arith import answer_is_exact, parse_answer, solve
from objectives.tasks.item import Item


class Judge(Protocol):
    failures: int  # cumulative count of missing (None) scores

    def score(self, items: Sequence[Item], answers: Sequence[str]) -> list[float | None]:
        """One score in [0, 1] per (item, answer); None = missing (judge failure)."""

    def confirm(self, items: Sequence[Item]) -> list[bool]:
        """Whether each item's own answer (``item.output``) is right, as far as this judge can tell."""


def check_lengths(items: Sequence[Item], answers: Sequence[str]) -> None:
    if len(items) != len(answers):
        raise ValueError(f"judge got {len(items)} items but {len(answers)} answers")


class _ExactJudge:
    """A judge that checks each answer on its own: 1.0 right, 0.0 wrong, None when it cannot tell."""

    def __init__(self) -> None:
        self.failures = 0

    def check(self, item: Item, answer: str) -> float | None:
        raise NotImplementedError

    def score(self, items: Sequence[Item], answers: Sequence[str]) -> list[float | None]:
        check_lengths(items, answers)
        out = [self.check(item, answer or "") for item, answer in zip(items, answers)]
        self.failures += sum(s is None for s in out)
        return out


class VerifierJudge(_ExactJudge):
    """1.0 when the taker's answer equals the exact solution of the arith problem, else 0.0.

    An item whose input does not solve is a caller bug (invalid items are never
    judged): its score is None and it counts as a failure.
    """

    def check(self, item: Item, answer: str) -> float | None:
        expected = solve(item.input)
        return None if expected is None else float(parse_answer(answer) == expected)

    def confirm(self, items: Sequence[Item]) -> list[bool]:
        """The exact solution, recomputed (an item's answer is written plainly, a taker's reversed)."""
        return [answer_is_exact(item) for item in items]


# ---------------------------------------------------------------- reference matching

_NUMBER = re.compile(
    r"(?:(?<![\w)\]])-)?"                       # a minus sign, unless it is a binary minus ("5-3")
    r"\$?\s?"
    r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?!\d)"  # 1,234 / 1234 / 1234.50
    r"|(?:(?<![\w)\]])-)?\.\d+"                 # .5
)
_ANSWER_IS = re.compile(r"answer\s*(?:is|:|=)", re.IGNORECASE)
_PLAIN_NUMBER = re.compile(r"-?\$?\s?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)%?\.?")  # fullmatch, stripped
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def _to_float(match: str) -> float | None:
    value = float(match.replace("$", "").replace(",", "").replace(" ", ""))
    return value if math.isfinite(value) else None


def extract_number(text: str | None) -> float | None:
    """The final number of an answer, GSM8K style; None if it has none. Never raises.

    Priority: the first number after the last ``####``; else the first number after
    the last "answer is" / "answer:"; else the last number in the text. ``$``,
    thousands commas and a trailing ``.`` or ``%`` are ignored: "$1,234.50" -> 1234.5,
    "42.0" -> 42.0, "The answer is 42." -> 42.0.
    """
    try:
        if not text:
            return None
        text = str(text)
        if "####" in text:
            found = _NUMBER.search(text.rsplit("####", 1)[1])
            return _to_float(found.group()) if found else None
        marks = list(_ANSWER_IS.finditer(text))
        if marks:
            found = _NUMBER.search(text, marks[-1].end())
            if found:
                return _to_float(found.group())
        numbers = _NUMBER.findall(text)
        return _to_float(numbers[-1]) if numbers else None
    except (ValueError, OverflowError, TypeError):
        return None


def normalize_text(text: str) -> str:
    """SQuAD-style normalization: lowercase, no punctuation, no articles, single spaces."""
    text = str(text).lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def is_numeric_reference(reference: str) -> bool:
    """A reference is numeric if it has a ``####`` answer or is a lone number ("$1,234.50", "42%")."""
    return ("####" in reference and extract_number(reference) is not None) or (
        bool(_PLAIN_NUMBER.fullmatch(reference.strip())) and extract_number(reference) is not None
    )


def reference_match(answer: str, reference: str) -> bool:
    """Numeric references: the answer's final number equals the reference's (rel. tol 1e-6).
    Text references: the normalized answer equals the normalized reference, or contains it
    as a whole-word phrase ("Paris" matches "It is Paris."; an empty reference only matches
    an empty answer)."""
    if is_numeric_reference(reference):
        want, got = extract_number(reference), extract_number(answer)
        return got is not None and math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9)
    ref, ans = normalize_text(reference), normalize_text(answer)
    return ref == ans or (bool(ref) and f" {ref} " in f" {ans} ")


class ReferenceJudge(_ExactJudge):
    """1.0 when the answer matches ``item.output`` (``reference_match``), else 0.0; None if no output."""

    needs_reference = True  # a task without outputs gives it nothing to judge (swarm/config/preflight.py)

    def check(self, item: Item, answer: str) -> float | None:
        return None if item.output is None else float(reference_match(answer, item.output))

    def confirm(self, items: Sequence[Item]) -> list[bool]:
        """Nothing: the item's own answer is the only reference, so it cannot be checked against another."""
        return [False] * len(items)
