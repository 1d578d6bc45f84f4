"""The objective components by name: the one list the config schema, the run, the report
and the benchmarks read.

    COMPONENTS["difficulty"]        # "objectives.metrics.difficulty_of": (ObjectiveInputs) -> Tensor[P]
    component("difficulty")         # the function itself (imports objectives.metrics, hence torch)

Each name maps to the dotted path of its function, so reading the names imports
no torch (the config is checked before torch loads). A new built-in component
is one function plus one line here (and a yaml in conf/objective/ that weights
it); a component of your own needs neither: ``+objective.components.NAME._target_=pkg.Class``
(docs/configuration.md).
"""
from __future__ import annotations

import importlib
import math
from typing import Callable, Iterable, Mapping

COMPONENTS: dict[str, str] = {
    "difficulty": "objectives.metrics.difficulty_of",
    "separation": "objectives.metrics.separation_of",
    "novelty": "objectives.metrics.novelty_of",
    "consistency": "objectives.metrics.consistency_of",
    "realism": "objectives.metrics.realism_of",
}

VALIDITY = ("multiply", "none")  # objective.validity: utility x valid fraction, or the objective on valid items only


def component(name: str) -> Callable:
    """The function that computes component ``name`` from an ``ObjectiveInputs``."""
    if name not in COMPONENTS:
        raise ValueError(f"objective.weights.{name}: unknown objective; expected one of {sorted(COMPONENTS)}")
    module, _, attr = COMPONENTS[name].rpartition(".")
    return getattr(importlib.import_module(module), attr)


MAX_WEIGHT = 1e6  # weights are relative: a bound keeps every utility (components are bounded) finite


def check_weights(weights: Mapping[str, float], known: Iterable[str] = COMPONENTS) -> dict[str, float]:
    """The weights as floats; a one-line ValueError naming the key for an unknown name, a weight outside
    [0, MAX_WEIGHT] (a huge one overflows the utility to inf), or all weights zero. The schema and the objective both call this."""
    known = sorted(known)
    clean = {}
    for name, w in weights.items():
        if name not in known:
            raise ValueError(f"objective.weights.{name}: unknown objective; expected one of {known}")
        try:
            w = float(w)
        except (TypeError, ValueError):
            raise ValueError(f"objective.weights.{name}: must be a number, got {w!r}") from None
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"objective.weights.{name}: must be a finite number >= 0, got {w:g}")
        if w > MAX_WEIGHT:
            raise ValueError(f"objective.weights.{name}: must be at most {MAX_WEIGHT:g} (weights are relative), got {w:g}")
        clean[name] = w
    if not any(w > 0 for w in clean.values()):
        raise ValueError(f"objective.weights: all weights are zero; give at least one of {known} a weight > 0")
    return clean
