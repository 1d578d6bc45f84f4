"""data_merge: one LoRA expert trained on the union of all the generator experts' training data.

The data-side counterpart of merging weights: instead of combining k experts,
train one adapter of the same shape (rank, targets) on everything they were
trained on, with as many examples as they saw together (k x an expert's
steps, the same batch). Then it is evaluated and exported like any particle.

The model source knows the experts' data, so it says how to make the union
expert (``GeneratorSources.union_expert``, generators/sources/protocol.py):
generator=zoo trains it with the zoo's own job, generator=smollm2 trains one
expert on the whole dev set (the union of its clusters); generator=hf does not
know its adapters' data: an error.
"""
from __future__ import annotations

import torch

from generators.models.adapter_files import read_adapter
from generators.models.particles import flatten
from swarm.runtime.errors import ConfigError
from swarm.search.context import RunContext, SearchResult
from swarm.search.methods.fixed import pick_best


def data_merge(ctx: RunContext) -> SearchResult:
    """The union expert (module docstring), evaluated once like a fixed candidate."""
    if ctx.state is not None:
        return pick_best(ctx, torch.empty(0))
    union = ctx.setup.sources.union_expert
    if union is None:
        raise ConfigError(f"method=data_merge: generator._target_={ctx.cfg.generator._target_} does not know its experts' "
                          "training data (use generator=zoo or generator=smollm2, or train a union expert with "
                          "dswarm-experts --k 1)")
    model = ctx.setup.writer.model
    _, tensors = read_adapter(union())
    try:
        vector = flatten(tensors, model.spec)
    except (KeyError, ValueError) as err:
        raise ConfigError(f"method=data_merge: the union expert does not fit the generator experts' LoRA structure: {err}") from err
    return pick_best(ctx, vector.to(model.expert_vectors)[None])
