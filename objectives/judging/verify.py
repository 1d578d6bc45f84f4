"""Answer verification: a generated item counts only when its reference answer is confirmed.

The task's parser says an item *looks* like one (``valid/format``); it cannot say
whether the answer the generator wrote next to its question is right. A swarm
that is rewarded for items every taker gets "wrong" learns to invent answers,
so a verifier runs between parsing and scoring (``Writer.write``) and an item is
valid only when its format parses *and* its answer is confirmed (``valid/answer``):

- ``exact``   the arith task recomputes every answer (``objectives.tasks.arith.solve``);
- ``openai``  an OpenAI-compatible endpoint (objectives/endpoints.py) answers the question itself and says
              whether the item's answer agrees with its own (numeric references must
              also match its own answer's final number);
- ``model``   ``samples`` sampled answers of a local verifier model; confirmed when at
              least ``agree`` of them match the reference (numbers exactly; text by
              ``reference_match`` or token F1 >= ``min_f1``);
- ``none``    nothing is checked; the run log says so once (see `unchecked_note`).

``auto`` (the default) is ``exact`` on tasks with exact answers and ``none`` elsewhere.

Each is the ``_target_`` of a ``verifier`` option (conf/verifier/); its settings are its
keyword-only parameters (swarm/config/registry.py), and the run passes what a verifier
takes by name: ``exact_answers`` (the task's), ``generate`` (a local model's, loaded from
``verifier.model``), ``cache_dir`` and ``usage`` (the run's endpoint cache and ledger).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from typing import Annotated, Callable, Protocol, Sequence

from annotated_types import Ge, Interval

from objectives.endpoints import ApiKeyEnv, Backoff, Concurrency, Endpoint, Retries, Timeout, Usage, key_set
from objectives.judging.judges import is_numeric_reference, normalize_text, reference_match
from objectives.tasks.arith import answer_is_exact
from objectives.tasks.item import Item

VERIFY_TEMPLATE = (
    "Answer the question yourself, then say whether the proposed answer agrees with yours.\n"
    "Question: {question}\n"
    "Proposed answer: {reference}\n"
    "Reply in two lines:\n"
    "Answer: <your answer>\n"
    "Agree: yes or no"
)
MODEL_TEMPLATE = "Question: {question}\nAnswer:"
_AGREE = re.compile(r"agree\s*:\s*\**\s*(yes|no)\b", re.IGNORECASE)
_OWN_ANSWER = re.compile(r"^\s*answer\s*:\s*(.*)$", re.IGNORECASE | re.MULTILINE)


class Verifier(Protocol):
    """``pure`` (optional, False when absent): the verdict is a function of the item alone (no model, no
    endpoint), so the writer may remember an item's verdict across steps (generators/writer.py)."""

    kind: str
    failures: int  # checks that got no usable reply (the item counts as unconfirmed)

    def confirm(self, items: Sequence[Item]) -> list[bool]:
        """Whether each item's reference answer is confirmed."""


def verdicts(items: Sequence[Item], verifier: Verifier) -> list[bool | None]:
    """The verifier's verdict on each format-valid item; None where nothing is checked (an invalid item, or
    ``verifier=none``). All the items are confirmed in one call."""
    out: list[bool | None] = [None] * len(items)
    if verifier.kind == "none":
        return out
    checked = [i for i, item in enumerate(items) if item.valid]
    for i, ok in zip(checked, verifier.confirm([items[i] for i in checked]) if checked else []):
        out[i] = bool(ok)
    return out


def verify(items: Sequence[Item], verifier: Verifier) -> list[Item]:
    """``items`` with ``valid`` = format valid and confirmed; ``verified`` holds each checked verdict."""
    return [item if ok is None else replace(item, valid=ok, verified=ok) for item, ok in zip(items, verdicts(items, verifier))]


def unchecked_note(task_name: str) -> str:
    return (f"verifier=none: the answers of generated {task_name} items are not checked, so an invented "
            "answer counts as valid and makes items look hard; choose verifier=openai or verifier=model")


class NoVerifier:
    kind, failures, pure = "none", 0, True

    def confirm(self, items: Sequence[Item]) -> list[bool]:
        return [True] * len(items)


