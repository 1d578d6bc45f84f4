"""The embedded ``arith`` task: arithmetic problems whose answers are exact.

Problems are single lines such as ``47+38``, ``62-19``, ``7*46`` or ``3*8+51``.
Every answer is computed here, so the verifier judge is exact and a generated
line that is not a well-formed problem is simply an invalid item.

Answers are written least-significant digit first (``85`` is written ``58``):
the measured trick that lets a 0.5 M-parameter model learn carrying in
seconds (../shared/notes/zoo-feasibility.md). ``format_answer`` and
``parse_answer`` are the only places that know this convention.
"""
from __future__ import annotations

import functools
import random
import re
from typing import Sequence

from objectives.tasks.item import Item

FAMILIES: tuple[str, ...] = ("add", "sub", "mul", "mix")
MAX_OPERAND_DIGITS = 4

_PROBLEM = re.compile(r"^\s*(\d+)\s*([-+*])\s*(\d+)\s*(?:([-+*])\s*(\d+)\s*)?$")
_ANSWER = re.compile(r"^\s*(-?)(\d+)")
_SPACE = re.compile(r"\s+")


def sample_problem(family: str, rng: random.Random) -> str:
    """Draw one problem of a family; the families differ in operation, size and steps."""
    if family == "add":
        return f"{rng.randint(10, 99)}+{rng.randint(10, 99)}"
    if family == "sub":
        a = rng.randint(20, 99)
        return f"{a}-{rng.randint(10, a)}"
    if family == "mul":
        return f"{rng.randint(2, 9)}*{rng.randint(10, 99)}"
    if family == "mix":
        return f"{rng.randint(2, 9)}*{rng.randint(2, 9)}+{rng.randint(10, 99)}"
    raise ValueError(f"unknown arith family {family!r}; expected one of {FAMILIES}")


def _apply(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


@functools.lru_cache(maxsize=1 << 16)
def solve(problem: str) -> int | None:
    """The exact answer of a well-formed problem (usual precedence), else None.

    Remembered: a step parses, verifies and judges each item's problem, some items at every step."""
    m = _PROBLEM.match(problem or "")
    if m is None:
        return None
    a, op1, b, op2, c = m.groups()
    if any(n is not None and len(n) > MAX_OPERAND_DIGITS for n in (a, b, c)):
        return None
    a, b = int(a), int(b)
    if op2 is None:
        return _apply(a, op1, b)
    c = int(c)
    if op2 == "*" and op1 != "*":
        return _apply(a, op1, b * c)
    return _apply(_apply(a, op1, b), op2, c)


def answer_is_exact(item: Item) -> bool:
    """Whether an item's own answer (written as ``str``, not in a taker's reversed form) solves its problem."""
    value = solve(item.input)
    return value is not None and item.output is not None and item.output.strip() == str(value)


def family_of(problem: str) -> str | None:
    """Which family a well-formed problem belongs to (by its operators)."""
    m = _PROBLEM.match(problem or "")
    if m is None or solve(problem) is None:
        return None
    if m.group(4) is not None:
        return "mix"
    return {"+": "add", "-": "sub", "*": "mul"}[m.group(2)]


def canonical(problem: str) -> str:
    """Whitespace-free form of a problem, used to compare and deduplicate items."""
    return _SPACE.sub("", problem)


def format_answer(value: int) -> str:
    """Write an answer least-significant digit first (sign kept in front)."""
    sign = "-" if value < 0 else ""
    return sign + str(abs(value))[::-1]


def parse_answer(text: str) -> int | None:
    """Read a taker's answer written by ``format_answer``; None if there is none."""
    m = _ANSWER.match(text or "")
    if m is None:
        return None
    value = int(m.group(2)[::-1])
    return -value if m.group(1) else value


def make_items(families: Sequence[str], n: int, rng: random.Random) -> list[Item]:
    """``n`` problems cycling through ``families``, with exact answers."""
    items = []
    for i in range(n):
        problem = sample_problem(families[i % len(families)], rng)
        items.append(Item(problem, str(solve(problem)), True))
    return items


class ArithTask:
    """The embedded, verifiable task: dev and test are drawn from all families."""

    name = "arith"
    exact_answers = True

    def __init__(self, n_dev: int = 200, n_test: int = 200, seed: int = 0) -> None:
        if n_dev < 1 or n_test < 1:
            raise ValueError(f"task.n_dev and task.n_test must be >= 1, got {n_dev}, {n_test}")
        rng = random.Random(f"arith-{seed}")
        self.dev = make_items(FAMILIES, n_dev, rng)
        self.test = make_items(FAMILIES, n_test, rng)

    def parse_item(self, text: str | None) -> Item:
        problem = canonical(text or "")
        answer = solve(problem)
        return Item(problem, None if answer is None else str(answer), answer is not None)

    def format_example(self, item: Item) -> str:
        return item.input

    def realism_corpus(self) -> list[str]:
        return [item.input for item in self.test]

    @property
    def realism_source(self) -> str:
        return f"proxy: the task's own test problems ({len(self.test)}), not real user queries"
