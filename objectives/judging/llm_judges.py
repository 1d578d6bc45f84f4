"""The LLM judges: a model rates a taker's answer 1-10, scaled into [0, 1] (objectives/judging/judges.py has the rest).

- ``hf_llm``  a local causal LM (a ``generate`` callable is passed in);
- ``openai``  an OpenAI-compatible chat-completions endpoint, concurrently, with retries and
              exponential backoff; the key is read from the environment and never shown.

Two modes (``reference``): ``with`` shows the item's own reference answer in the prompt, so
the rating measures agreement with the generator's answer (only as good as that answer);
``without`` rates the answer alone, as the paper's judge does, so it measures the judge's
own view of correctness and needs no reference. A reply without a rating is a missing
score (None), never a default.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

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


def _prompt(template: str, item: Item, answer: str) -> str:
    reference = item.output if item.output is not None else "(none)"
    return template.format(question=item.input, answer=answer or "", reference=reference)


class HFLLMJudge:
    """A local causal LM rates each answer 1-10; ``generate(prompts) -> replies`` is passed in."""

    def __init__(self, generate: Callable[[list[str]], list[str]], template: str | None = None, reference: str = "with") -> None:
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


class _Secret:
    """Holds the API key; its repr never shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "_Secret('***')"

    __str__ = __repr__


class _Retry(Exception):
    """A retryable failure; the message holds no secret."""


class OpenAIJudge:
    """An OpenAI-compatible ``/chat/completions`` endpoint rates each answer 1-10.

    Requests run concurrently (``concurrency`` threads). HTTP 5xx, 429, timeouts,
    connection errors and malformed bodies are retried ``max_retries`` times, waiting
    ``min(backoff * 2**attempt, backoff_max)`` seconds (a numeric Retry-After on 429 is
    honoured, same cap). Other 4xx are not retried. A request that still fails, or a
    reply without a rating in 1..10 (not retried), gives None and counts in ``failures``.
    The key is read from the environment variable named ``api_key_env`` here, kept
    out of every repr, log line and error message.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        template: str | None = None,
        reference: str = "with",
        concurrency: int = 8,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff: float = 1.0,
        backoff_max: float = 30.0,
        max_tokens: int = 16,
        temperature: float = 0.0,
    ) -> None:
        import httpx

        key = os.environ.get(api_key_env, "")
        if not key:
            raise ValueError(f"judge.api_key_env: environment variable {api_key_env} is not set or empty")
        if concurrency < 1 or max_retries < 0 or timeout <= 0 or backoff < 0:
            raise ValueError("judge: need concurrency >= 1, max_retries >= 0, timeout > 0, backoff >= 0")
        self._key = _Secret(key)
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key_env = model, api_key_env
        self.template = _check_template(template, reference)
        self.concurrency, self.timeout = concurrency, timeout
        self.max_retries, self.backoff, self.backoff_max = max_retries, backoff, backoff_max
        self.max_tokens, self.temperature = max_tokens, temperature
        self.failures = 0
        self.retries = 0
        self._lock = threading.Lock()
        self._client = httpx.Client(
            timeout=timeout, limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        )
        self._httpx = httpx

    def __repr__(self) -> str:
        return f"OpenAIJudge(url={self.url!r}, model={self.model!r}, api_key_env={self.api_key_env!r})"

    __str__ = __repr__

    def close(self) -> None:
        self._client.close()

    def _wait(self, attempt: int, retry_after: str | None = None) -> None:
        delay = min(self.backoff * 2**attempt, self.backoff_max)
        try:
            if retry_after is not None:
                delay = min(max(float(retry_after), 0.0), self.backoff_max)
        except ValueError:
            pass
        time.sleep(delay)

    def _post(self, prompt: str) -> str:
        """One request; returns the reply text, raises _Retry (retryable) or RuntimeError (final)."""
        httpx = self._httpx
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        headers = {"Authorization": f"Bearer {self._key.get()}"}
        try:
            resp = self._client.post(self.url, json=body, headers=headers)
        except httpx.TimeoutException:
            raise _Retry("timeout") from None
        except httpx.TransportError as e:
            raise _Retry(f"connection error ({type(e).__name__})") from None
        if resp.status_code == 429 or resp.status_code >= 500:
            raise _Retry(f"HTTP {resp.status_code}", resp.headers.get("retry-after"))
        if resp.status_code >= 400:
            raise RuntimeError(f"HTTP {resp.status_code} (not retried)")
        try:
            content = resp.json()["choices"][0]["message"]["content"]
            if not isinstance(content, str):
                raise TypeError
        except (ValueError, KeyError, IndexError, TypeError):
            raise _Retry("malformed response body") from None
        return content

    def _ask_one(self, prompt: str) -> str | None:
        for attempt in range(self.max_retries + 1):
            try:
                return self._post(prompt)
            except _Retry as e:
                reason, retry_after = e.args[0], (e.args[1] if len(e.args) > 1 else None)
                if attempt == self.max_retries:
                    log.warning("openai endpoint: %s after %d attempts; reply missing", reason, attempt + 1)
                    return None
                with self._lock:
                    self.retries += 1
                self._wait(attempt, retry_after)
            except RuntimeError as e:
                log.warning("openai endpoint: %s; reply missing", e)
                return None
        return None

    def ask(self, prompts: Sequence[str]) -> list[str | None]:
        """The endpoint's reply to each prompt, concurrently; None where the request failed for good."""
        if not prompts:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts))) as pool:
            return list(pool.map(self._ask_one, prompts))

    def score(self, items: Sequence[Item], answers: Sequence[str]) -> list[float | None]:
        check_lengths(items, answers)
        replies = self.ask([_prompt(self.template, it, a) for it, a in zip(items, answers)])
        out = [parse_rating(r) for r in replies]
        for reply, rating in zip(replies, out):
            if reply is not None and rating is None:
                log.warning("openai judge: no rating 1-10 in reply %r; score missing", reply[:80])
        with self._lock:
            self.failures += sum(s is None for s in out)
        return out
