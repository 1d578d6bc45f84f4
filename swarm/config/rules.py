"""The checks the schema's ``__post_init__`` methods share: one line, naming the setting.

    in_range("pso.inertia", 1.5, 0, 1)   # ConfigError("pso.inertia: must be in [0, 1], got 1.5")

Types are OmegaConf's job (a typed field refuses ``pso.inertia=abc`` while the
config composes); these are the ranges, the files on disk and the environment.
Pure Python: no torch, no model.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

from swarm.runtime.errors import ConfigError


def shown(value: Any) -> str:
    """A value as the user typed it: 0 not 0.0, 1.5, nan."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def in_range(key: str, value: float, low: float, high: float, low_open: bool = False) -> None:
    if not (low < value <= high if low_open else low <= value <= high):
        raise ConfigError(f"{key}: must be in {'(' if low_open else '['}{low:g}, {high:g}], got {shown(value)}")


def at_least(key: str, value: float, low: float) -> None:
    if not value >= low:
        raise ConfigError(f"{key}: must be >= {shown(low)}, got {shown(value)}")


def finite_at_least_zero(key: str, value: float) -> None:
    if not (value >= 0 and math.isfinite(value)):
        raise ConfigError(f"{key}: must be a finite number >= 0, got {shown(value)}")


def optional_at_least(key: str, value: float | None, low: float) -> None:
    """A setting that may be null (then the run derives it, e.g. lengths from the task)."""
    if value is not None:
        at_least(key, value, low)


def positive(key: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"{key}: must be finite and > 0, got {shown(value)}")


def one_of(key: str, value: Any, choices: Sequence[Any], said: str) -> None:
    if value not in choices:
        raise ConfigError(f"{key}: must be {said}, got {value!r}")


def file(key: str, value: str, what: str = "file") -> None:
    if not Path(value).is_file():
        raise ConfigError(f"{key}: {what} not found: {value}")


def env_var(key: str, name: str) -> None:
    if not os.environ.get(name):
        raise ConfigError(f"{key}: environment variable {name} is not set or empty")
