"""The checks the schema's ``__post_init__`` methods share: one line, naming the setting.

    in_range("pso.inertia", 1.5, 0, 1)   # ConfigError("pso.inertia: must be in [0, 1], got 1.5")

``check_pso`` holds the PSO's rules: ``swarm.search.pso.PSO`` and the schema both call it.
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

MAX_STEP_LENGTH = 10.0  # the reference uses 0.5-1; far beyond, positions overflow to inf and the models write NaN


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


def check_pso(*, inertia: float, cognitive: float, social: float, repel: float, step_length: float, decay: float,
              floor: float, patience: int, max_steps: int, restart_patience: int, restart_cooldown: int,
              fused: Any) -> None:
    """The PSO settings' rules (any ``restart_patience``: <= 0 turns restarts off)."""
    in_range("pso.inertia", inertia, 0.0, 1.0)
    for name, w in (("cognitive", cognitive), ("social", social), ("repel", repel)):
        finite_at_least_zero(f"pso.{name}", w)
    if inertia + cognitive + social + repel <= 0.0:
        raise ConfigError("pso.inertia, pso.cognitive, pso.social, pso.repel: all are 0; at least one must be > 0")
    in_range("pso.step_length", step_length, 0.0, MAX_STEP_LENGTH, low_open=True)
    in_range("pso.decay", decay, 0.0, 1.0, low_open=True)
    if not 0.0 <= floor <= step_length:
        raise ConfigError(f"pso.floor: must be in [0, pso.step_length={shown(step_length)}], got {shown(floor)}")
    at_least("pso.patience", patience, 1)
    at_least("pso.max_steps", max_steps, 1)
    at_least("pso.restart_cooldown", restart_cooldown, 0)
    one_of("pso.fused", fused, ("auto", True, False), "auto, true or false")
