"""What a run's endpoints cost: requests, cache hits, failures, retries and tokens per model, and their dollars.

Every endpoint of a run writes into one `Usage` ledger; the search takes a snapshot around each step
(`since`), processes' ledgers are summed (`merge`), and the run reports them in metrics.jsonl
(`usage_metrics`) and summary.json (`usage_report`), priced by ``endpoints.prices``.
"""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence


@dataclass
class Counts:
    """One model's traffic: replies asked for and how they came."""

    requests: int = 0  # sent and answered (billed)
    cached: int = 0  # answered from the disk cache (free)
    failed: int = 0  # no reply after every retry (a missing score)
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def minus(self, other: "Counts") -> "Counts":
        return Counts(**{k: v - getattr(other, k) for k, v in asdict(self).items()})


class Usage:
    """The ledger every endpoint of a run writes into (thread-safe), per model."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, Counts] = {}

    def register(self, model: str) -> None:
        with self._lock:
            self._models.setdefault(model, Counts())

    def add(self, model: str, **counts: int) -> None:
        with self._lock:
            row = self._models.setdefault(model, Counts())
            for key, value in counts.items():
                setattr(row, key, getattr(row, key) + value)

    def snapshot(self) -> dict[str, Counts]:
        with self._lock:
            return {m: Counts(**asdict(c)) for m, c in self._models.items()}


def since(now: Mapping[str, Counts], before: Mapping[str, Counts]) -> dict[str, Counts]:
    """Per-model traffic between two snapshots."""
    return {m: c.minus(before.get(m, Counts())) for m, c in now.items()}


def merge(parts: Sequence[Mapping[str, Counts]]) -> dict[str, Counts]:
    """Per-model sums of several ledgers' traffic (one per process, or one per step)."""
    out: dict[str, Counts] = {}
    for part in parts:
        for model, c in part.items():
            row = out.setdefault(model, Counts())
            for key, value in asdict(c).items():
                setattr(row, key, getattr(row, key) + value)
    return out


def dollars(per_model: Mapping[str, Counts], prices: Mapping[str, Mapping[str, float]]) -> float:
    """What the billed tokens cost: ``prices[model] = {prompt: $, completion: $}`` per million tokens."""
    return sum((c.prompt_tokens * prices[m].get("prompt", 0.0) + c.completion_tokens * prices[m].get("completion", 0.0)) / 1e6
               for m, c in per_model.items() if m in prices)


def usage_report(per_model: Mapping[str, Counts], prices: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """Totals, the dollars of the priced models, and each model's counts (summary.json["usage"])."""
    total = merge([per_model]).values()
    report: dict[str, Any] = {key: sum(getattr(c, key) for c in total) for key in asdict(Counts())}
    if prices:
        report["dollars"] = round(dollars(per_model, prices), 6)
        report["unpriced"] = sorted(m for m in per_model if m not in prices)
    report["models"] = {m: asdict(c) for m, c in per_model.items()}
    return report


def usage_metrics(per_model: Mapping[str, Counts], prices: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """A step's traffic as metrics.jsonl keys: ``usage/prompt_tokens``, ..., ``usage/dollars`` with prices."""
    report = usage_report(per_model, prices)
    return {f"usage/{k}": v for k, v in report.items() if isinstance(v, (int, float))}
