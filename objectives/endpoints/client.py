"""One HTTP client for every caller of an OpenAI-compatible endpoint: served takers, judge=openai, verifier=openai.

It is its own room at the front of the data flow (tools/check_imports.py ROOMS) because the
judges and verifiers (objectives.judging) and the served takers (generators.takers) all call
endpoints, and a room may import only the rooms before it.

- retries with exponential backoff (tenacity): timeouts, connection errors, HTTP 429 and 5xx,
  malformed bodies; a numeric Retry-After is honoured (same cap); other 4xx are final;
- at most ``concurrency`` requests in flight (one httpx.AsyncClient under a semaphore);
- a disk cache of replies (diskcache), keyed by the API, model, prompt and sampling settings,
  so a resumed or repeated run asks nothing twice (a sampled reply is kept too: asked again,
  it is the same reply); only replies are cached, never failures;
- token usage per model (the server's ``usage``) in a `Usage` ledger the run's endpoints share;
- the key is read from the environment variable named by ``api_key_env`` and never shown;
  unset, no Authorization header is sent (a loopback server needs none).

A request that still fails is a None reply: the caller counts it as a missing score.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Annotated, Any, Mapping, Sequence

import httpx
from annotated_types import Ge, Gt
from pydantic import AfterValidator
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from objectives.endpoints.usage import Usage

log = logging.getLogger(__name__)

APIS = ("chat", "completions")


def _key_in_environment(name: str) -> str:
    """An endpoint that needs a key: the variable it names is set (its value is never read here)."""
    if not os.environ.get(name, ""):
        raise ValueError(f"environment variable {name} is not set or empty")
    return name


def key_set(setting: str, name: str) -> None:
    """``_key_in_environment`` for a caller built in Python: the error names ``setting``."""
    try:
        _key_in_environment(name)
    except ValueError as err:
        raise ValueError(f"{setting}: {err}") from None


# The settings of an endpoint caller (judge=openai, verifier=openai), as its signature declares them:
ApiKeyEnv = Annotated[str, AfterValidator(_key_in_environment)]
Concurrency = Annotated[int, Ge(1)]
Timeout = Annotated[float, Gt(0)]
Retries = Annotated[int, Ge(0)]
Backoff = Annotated[float, Ge(0)]


class Secret:
    """Holds an API key; its repr never shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


