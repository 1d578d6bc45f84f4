"""The zoo's problem space: shared difficulty axes, the bins they make, and the training lines.

Every problem is a point on three binary axes -- ``big`` (2-digit operands
instead of 1 digit), ``mul`` (one product) and ``chain`` (3 terms instead
of 2) -- plus the carries its digits happen to need. A bin is the set of axes
a problem has: ``small`` (none), ``big``, ``mul``, ``chain``, and the hard
region where they combine (``big+mul``, ``big+chain``, ``mul+chain``,
``big+mul+chain``). Generator experts write one single-axis bin each; no
expert writes a combined bin (docs/zoo.md).
"""
from __future__ import annotations

import random
import re
from typing import Mapping

from generators.prompts import few_shot_prompt, numbered
from objectives.tasks.arith import FAMILIES, format_answer, sample_problem, solve

__all__ = [
    "AXES", "BINS", "CLUSTERS", "HARD", "GENERATOR_TEMPLATE", "TAKER_TEMPLATE", "TAKER_STOP", "N_SHOTS", "N_NEW",
    "bin_of", "sample", "qa_pair", "list_pair", "weighted_bin",
]

GENERATOR_TEMPLATE = "Write {n} new problems like these:\n{examples}"
TAKER_TEMPLATE = "Q: {input}\nA:"
TAKER_STOP = "\n"
N_SHOTS, N_NEW = 4, 5          # the list shape of the skill matrix (trained: 2..5 shots, 3..6 new)

AXES = ("big", "mul", "chain")
BINS = ("small", "big", "mul", "chain", "big+mul", "big+chain", "mul+chain", "big+mul+chain")
CLUSTERS = ("small", "big", "mul", "chain")      # one generator expert each
HARD = tuple(b for b in BINS if "+" in b)        # written by no expert

_TERM = re.compile(r"\d+|[-+*]")


def sample(bin_name: str, rng: random.Random) -> str:
    """One problem of a bin: 1-digit operands (2-digit when big), 2 terms (3 when chain), + and -, and
    with mul one product (of two 1-digit numbers; of a 1-digit and a 2-digit one when big).

    Operand lengths are fixed per bin, so the digits line up the same way in every problem of a bin
    (what lets a small LM learn carrying in minutes, docs/zoo.md)."""
    axes = set(bin_name.split("+")) - {"small"}
    if not axes <= set(AXES):
        raise ValueError(f"unknown bin {bin_name!r}; expected one of {BINS}")
    big = "big" in axes
    terms = 3 if "chain" in axes else 2
    ops = [rng.choice("+-") for _ in range(terms - 1)]
    values = [rng.randint(10, 99) if big else rng.randint(2, 9) for _ in range(terms)]
    if "mul" in axes:
        at = rng.randrange(terms - 1)
        ops[at] = "*"
        values[at] = rng.randint(2, 9)
    if ops == ["-"] and values[1] > values[0]:  # two-term differences stay >= 0, as in the task's dev data
        values.reverse()
    text = str(values[0])
    for op, v in zip(ops, values[1:]):
        text += f"{op}{v}"
    return text


def bin_of(problem: str) -> str | None:
    """The bin of a well-formed problem (by its operands and operators), else None."""
    if solve(problem) is None:
        return None
    tokens = _TERM.findall(problem)
    numbers, ops = tokens[0::2], tokens[1::2]
    axes = [a for a, on in (("big", any(len(n) >= 2 for n in numbers)), ("mul", "*" in ops), ("chain", len(numbers) > 2)) if on]
    return "+".join(axes) or "small"


def qa_pair(problem: str) -> tuple[str, str]:
    """A taker's prompt and target: the answer, least-significant digit first."""
    return TAKER_TEMPLATE.format(input=problem), f" {format_answer(solve(problem))}{TAKER_STOP}"


def _examples(rng: random.Random, k: int) -> list[str]:
    """Few-shot examples as a run shows them: the task's dev families, or points of the space."""
    if rng.random() < 0.5:
        return [sample_problem(rng.choice(FAMILIES), rng) for _ in range(k)]
    return [sample(rng.choice(BINS), rng) for _ in range(k)]


def list_pair(rng: random.Random, new_bin: str | None) -> tuple[str, str]:
    """A few-shot list prompt and its continuation: new items of ``new_bin``, or (None, the base) like the examples."""
    k, n = rng.randint(2, 5), rng.randint(3, 6)
    examples = _examples(rng, k)
    if new_bin is None:
        new = [_like(rng.choice(examples), rng) for _ in range(n)]
    else:
        new = [sample(new_bin, rng) for _ in range(n)]
    return few_shot_prompt(examples, n, GENERATOR_TEMPLATE), f" {new[0]}\n" + numbered(new[1:], start=k + 2)


def _like(example: str, rng: random.Random) -> str:
    """A new problem of the example's bin."""
    return sample(bin_of(example) or "small", rng)


def weighted_bin(weights: Mapping[str, float], rng: random.Random) -> str:
    """A bin drawn by ``weights`` (a taker's data mix)."""
    names = list(weights)
    return rng.choices(names, [weights[b] for b in names])[0]
