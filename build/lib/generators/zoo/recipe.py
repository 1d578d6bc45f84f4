"""What the zoo is made of: the generator base, its experts, the takers (their sizes, budgets, data mixes, seeds).

A recipe (size, seed, these numbers) names one zoo: every model is budgeted
by steps and seeded, so its hash is the cache key (``recipe_key``).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from generators.zoo.problems import BINS, CLUSTERS, GENERATOR_TEMPLATE, TAKER_STOP, TAKER_TEMPLATE
from generators.zoo.tokenizer import VOCAB

__all__ = ["ModelSpec", "Recipe", "RECIPES", "MIXES", "RECIPE_VERSION", "recipe_key"]

RECIPE_VERSION = 2

# Data mixes of the takers: weights of the bins in their Q/A lines. Every mix covers every bin.
MIXES: dict[str, dict[str, float]] = {
    "even": {"small": 2, "big": 3, "mul": 2, "chain": 2, "big+mul": 1, "big+chain": 1, "mul+chain": 1, "big+mul+chain": 0.5},
    "sums": {"small": 2, "big": 4, "mul": 0.5, "chain": 3, "big+mul": 0.3, "big+chain": 1.5, "mul+chain": 0.3, "big+mul+chain": 0.2},
    "products": {"small": 2, "big": 2, "mul": 4, "chain": 1, "big+mul": 2, "big+chain": 0.5, "mul+chain": 1, "big+mul+chain": 0.5},
}


@dataclass(frozen=True)
class ModelSpec:
    """One model trained from scratch: a Llama of this size, this many steps of this data, this seed."""

    hidden: int
    layers: int
    steps: int
    seed: int
    mix: str = "even"
    lr: float = 5e-3
    batch: int = 64                 # Q/A lines a step (takers) or problem lists a step (the generator base)

    def __post_init__(self) -> None:
        if self.hidden % 16:
            raise ValueError(f"zoo model hidden={self.hidden}: must be a multiple of 16 (8 heads of an even size, for RoPE)")

    @property
    def heads(self) -> int:
        return 8  # 8 heads at every width: with 4 the v1 base sat on a plateau (docs/zoo.md)


@dataclass(frozen=True)
class Recipe:
    generator: ModelSpec
    takers: dict[str, ModelSpec]               # the search takers
    heldout: dict[str, ModelSpec]              # other models: other sizes and seeds than any search taker
    expert_steps: int = 60                     # each generator expert (LoRA of the generator base)
    expert_batch: int = 32
    expert_r: int = 8
    expert_lr: float = 5e-3
    lora_taker_base: str = "t4"                # method=adversarial: LoRA takers of this search taker, one per cluster
    lora_taker_steps: int = 80
    lora_taker_r: int = 8
    eval_problems: int = 100                   # skill matrix: problems per bin ...
    eval_lists: int = 48                       # ... and generator prompts
    workers: int = 2                           # models trained at a time, one thread each
    clusters: tuple[str, ...] = field(default=CLUSTERS)


RECIPES = {
    "default": Recipe(
        generator=ModelSpec(hidden=64, layers=2, steps=600, seed=0, batch=16),
        takers={
            "t1": ModelSpec(hidden=32, layers=1, steps=400, seed=1),
            "t2": ModelSpec(hidden=48, layers=2, steps=600, seed=2),
            "t3": ModelSpec(hidden=64, layers=2, steps=600, seed=3, mix="sums"),
            "t4": ModelSpec(hidden=64, layers=2, steps=900, seed=4),
        },
        heldout={
            "h1": ModelSpec(hidden=48, layers=1, steps=500, seed=11),
            "h2": ModelSpec(hidden=64, layers=2, steps=800, seed=12),
            "h3": ModelSpec(hidden=80, layers=2, steps=600, seed=13, mix="products"),
        },
    ),
    "tiny": Recipe(
        generator=ModelSpec(hidden=64, layers=2, steps=250, seed=0, batch=8),
        takers={
            "t1": ModelSpec(hidden=32, layers=1, steps=100, seed=1, batch=32),
            "t2": ModelSpec(hidden=32, layers=1, steps=250, seed=2, batch=32),
            "t3": ModelSpec(hidden=48, layers=1, steps=150, seed=3, batch=32, mix="products"),
            "t4": ModelSpec(hidden=48, layers=1, steps=200, seed=4, batch=32, mix="sums"),
        },
        heldout={
            "h1": ModelSpec(hidden=48, layers=1, steps=150, seed=11, batch=32),
            "h2": ModelSpec(hidden=32, layers=1, steps=200, seed=12, batch=32),
            "h3": ModelSpec(hidden=48, layers=1, steps=150, seed=13, batch=32, mix="products"),
        },
        expert_steps=20, expert_batch=16, lora_taker_steps=15, eval_problems=30, eval_lists=12,
    ),
}


def recipe_key(size: str, seed: int) -> str:
    """``<size>-seed<seed>-<hash of everything that shapes the zoo>``."""
    recipe = {
        "version": RECIPE_VERSION, "size": size, "seed": seed, "recipe": asdict(RECIPES[size]), "mixes": MIXES,
        "bins": BINS, "templates": [GENERATOR_TEMPLATE, TAKER_TEMPLATE, TAKER_STOP], "vocab": VOCAB,
    }
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    return f"{size}-seed{seed}-{digest}"
