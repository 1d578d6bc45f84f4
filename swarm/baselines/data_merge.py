"""data_merge: one LoRA expert trained on the union of all the generator experts' training data.

The data-side counterpart of merging weights: instead of combining k experts,
train one adapter of the same shape (rank, targets) on everything they were
trained on, with as many examples as they saw together (k × an expert's
steps, the same batch). Then it is evaluated and exported like any particle.

- generator=zoo: the experts' data comes from generators/zoo.py (each expert
  continues few-shot lists with new items of its own kind); the union draws
  each training list's kind uniformly from the experts'. Trained with the
  zoo's own training loop, seeded by the zoo seed, and cached next to the zoo
  (built once under a file lock, like the zoo's experts).
- generator=smollm2: the experts are trained by generators/train_experts.py
  on k TF-IDF clusters of the dev set; their union is the whole dev set, so the
  union expert is ``smollm2.experts(k=1)`` with k × the steps (cached by it).
- generator=hf: the experts' training data is not known to the run: an error.
"""
from __future__ import annotations

import hashlib
import json
import random
import shutil
import os
from pathlib import Path

import torch

from generators.experts import read_adapter, save_adapter
from generators.particles import flatten
from swarm.baselines.fixed import pick_best
from swarm.errors import ConfigError
from swarm.run import RunContext, SearchResult

VERSION = 1  # bump to invalidate cached union experts


def _train_zoo_union(base_dir: Path, names: list[str], size: str, seed: int, out: Path) -> None:
    """Train the zoo's union generator expert into ``out`` (one thread; seconds for the tiny zoo)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from generators import zoo

    recipe = zoo.RECIPES[size]
    tok = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
    base = AutoModelForCausalLM.from_pretrained(str(base_dir), local_files_only=True, use_safetensors=True)
    rng = random.Random(f"data_merge-{seed}")
    batches = lambda: [zoo.collate(tok, [zoo.list_pair(rng, rng.choice(names)) for _ in range(recipe.gen_batch)], eos=True)]  # noqa: E731
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = get_peft_model(base, LoraConfig(r=recipe.gen_r, lora_alpha=recipe.gen_r, lora_dropout=0.0,
                                                target_modules=zoo.TARGETS))
    zoo.train(model, batches, recipe.gen_steps * len(names), recipe.gen_lr)
    save_adapter(model, out, str(base_dir))


def zoo_union_expert(size: str, seed: int) -> Path:
    """The cached union expert of the zoo (size, seed); trained the first time."""
    from generators import smollm2
    from generators.zoo import build_zoo, default_cache_dir

    z = build_zoo(size, seed=seed)
    key = hashlib.sha256(json.dumps({"v": VERSION, "zoo": z.root.name}).encode()).hexdigest()[:12]
    root = default_cache_dir() / "data_merge"
    final = root / f"{z.root.name}-union-{key}"
    if (final / "DONE").is_file():
        return final
    with smollm2.locked(root / f"{final.name}.lock"):
        if not (final / "DONE").is_file():
            tmp = final.with_name(f".tmp-{final.name}-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            _train_zoo_union(z.base_dir, list(z.generators), size, seed, tmp)
            (tmp / "DONE").write_text(json.dumps({"experts": list(z.generators)}) + "\n")
            smollm2.publish(tmp, final)
    return final


def union_expert(ctx: RunContext) -> Path:
    """The adapter dir of the union expert for this run's generator config."""
    cfg = ctx.cfg
    g = cfg.generator
    if g.kind == "zoo":
        return zoo_union_expert(cfg.zoo.size, cfg.zoo.seed)
    if g.kind == "smollm2":
        from generators import smollm2

        return smollm2.experts(
            ctx.setup.task, role="generator", k=1, steps=g.train_steps * g.k, seed=cfg.seed, template=g.template,
            taker_template=cfg.taker.template, few_shot=g.few_shot, items_per_prompt=g.items_per_prompt,
            chat_template=g.chat_template,
        )[0]
    raise ConfigError(f"method=data_merge: generator={g.kind} does not know its experts' training data "
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
