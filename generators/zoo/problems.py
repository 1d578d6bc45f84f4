"""The zoo's problem space: problem forms around the task's dev set, and the training lines made of them.

A form is a problem with every number replaced by as many ``d`` as it has
digits: ``47+38`` is ``dd+dd``, ``3*8+51`` is ``d*d+dd``. The embedded task's
dev families are four forms (``DEV_FORMS``); the zoo's space adds forms one
step easier (one-digit operands) and one step harder (a longer operand or one
more term) than each. The generator base learns to write problems of every
form; the takers are trained on the dev forms, and the skill matrix shows how
they do on the others (docs/zoo.md). Problems the zoo trains on are drawn
fresh, never an item of the task's dev or test set (``Fresh``); the generator
experts alone train on dev items, those of their cluster.
"""
from __future__ import annotations

import random
import re
from typing import Iterable, Mapping, Sequence

from generators.prompts import few_shot_prompt, numbered
from objectives.tasks.arith import canonical, format_answer, solve

__all__ = [
    "DEV_FORMS", "EASY_FORMS", "HARD_FORMS", "FORMS", "GENERATOR_TEMPLATE", "TAKER_TEMPLATE", "TAKER_STOP", "N_SHOTS",
    "N_NEW", "form_of", "sample", "Fresh", "qa_pair", "list_pair",
]

GENERATOR_TEMPLATE = "Write {n} new problems like these:\n{examples}"
TAKER_TEMPLATE = "Q: {input}\nA:"
TAKER_STOP = "\n"
N_SHOTS, N_NEW = 4, 5          # a run's list shape (conf/generator/zoo.yaml); training varies it: 2..5 shots, 3..6 new

EASY_FORMS = ("d+d", "d-d", "d*d")
DEV_FORMS = ("dd+dd", "dd-dd", "d*dd", "d*d+dd")                     # the arith task's add, sub, mul, mix
HARD_FORMS = ("ddd+dd", "dd-dd+dd", "dd*dd", "d*dd+dd")              # one axis beyond each dev form
FORMS = EASY_FORMS + DEV_FORMS + HARD_FORMS

_NUMBER = re.compile(r"\d+")
_OPS = re.compile(r"[-+*]")


def form_of(problem: str) -> str | None:
    """The form of a well-formed problem (``None`` if it is not one)."""
    text = canonical(problem or "")
    if solve(text) is None:
        return None
    return _NUMBER.sub(lambda m: "d" * len(m.group()), text)


def sample(form: str, rng: random.Random) -> str:
    """A problem of ``form``: a one-digit operand is 2-9, an n-digit one 10^(n-1)..10^n-1 (as the task's
    families draw them); a difference of two equally long operands is never negative."""
    operands, ops = _OPS.split(form), _OPS.findall(form)
    if not 2 <= len(operands) <= 3 or any(not t or set(t) != {"d"} for t in operands):
        raise ValueError(f"not a problem form: {form!r} (e.g. 'dd+dd', 'd*d+dd')")
    lengths = [len(t) for t in operands]
    values = [rng.randint(2, 9) if n == 1 else rng.randint(10 ** (n - 1), 10 ** n - 1) for n in lengths]
    if ops[0] == "-" and lengths[0] == lengths[1] and values[1] > values[0]:
        values[0], values[1] = values[1], values[0]
    return str(values[0]) + "".join(f"{op}{v}" for op, v in zip(ops, values[1:]))


class Fresh:
    """Draws problems of a form that are no item of the task's dev or test set (what the zoo trains on)."""

    def __init__(self, excluded: Iterable[str]) -> None:
        self.excluded = frozenset(map(canonical, excluded))

    def __call__(self, form: str, rng: random.Random) -> str:
        for _ in range(1000):
            problem = sample(form, rng)
            if problem not in self.excluded:
                return problem
        raise ValueError(f"form {form!r}: no problem outside the task's dev and test items in 1000 draws")

    def weighted(self, weights: Mapping[str, float], rng: random.Random) -> str:
        """A fresh problem of a form drawn by ``weights`` (a taker's data mix)."""
        forms = list(weights)
        return self(rng.choices(forms, [weights[f] for f in forms])[0], rng)


def qa_pair(problem: str) -> tuple[str, str]:
    """A taker's prompt and target: the answer, least-significant digit first."""
    return TAKER_TEMPLATE.format(input=problem), f" {format_answer(solve(problem))}{TAKER_STOP}"


def list_pair(examples: Sequence[str], new: Sequence[str]) -> tuple[str, str]:
    """A few-shot list prompt (a run's template) and its continuation with the ``new`` items."""
    return few_shot_prompt(examples, len(new), GENERATOR_TEMPLATE), f" {new[0]}\n" + numbered(new[1:], start=len(examples) + 2)


def base_list(fresh: Fresh, rng: random.Random) -> tuple[str, str]:
    """A list for the generator base: examples of the dev forms (as a run shows them) or of any forms, each new
    item fresh and of the form of one of the examples -- the base learns to write problems like its examples."""
    k, n = rng.randint(2, 5), rng.randint(3, 6)
    forms = DEV_FORMS if rng.random() < 0.5 else FORMS
    examples = [fresh(rng.choice(forms), rng) for _ in range(k)]
    return list_pair(examples, [fresh(form_of(rng.choice(examples)), rng) for _ in range(n)])


def expert_list(pool: Sequence[str], cluster: Sequence[str], rng: random.Random) -> tuple[str, str]:
    """A list for a generator expert: examples from the whole dev pool (as a run draws them), continued with
    items of the expert's cluster of that pool."""
    k, n = rng.randint(2, 5), rng.randint(3, 6)
    return list_pair(rng.sample(list(pool), k), rng.sample(list(cluster), min(n, len(cluster))))