class ExactVerifier:
    """Recompute the arith answer of every item."""

    kind, failures, pure = "exact", 0, True

    def __init__(self, exact_answers: bool = True) -> None:
        if not exact_answers:
            raise ValueError("verifier=exact: this task has no exact answers; use verifier=openai, model or none")

    def confirm(self, items: Sequence[Item]) -> list[bool]:
        return [answer_is_exact(item) for item in items]


def _agrees(reply: str, reference: str, min_f1: float) -> bool:
    if is_numeric_reference(reference):
        return reference_match(reply, reference)
    return reference_match(reply, reference) or token_f1(reply, reference) >= min_f1


def token_f1(answer: str, reference: str) -> float:
    """SQuAD token F1 of two normalized texts (0 when either is empty)."""
    a, r = normalize_text(answer).split(), normalize_text(reference).split()
    common = sum((Counter(a) & Counter(r)).values())
    if not common:
        return 0.0
    precision, recall = common / len(a), common / len(r)
    return 2 * precision * recall / (precision + recall)


class OpenAIVerifier:
    """An OpenAI-compatible endpoint answers each question and says whether the item's answer agrees."""

    kind = "openai"

    def __init__(self, cache_dir: str | None = None, usage: Usage | None = None, *, base_url: str, model: str,
                 api_key_env: ApiKeyEnv = "OPENAI_API_KEY", template: str = VERIFY_TEMPLATE,
                 max_tokens: Annotated[int, Ge(1)] = 256, temperature: Annotated[float, Ge(0)] = 0.0,
                 concurrency: Concurrency = 8, timeout: Timeout = 30.0, max_retries: Retries = 3, backoff: Backoff = 1.0,
                 backoff_max: Backoff = 30.0) -> None:
        try:
            template.format(question="q", reference="r")
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"verifier.template: use only {{question}} and {{reference}} ({e!r})") from None
        key_set("verifier.api_key_env", api_key_env)
        self.template = template
        self.endpoint = Endpoint(base_url, model, api_key_env, api="chat", concurrency=concurrency, timeout=timeout,
                                 max_retries=max_retries, backoff=backoff, backoff_max=backoff_max,
                                 cache_dir=cache_dir, usage=usage)
        self.max_tokens, self.temperature = max_tokens, temperature
        self.failures = 0

    def _confirmed(self, reply: str | None, reference: str) -> bool:
        found = _AGREE.findall(reply or "")
        if not found:
            self.failures += 1
            return False
        own = _OWN_ANSWER.findall(reply)
        numeric_ok = not is_numeric_reference(reference) or bool(own and reference_match(own[-1], reference))
        return found[-1].lower() == "yes" and numeric_ok

    def confirm(self, items: Sequence[Item]) -> list[bool]:
        replies = self.endpoint.ask([self.template.format(question=it.input, reference=it.output or "") for it in items],
                                    max_tokens=self.max_tokens, temperature=self.temperature)
        return [self._confirmed(reply, it.output or "") for reply, it in zip(replies, items)]


class ModelVerifier:
    """``samples`` answers of a local model per item (``generate`` samples them); majority by default."""

    kind = "model"

    def __init__(self, generate: Callable[[list[str]], list[str]], *, samples: Annotated[int, Ge(1)] = 3,
                 agree: Annotated[int, Ge(1)] | None = None, template: str = MODEL_TEMPLATE,
                 min_f1: Annotated[float, Interval(ge=0, le=1)] = 0.5) -> None:
        agree = samples // 2 + 1 if agree is None else agree
        if samples < 1 or not 1 <= agree <= samples:
            raise ValueError(f"verifier: need samples >= 1 and 1 <= agree <= samples, got {samples}, {agree}")
        self.generate, self.samples, self.agree, self.min_f1 = generate, samples, agree, min_f1
        self.template = template
        self.failures = 0

    def confirm(self, items: Sequence[Item]) -> list[bool]:
        prompts = [self.template.format(question=it.input) for it in items for _ in range(self.samples)]
        replies = self.generate(prompts) if prompts else []
        out = []
        for n, item in enumerate(items):
            mine = replies[n * self.samples:(n + 1) * self.samples]
            out.append(sum(_agrees(r, item.output or "", self.min_f1) for r in mine) >= self.agree)
        return out


def auto_verifier(exact_answers: bool) -> ExactVerifier | NoVerifier:
    """verifier=auto: recompute the answers where the task has exact ones, else check nothing (the run says so)."""
    return ExactVerifier() if exact_answers else NoVerifier()
