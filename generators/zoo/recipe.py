"""What the zoo is made of: the task's dev clusters, the generator base and its experts, the takers (their sizes,
budgets, data mixes, seeds).

A recipe (size, seed, these numbers) names one zoo: every model is budgeted
by steps and seeded, so its hash is the cache key (``recipe_key``).
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass

from generators.training.clusters import cluster_texts
from generators.zoo.problems import FORMS, GENERATOR_TEMPLATE, TAKER_STOP, TAKER_TEMPLATE, form_of
from generators.zoo.tokenizer import VOCAB
from objectives.tasks.arith import ArithTask, family_of

__all__ = ["ModelSpec", "Recipe", "RECIPES", "MIXES", "WARMUP", "RECIPE_VERSION", "recipe_key", "task_of", "dev_clusters", "cluster_mix"]

RECIPE_VERSION = 3


# Data mixes of the takers: weights of the dev forms in their Q/A lines. Every taker first learns sums and
# differences alone (``WARMUP``, its first ``warmup`` steps), then its mix: measured on the calibration probes
# (docs/zoo.md), a small LM trained on the four dev forms (or on all forms) from the start learned none of them in
# the zoo's budget, while sums and differences alone are learned in a few hundred steps and then kept.
WARMUP: dict[str, float] = {"dd+dd": 1, "dd-dd": 1}
MIXES: dict[str, dict[str, float]] = {
    "even": {"dd+dd": 1, "dd-dd": 1, "d*dd": 1, "d*d+dd": 1},
    "sums": {"dd+dd": 3, "dd-dd": 3, "d*dd": 1, "d*d+dd": 1},
    "products": {"dd+dd": 1, "dd-dd": 1, "d*dd": 0.5, "d*d+dd": 1.5},
}


@dataclass(frozen=True)
class ModelSpec:
    """One model trained from scratch: a Llama of this size, this many steps of this data, this seed."""

    hidden: int
    layers: int
    steps: int
    seed: int
    mix: str = "even"
    warmup: int = 0                 # takers: the first steps on WARMUP (sums and differences) alone
    lr: float = 5e-3
    batch: int = 128                # Q/A lines a step (takers) or problem lists a step (the generator base)

    def __post_init__(self) -> None:
        if self.hidden % 16:
            raise ValueError(f"zoo model hidden={self.hidden}: must be a multiple of 16 (8 heads of an even size, for RoPE)")
        if self.mix not in MIXES:
            raise ValueError(f"zoo model mix={self.mix!r}: expected one of {sorted(MIXES)}")
        if not 0 <= self.warmup < self.steps:
            raise ValueError(f"zoo model warmup={self.warmup}: must be in [0, steps={self.steps})")

    @property
    def phases(self) -> list[tuple[int, dict[str, float]]]:
        """A taker's data: ``[(until_step, weights), ...]``."""
        return ([(self.warmup, WARMUP)] if self.warmup else []) + [(self.steps, MIXES[self.mix])]

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
    lora_taker_base: str = "t2"                # method=adversarial: LoRA takers of this search taker, one per cluster
    lora_taker_steps: int = 60
    lora_taker_r: int = 8
    lora_taker_lr: float = 2e-3
    eval_problems: int = 50                    # skill matrix: problems per form ...
    eval_lists: int = 48                       # ... and generator prompts
    workers: int = 2                           # models trained at a time, one thread each
    k: int = 4                                 # clusters of the task's dev items: one generator expert each
    n_dev: int = 200                           # the arith task the zoo is built for (conf/task/arith.yaml)
    n_test: int = 200
    task_seed: int = 0


