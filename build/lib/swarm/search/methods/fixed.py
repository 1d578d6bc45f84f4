"""Baselines that pick among fixed candidates: no search, one evaluation step.

``base_model`` (Self-Instruct style: the base LM few-shot prompted with dev
items), ``best_expert`` (the best initial generator expert) and
``uniform_soup`` (the mean of the experts' LoRA weights). ``_pick_best`` is
the shared step: evaluate the candidates once, keep the best.
"""
from __future__ import annotations

import time

import torch

from swarm.search.context import RunContext, SearchResult


def pick_best(ctx: RunContext, candidates: torch.Tensor) -> SearchResult:
    """Evaluate fixed candidates once (step 1) and keep the best."""
    if ctx.state is None:
        started = time.time()
        ev = ctx.evaluate(candidates, 1)
        best = int(torch.argmax(ev.utility))
        utility = ev.utility[best].item()
        ctx.record(1, ev, started, {"best": utility, "worst": ev.utility.min().item()})
        ctx.save({"method": ctx.cfg.method.name, "step": 1, "best": candidates[best].clone(), "utility": utility})
        return SearchResult(candidates[best].clone(), utility, utility, 1, "no_search")
    return SearchResult(ctx.state["best"], ctx.state["utility"], ctx.state["utility"], 1, "no_search")


def best_expert(ctx: RunContext) -> SearchResult:
    """The best initial generator expert, no optimization (it is its own held-out yardstick)."""
    result = pick_best(ctx, ctx.setup.writer.model.expert_vectors)
    result.initial = result.best
    return result


def uniform_soup(ctx: RunContext) -> SearchResult:
    """The average of the generator experts' LoRA weights."""
    return pick_best(ctx, ctx.setup.writer.model.expert_vectors.mean(dim=0, keepdim=True))


def base_model(ctx: RunContext) -> SearchResult:
    """The base LM alone: a zero LoRA vector leaves the base weights untouched."""
    return pick_best(ctx, torch.zeros_like(ctx.setup.writer.model.expert_vectors[:1]))
