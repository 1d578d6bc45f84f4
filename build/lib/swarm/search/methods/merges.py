"""Merging baselines: one generator made from the experts without any search.

- ``ties``: TIES (or DARE-TIES) merging of the experts' LoRA adapters with
  PEFT's ``add_weighted_adapter`` (combination_type ``ties`` / ``dare_ties``:
  trim each expert to its top ``density`` fraction, elect a sign per weight,
  average the agreeing values; DARE drops at random and rescales instead of
  trimming). The merged adapter keeps the experts' rank, so it is a vector of
  the swarm's own space, evaluated and exported like any particle.
- ``uniform_soup`` (swarm/search/methods/fixed.py) is the plain weight average.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import torch
from annotated_types import Interval

from generators.models.particles import FlatSpec, flatten
from swarm.runtime.errors import ConfigError
from swarm.search.context import RunContext, SearchResult
from swarm.search.methods.fixed import pick_best


def merge_adapters(base_dir: Path, adapter_dirs: list[Path], spec: FlatSpec, combination: str, density: float,
                   weights: list[float], seed: int) -> torch.Tensor:
    """The PEFT ``add_weighted_adapter`` merge of ``adapter_dirs`` as a flat vector in ``spec``'s layout.

    A fresh fp32 copy of the base on CPU holds the adapters (the run's live model is not touched).
    """
    from peft import PeftModel
    from peft.utils.save_and_load import get_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(base_dir), local_files_only=True, use_safetensors=True,
                                                trust_remote_code=False, dtype=torch.float32)
    names = [f"expert_{i}" for i in range(len(adapter_dirs))]
    model = PeftModel.from_pretrained(base, str(adapter_dirs[0]), adapter_name=names[0])
    for name, d in zip(names[1:], adapter_dirs[1:]):
        model.load_adapter(str(d), adapter_name=name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # DARE's random drops
        model.add_weighted_adapter(names, list(weights), "merged", combination_type=combination, density=density)
    return flatten(get_peft_model_state_dict(model, adapter_name="merged"), spec)


def ties(ctx: RunContext, *, combination: Literal["ties", "dare_ties"], density: Annotated[float, Interval(gt=0, le=1)],
         weights: list[float] | None) -> SearchResult:
    """The TIES / DARE-TIES merge of the generator experts (module docstring), evaluated once."""
    if ctx.state is not None:
        return pick_best(ctx, torch.empty(0))
    k = ctx.setup.writer.model.expert_vectors.shape[0]
    weights = [1.0] * k if weights is None else list(weights)
    if len(weights) != k:
        raise ConfigError(f"method.weights: one weight per generator expert ({k}), got {len(weights)}")
    model = ctx.setup.writer.model
    merged = merge_adapters(model.base_dir, model.adapter_dirs, model.spec, combination, density, weights, ctx.cfg.seed)
    return pick_best(ctx, merged.to(ctx.setup.writer.model.expert_vectors)[None])