RECIPES = {
    "default": Recipe(
        generator=ModelSpec(hidden=64, layers=2, steps=500, seed=0, batch=16),
        takers={
            "t1": ModelSpec(hidden=48, layers=2, steps=450, warmup=250, seed=1, mix="sums"),
            "t2": ModelSpec(hidden=48, layers=2, steps=600, warmup=300, seed=2, mix="sums"),
            "t3": ModelSpec(hidden=64, layers=2, steps=550, warmup=300, seed=3, mix="products"),
            "t4": ModelSpec(hidden=64, layers=2, steps=650, warmup=300, seed=4),
        },
        heldout={
            "h1": ModelSpec(hidden=48, layers=2, steps=500, warmup=250, seed=11),
            "h2": ModelSpec(hidden=64, layers=2, steps=550, warmup=275, seed=12, mix="sums"),
            "h3": ModelSpec(hidden=80, layers=2, steps=500, warmup=300, seed=13, mix="products"),
        },
    ),
    "tiny": Recipe(
        generator=ModelSpec(hidden=64, layers=2, steps=250, seed=0, batch=8),
        takers={
            "t1": ModelSpec(hidden=32, layers=1, steps=100, warmup=50, seed=1, batch=32),
            "t2": ModelSpec(hidden=32, layers=1, steps=250, warmup=100, seed=2, batch=32),
            "t3": ModelSpec(hidden=48, layers=1, steps=150, warmup=50, seed=3, batch=32, mix="products"),
            "t4": ModelSpec(hidden=48, layers=1, steps=200, warmup=100, seed=4, batch=32, mix="sums"),
        },
        heldout={
            "h1": ModelSpec(hidden=48, layers=1, steps=150, warmup=50, seed=11, batch=32),
            "h2": ModelSpec(hidden=32, layers=1, steps=200, warmup=100, seed=12, batch=32),
            "h3": ModelSpec(hidden=48, layers=1, steps=150, warmup=50, seed=13, batch=32, mix="products"),
        },
        lora_taker_base="t4", expert_steps=20, expert_batch=16, lora_taker_steps=15, eval_problems=20, eval_lists=12,
    ),
}


def task_of(recipe: Recipe) -> ArithTask:
    """The arith task the zoo is built for: its dev items are clustered and shown, its dev and test items are
    never a taker's training line."""
    return ArithTask(n_dev=recipe.n_dev, n_test=recipe.n_test, seed=recipe.task_seed)


def dev_clusters(recipe: Recipe, seed: int) -> dict[str, list[str]]:
    """The dev items split into ``recipe.k`` clusters (the project's clustering, seeded by the zoo seed), each named
    by the task family most of its items belong to (``add``, ``sub``, ``mul``, ``mix``)."""
    dev = [item.input for item in task_of(recipe).dev]
    groups = [[dev[i] for i in g] for g in cluster_texts(dev, recipe.k, seed=seed)]
    names = [Counter(map(family_of, g)).most_common(1)[0][0] for g in groups]
    if len(set(names)) != len(names):
        raise ValueError(f"zoo: the dev clusters do not have distinct majority families ({names}); name them otherwise")
    return dict(sorted(zip(names, groups), key=lambda kv: ("add", "sub", "mul", "mix").index(kv[0])))


def cluster_mix(items: list[str]) -> dict[str, float]:
    """A cluster's forms weighted by how many of its items have them: the data mix of its LoRA taker."""
    return {form: float(n) for form, n in sorted(Counter(map(form_of, items)).items())}


def recipe_key(size: str, seed: int) -> str:
    """``<size>-seed<seed>-<hash of everything that shapes the zoo>``: the recipe, the dev clusters, the test items."""
    task = task_of(RECIPES[size])
    recipe = {
        "version": RECIPE_VERSION, "size": size, "seed": seed, "recipe": asdict(RECIPES[size]), "mixes": MIXES, "warmup": WARMUP,
        "forms": FORMS, "templates": [GENERATOR_TEMPLATE, TAKER_TEMPLATE, TAKER_STOP], "vocab": VOCAB,
        "clusters": dev_clusters(RECIPES[size], seed), "test": [item.input for item in task.test],
    }
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    return f"{size}-seed{seed}-{digest}"
