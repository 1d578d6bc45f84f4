"""Paired comparisons over seeds: Data Swarms − a baseline, its mean and a bootstrap 95 % CI.

Both methods run with the same seeds (same task, zoo and prompts per seed), so
the per-seed difference removes the seed-to-seed spread they share. The CI is
a seeded percentile bootstrap of the mean difference, so a table is
reproducible; a win counts only where the CI excludes 0 (docs/claim.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

__all__ = ["Paired", "paired_difference", "bootstrap_ci"]


@dataclass(frozen=True)
class Paired:
    """Mean per-seed difference (a − b), its 95 % CI and the seeds it was computed on."""

    mean: float
    low: float
    high: float
    seeds: tuple[int, ...]

    @property
    def significant(self) -> bool:
        """The CI excludes 0: a win (mean > 0) or a loss (mean < 0) that the seeds support."""
        return self.low > 0 or self.high < 0

    def format(self, digits: int = 3) -> str:
        return f"{self.mean:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"


def bootstrap_ci(values: np.ndarray | list[float], level: float = 0.95, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (resampled with replacement, seeded).

    The quantiles are taken with the "lower"/"higher" rules, so the bounds are
    always means of actual resamples (no interpolation between them)."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"bootstrap_ci needs a non-empty 1-d array, got shape {x.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail, method="lower")), float(np.quantile(means, 1 - tail, method="higher"))


def paired_difference(a: Mapping[int, float], b: Mapping[int, float], level: float = 0.95, resamples: int = 10_000, seed: int = 0) -> Paired:
    """Per-seed ``a[s] − b[s]`` over the seeds both have; mean and bootstrap CI.

    Seeds present in only one of them are left out (a run that failed), never imputed."""
    seeds = tuple(sorted(set(a) & set(b)))
    if not seeds:
        raise ValueError("paired_difference: the two methods share no seed")
    diffs = np.array([a[s] - b[s] for s in seeds], dtype=np.float64)
    low, high = bootstrap_ci(diffs, level, resamples, seed)
    return Paired(float(diffs.mean()), low, high, seeds)
