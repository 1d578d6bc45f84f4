"""data_merge: one LoRA expert trained on the union of all the generator experts' training data.

The data-side counterpart of merging weights: instead of combining k experts,
train one adapter of the same shape (rank, targets) on everything they were
trained on, with as many examples as they saw together (k × an expert's
steps, the same batch). Then it is evaluated and exported like any particle.

- generator=zoo: the experts' data comes from generators/zoo/ (each expert
  continues few-shot lists with new items of its own cluster); the union draws
  each new item's cluster uniformly from the experts'. Trained by the zoo's
  own job (generators/zoo/train.py: train_lora), seeded by the zoo seed, and
  cached next to the zoo (built once under a file lock, generators/models/cache.py).
- generator=smollm2: the experts are trained by generators/training/experts.py
  on k TF-IDF clusters of the dev set; their union is the whole dev set, so the
  union expert is ``smollm2.experts(k=1)`` with k × the steps (cached by it).
- generator=hf: the experts' training data is not known to the run: an error.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from generators.models.lora_model import read_adapter
from generators.models.particles import flatten
from swarm.runtime.errors import ConfigError
from swarm.search.context import RunContext, SearchResult
from swarm.search.methods.fixed import pick_best

VERSION = 1  # bump to invalidate cached union experts


def zoo_union_expert(size: str, seed: int) -> Path:
    """The cached union expert of the zoo (size, seed); trained the first time (generators/zoo/train.py)."""
    from generators.models.cache import build_once, default_cache_dir
    from generators.zoo import RECIPES, build_zoo
    from generators.zoo.train import train_lora

    z, recipe = build_zoo(size, seed=seed), RECIPES[size]
    key = hashlib.sha256(json.dumps({"v": VERSION, "zoo": z.root.name}).encode()).hexdigest()[:12]

    def train(tmp: Path) -> None:
        train_lora({"base_dir": str(z.base_dir), "base_name": str(z.base_dir), "out_dir": str(tmp), "kind": "lists",
                    "target": list(z.generators), "r": recipe.expert_r, "lr": recipe.expert_lr,
                    "steps": recipe.expert_steps * len(z.generators), "batch": recipe.expert_batch, "seed": seed,
                    "label": "data_merge-union"})
        (tmp / "DONE").write_text(json.dumps({"experts": list(z.generators)}) + "\n")

    return build_once(default_cache_dir() / "data_merge" / f"{z.root.name}-union-{key}", "DONE", train)


def union_expert(ctx: RunContext) -> Path:
    """The adapter dir of the union expert for this run's generator config."""
    cfg = ctx.cfg
    g = cfg.generator
    if g._target_ == "generators.sources.zoo.zoo_generators":
        return zoo_union_expert(cfg.zoo.size, cfg.zoo.seed)
    if g._target_ == "generators.sources.smollm2.smollm2_generators":
        from generators.sources import smollm2

        return smollm2.experts(
            ctx.setup.task, role="generator", k=1, steps=g.train_steps * g.k, seed=cfg.seed, template=g.template,
            taker_template=cfg.taker.template, few_shot=g.few_shot, items_per_prompt=g.items_per_prompt,
            chat_template=g.chat_template,
        )[0]
    raise ConfigError(f"method=data_merge: generator._target_={g._target_} does not know its experts' training data "
                      "(use generator=zoo or generator=smollm2, or train a union expert with dswarm-experts --k 1)")


def data_merge(ctx: RunContext) -> SearchResult:
    """The union expert (module docstring), evaluated once like a fixed candidate."""
    if ctx.state is not None:
        return pick_best(ctx, torch.empty(0))
    model = ctx.setup.writer.model
    _, tensors = read_adapter(union_expert(ctx))
    try:
        vector = flatten(tensors, model.spec)
    except (KeyError, ValueError) as err:
        raise ConfigError(f"method=data_merge: the union expert does not fit the generator experts' LoRA structure: {err}") from err
    return pick_best(ctx, vector.to(model.expert_vectors)[None])
