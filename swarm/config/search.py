"""The schema of the search itself: the PSO (the one list of its settings), the swarm's starting
points, and the fresh selection of the exported generator.

See swarm/config/schema.py for how the schema works.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from omegaconf import MISSING

from swarm.config import rules
from swarm.runtime.errors import ConfigError

MAX_STEPS = 999_999  # the step seeds above it are reserved (swarm.search.evaluate.RESERVED_STEPS: export, selection)
MAX_STEP_LENGTH = 10.0  # the reference uses 0.5-1; far beyond, positions overflow to inf and the models write NaN


@dataclass
class PSOConf:
    """The one list of the PSO's settings: ``swarm.search.pso.PSO`` takes every field but ``RUN_ONLY`` as a
    keyword argument (``swarm.config.settings``), and these rules are the only check of them.

    ``RUN_ONLY``: the swarm's starting points (swarm/search/population.py), read by the methods.
    """

    RUN_ONLY: ClassVar[tuple[str, ...]] = ("n_particles", "include_base")
    inertia: float = MISSING
    cognitive: float = MISSING
    social: float = MISSING
    repel: float = MISSING
    step_length: float = MISSING
    decay: float = MISSING
    floor: float = MISSING
    patience: int = MISSING
    max_steps: int = MISSING
    restart_patience: int = MISSING  # <= 0: restarts off
    restart_cooldown: int = MISSING
    fused: Any = MISSING  # auto | true | false
    n_particles: Optional[int] = None  # null: the generator experts alone (and the base with include_base)
    include_base: bool = False  # the base model (a zero adapter) is one of the particles

    def __post_init__(self) -> None:
        rules.in_range("pso.inertia", self.inertia, 0.0, 1.0)
        for name in ("cognitive", "social", "repel"):
            rules.finite_at_least_zero(f"pso.{name}", getattr(self, name))
        if self.inertia + self.cognitive + self.social + self.repel <= 0.0:
            raise ConfigError("pso.inertia, pso.cognitive, pso.social, pso.repel: all are 0; at least one must be > 0")
        rules.in_range("pso.step_length", self.step_length, 0.0, MAX_STEP_LENGTH, low_open=True)
        rules.in_range("pso.decay", self.decay, 0.0, 1.0, low_open=True)
        if not 0.0 <= self.floor <= self.step_length:
            raise ConfigError(f"pso.floor: must be in [0, pso.step_length={rules.shown(self.step_length)}], "
                              f"got {rules.shown(self.floor)}")
        rules.at_least("pso.patience", self.patience, 1)
        rules.in_range("pso.max_steps", self.max_steps, 1, MAX_STEPS)
        rules.at_least("pso.restart_cooldown", self.restart_cooldown, 0)
        rules.one_of("pso.fused", self.fused, ("auto", True, False), "auto, true or false")
        rules.optional_at_least("pso.n_particles", self.n_particles, 2)


@dataclass
class SelectConf:
    """The fresh selection of the exported generator (swarm/search/selection.py), for methods that search."""

    candidates: int = MISSING  # the search's best distinct points re-scored
    n_items: int = MISSING  # fresh items each candidate writes (rounded up to whole prompts)

    def __post_init__(self) -> None:
        rules.at_least("select.candidates", self.candidates, 1)
        rules.at_least("select.n_items", self.n_items, 1)
