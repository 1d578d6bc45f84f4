"""The LLM judges: a model rates a taker's answer 1-10, scaled into [0, 1] (objectives/judging/judges.py has the rest).

- ``hf_llm``  a local causal LM (a ``generate`` callable is passed in);
- ``openai``  an OpenAI-compatible chat-completions endpoint through the run's endpoint client
              (objectives/endpoints.py: concurrency, retries, cache, usage); the key is never shown.

Two modes (``reference``): ``with`` shows the item's own reference answer in the prompt, so
the rating measures agreement with the generator's answer (only as good as that answer);
``without`` rates the answer alone, as the paper's judge does, so it measures the judge's
own view of correctness and needs no reference. A reply without a rating is a missing
score (None), never a default.
"""
from __future__ import annotations

import logging
import re
from typing import Annotated, Callable, Literal, Sequence

from annotated_types import Ge

from objectives.endpoints import ApiKeyEnv, Backoff, Concurrency, Endpoint, Retries, Timeout, Usage, key_set
from objectives.judging.judges import check_lengths
from objectives.tasks.item import Item

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE = (
    "Rate how correct and helpful the answer is, on a scale from 1 (wrong) to 10 (fully correct).\n"
    "Question: {question}\n"
    "Reference answer: {reference}\n"
    "Answer: {answer}\n"
    "Reply with the rating only, an integer from 1 to 10.\n"
    "Rating:"
)
NO_REFERENCE_TEMPLATE = DEFAULT_TEMPLATE.replace("Reference answer: {reference}\n", "")
Reference = Literal["with", "without"]  # show the item's own answer to the judge, or rate the answer alone
REFERENCE_MODES = ("with", "without")


_RATING = re.compile(r"(?<![\d.])(\d+)(?!\d|\.\d)")


def parse_rating(text: str | None) -> float | None:
    """The first integer in 1..10 of a judge's reply, scaled (r - 1) / 9 into [0, 1]; else None."""
    for match in _RATING.finditer(text or ""):
        r = int(match.group(1))
        if 1 <= r <= 10:
            return (r - 1) / 9
    return None


def _check_template(template: str | None, reference: str = "with") -> str:
    """The judge's prompt template: the mode's default when None; ``without`` must not show a reference."""
    if reference not in REFERENCE_MODES:
        raise ValueError(f"judge.reference: expected one of {REFERENCE_MODES}, got {reference!r}")
    if template is None:
        return DEFAULT_TEMPLATE if reference == "with" else NO_REFERENCE_TEMPLATE
    if reference == "without" and "{reference}" in template:
        raise ValueError("judge.template: has {reference} but judge.reference=without (the answer is rated alone)")
    try:
        template.format(question="q", answer="a", reference="r")
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(f"judge.template: use only {{question}}, {{answer}}, {{reference}} ({e!r})") from None
    return template


def confirm_by_rating(judge: HFLLMJudge | OpenAIJudge, items: Sequence[Item]) -> list[bool]:
    """An item's own answer rated as a taker's, with no reference shown: only a full score (10) confirms it."""
    scores = judge.score([Item(it.input, None, True) for it in items], [it.output or "" for it in items]) if items else []
    return [s is not None and s >= 1.0 for s in scores]


def _prompt(template: str, item: Item, answer: str) -> str:
    reference = item.output if item.output is not None else "(none)"
    return template.format(question=item.input, answer=answer or "", reference=reference)


class HFLLMJudge:
    """A local causal LM rates each answer 1-10; ``generate(prompts) -> replies`` is passed in (the run
    loads ``judge.model`` for it)."""

    def __init__(self, generate: Callable[[list[str]], list[str]], *, template: str | None = None,
                 reference: Reference = "with") -> None:
        self.generate = generate
        self.template = _check_template(template, reference)
        self.failures = 0

    def score(self, items: Sequence[Item], answers: Sequence[str]) -> list[float | None]:
        check_lengths(items, answers)
        if not items:
            return []
        replies = self.generate([_prompt(self.template, it, a) for it, a in zip(items, answers)])
        if len(replies) != len(items):
            raise ValueError(f"hf_llm judge: generate returned {len(replies)} replies for {len(items)} prompts")
        out = [parse_rating(r) for r in replies]
        self.failures += sum(s is None for s in out)
        return out

    confirm = confirm_by_rating


class OpenAIJudge:
    """An OpenAI-compatible ``/chat/completions`` endpoint rates each answer 1-10.

    The requests go through the run's one endpoint client (objectives/endpoints.py): concurrency,
    retries with backoff on HTTP 5xx, 429, timeouts, connection errors and malformed bodies, the
    disk cache of replies and token usage. A request that still fails, or a reply without a rating
    in 1..10 (not retried), gives None and counts in ``failures``. The key is read from the
    environment variable named ``api_key_env`` here, kept out of every repr, log line and error.
    """

    def __init__(
        self,
        cache_dir: str | None = None,
        usage: Usage | None = None,
        *,
        base_url: str,
        model: str,
        api_key_env: ApiKeyEnv = "OPENAI_API_KEY",
        template: str | None = None,
        reference: Reference = "with",
        concurrency: Concurrency = 8,
        timeout: Timeout = 30.0,
        max_retries: Retries = 3,
        backoff: Backoff = 1.0,
        backoff_max: Backoff = 30.0,
        max_tokens: Annotated[int, Ge(1)] = 16,
        temperature: Annotated[float, Ge(0)] = 0.0,
    ) -> None:
        key_set("judge.api_key_env", api_key_env)
        self.template = _check_template(template, reference)
        self.endpoint = Endpoint(base_url, model, api_key_env, api="chat", concurrency=concurrency, timeout=timeout,
                                 max_retries=max_retries, backoff=backoff, backoff_max=backoff_max,
                                 cache_dir=cache_dir, usage=usage)
        self.max_tokens, self.temperature = max_tokens, temperature
        self.failures = 0

    def __repr__(self) -> str:
        return f"OpenAIJudge({self.endpoint!r})"

    __str__ = __repr__

    @property
    def retries(self) -> int:
        return self.endpoint.usage.snapshot()[self.endpoint.model].retries

    def close(self) -> None:
        self.endpoint.close()

    def ask(self, prompts: Sequence[str]) -> list[str | None]:
        """The endpoint's reply to each prompt; None where the request failed for good."""
        return self.endpoint.ask(prompts, max_tokens=self.max_tokens, temperature=self.temperature)

    def score(self, items: Sequence[Item], answers: Sequence[str]) -> list[float | None]:
        check_lengths(items, answers)
        replies = self.ask([_prompt(self.template, it, a) for it, a in zip(items, answers)])
        out = [parse_rating(r) for r in replies]
        for reply, rating in zip(replies, out):
            if reply is not None and rating is None:
                log.warning("openai judge: no rating 1-10 in reply %r; score missing", reply[:80])
        self.failures += sum(s is None for s in out)
        return out

    confirm = confirm_by_rating