class _Retry(Exception):
    """A retryable failure; the message holds no secret."""

    def __init__(self, reason: str, retry_after: str | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _Final(Exception):
    """A failure not worth retrying (4xx other than 429)."""


class _Wait:
    """tenacity's exponential backoff, or the server's numeric Retry-After, capped at ``cap`` seconds."""

    def __init__(self, backoff: float, cap: float) -> None:
        self.exponential, self.cap = wait_exponential(multiplier=backoff, min=0, max=cap), cap

    def __call__(self, state) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        try:
            return min(max(float(error.retry_after), 0.0), self.cap)
        except (AttributeError, TypeError, ValueError):
            return self.exponential(state)


class Endpoint:
    """One model behind an OpenAI-compatible ``/chat/completions`` or ``/completions`` URL."""

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", api: str = "chat",
                 concurrency: int = 8, timeout: float = 30.0, max_retries: int = 3, backoff: float = 1.0,
                 backoff_max: float = 30.0, cache_dir: str | Path | None = None, usage: Usage | None = None) -> None:
        if api not in APIS:
            raise ValueError(f"endpoint api: expected one of {APIS}, got {api!r}")
        if concurrency < 1 or max_retries < 0 or timeout <= 0 or backoff < 0:
            raise ValueError("endpoint: need concurrency >= 1, max_retries >= 0, timeout > 0, backoff >= 0")
        key = os.environ.get(api_key_env, "")
        self._key = Secret(key) if key else None
        self.url = base_url.rstrip("/") + ("/chat/completions" if api == "chat" else "/completions")
        self.model, self.api, self.api_key_env = model, api, api_key_env
        self.concurrency, self.timeout = concurrency, timeout
        self.max_retries, self.backoff, self.backoff_max = max_retries, backoff, backoff_max
        self.usage = usage if usage is not None else Usage()
        self.usage.register(model)
        self._cache = None
        if cache_dir is not None:
            import diskcache

            self._cache = diskcache.Cache(str(cache_dir))

    def __repr__(self) -> str:
        return f"Endpoint(url={self.url!r}, model={self.model!r}, api_key_env={self.api_key_env!r})"

    __str__ = __repr__

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()

    def _body(self, prompt: str, max_tokens: int, temperature: float, stop: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens, "temperature": temperature}
        if self.api == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        if stop is not None:
            body["stop"] = [stop]
        return body

    def _cache_key(self, body: Mapping[str, Any]) -> str:
        """The API and the whole request body (model, prompt, sampling settings); never the URL or the key."""
        return hashlib.sha256(json.dumps([self.api, body], sort_keys=True).encode()).hexdigest()

    def ask(self, prompts: Sequence[str], *, max_tokens: int, temperature: float = 0.0,
            stop: str | None = None) -> list[str | None]:
        """The reply to each prompt; None where the request failed for good. Cached replies are not asked again,
        nor is a prompt asked twice in one call."""
        bodies = {}
        keys = []
        for prompt in prompts:
            body = self._body(prompt, max_tokens, temperature, stop)
            keys.append(self._cache_key(body))
            bodies.setdefault(keys[-1], body)
        replies: dict[str, str | None] = {}
        if self._cache is not None:
            replies = {k: hit for k in bodies if (hit := self._cache.get(k)) is not None}
            self.usage.add(self.model, cached=len(replies))
        todo = [k for k in bodies if k not in replies]
        if todo:
            for k, reply in zip(todo, asyncio.run(self._fetch_all([bodies[k] for k in todo]))):
                replies[k] = reply
                if reply is not None and self._cache is not None:
                    self._cache.set(k, reply)
        return [replies[k] for k in keys]

    async def _fetch_all(self, bodies: list[dict[str, Any]]) -> list[str | None]:
        gate = asyncio.Semaphore(self.concurrency)
        headers = {"Authorization": f"Bearer {self._key.get()}"} if self._key is not None else {}
        async with httpx.AsyncClient(timeout=self.timeout, headers=headers) as client:
            async def one(body: dict[str, Any]) -> str | None:
                async with gate:
                    return await self._fetch(client, body)

            return list(await asyncio.gather(*(one(b) for b in bodies)))

    async def _fetch(self, client: httpx.AsyncClient, body: dict[str, Any]) -> str | None:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1), wait=_Wait(self.backoff, self.backoff_max),
            retry=retry_if_exception_type(_Retry), reraise=True,
            before_sleep=lambda state: self.usage.add(self.model, retries=1),
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._post(client, body)
        except _Retry as err:
            log.warning("endpoint %s: %s after %d attempts; reply missing", self.model, err, self.max_retries + 1)
        except _Final as err:
            log.warning("endpoint %s: %s; reply missing", self.model, err)
        self.usage.add(self.model, failed=1)
        return None

    async def _post(self, client: httpx.AsyncClient, body: dict[str, Any]) -> str:
        """One request: the reply's text, or _Retry / _Final (their messages hold no secret)."""
        try:
            resp = await client.post(self.url, json=body)
        except httpx.TimeoutException:
            raise _Retry("timeout") from None
        except httpx.TransportError as e:
            raise _Retry(f"connection error ({type(e).__name__})") from None
        if resp.status_code == 429 or resp.status_code >= 500:
            raise _Retry(f"HTTP {resp.status_code}", resp.headers.get("retry-after"))
        if resp.status_code >= 400:
            raise _Final(f"HTTP {resp.status_code} (not retried)")
        try:
            data = resp.json()
            choice = data["choices"][0]
            text = choice["message"]["content"] if self.api == "chat" else choice["text"]
            if not isinstance(text, str):
                raise TypeError
        except (ValueError, KeyError, IndexError, TypeError):
            raise _Retry("malformed response body") from None
        used = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        self.usage.add(self.model, requests=1, prompt_tokens=int(used.get("prompt_tokens") or 0),
                       completion_tokens=int(used.get("completion_tokens") or 0))
        return text
