"""The baselines Data Swarms is compared against, on the same evaluation code.

Each returns a :class:`SearchResult` like the swarm does, so the export, the
held-out evaluation and summary.json are shared. ``random_search`` gets the
swarm's evaluation budget: as many candidates per step as there are experts,
for ``pso.max_steps`` steps, starting from the experts themselves.
"""
from __future__ import annotations

import time
from typing import Callable

import torch

from swarm.run import RunContext, SearchResult


def _pick_best(ctx: RunContext, candidates: torch.Tensor) -> SearchResult:
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
    """The best initial generator expert, no optimization."""
    return _pick_best(ctx, ctx.setup.writer.model.expert_vectors)


def uniform_soup(ctx: RunContext) -> SearchResult:
    """The average of the generator experts' LoRA weights."""
    return _pick_best(ctx, ctx.setup.writer.model.expert_vectors.mean(dim=0, keepdim=True))


def base_model(ctx: RunContext) -> SearchResult:
    """The base LM alone: a zero LoRA vector leaves the base weights untouched."""
    return _pick_best(ctx, torch.zeros_like(ctx.setup.writer.model.expert_vectors[:1]))


def random_search(ctx: RunContext) -> SearchResult:
    """Random convex combinations of the experts, perturbed, with the swarm's budget."""
    experts = ctx.setup.writer.model.expert_vectors
    k = experts.shape[0]
    spread = experts.std(dim=0)
    rng = torch.Generator().manual_seed(ctx.cfg.seed)
    step, best, best_util, initial = 0, experts[0].clone(), float("-inf"), float("nan")
    if ctx.state is not None:
        step, best, best_util, initial = ctx.state["step"], ctx.state["best"], ctx.state["utility"], ctx.state["initial"]
        rng.set_state(ctx.state["rng"])
    while step < ctx.cfg.pso.max_steps:
        started = time.time()
        step += 1
        if step == 1:
            candidates = experts
        else:
            mix = _dirichlet(k, k, rng)
            noise = torch.randn(k, experts.shape[1], generator=rng) * spread * ctx.cfg.method.noise
            candidates = mix @ experts + noise
        ev = ctx.evaluate(candidates, step)
        i = int(torch.argmax(ev.utility))
        if step == 1:
            initial = ev.utility[i].item()
        if ev.utility[i].item() > best_util:
            best, best_util = candidates[i].clone(), ev.utility[i].item()
        ctx.record(step, ev, started, {"best": best_util, "worst": ev.utility.min().item()})
        ctx.save({"method": "random_search", "step": step, "best": best, "utility": best_util, "initial": initial, "rng": rng.get_state()})
    return SearchResult(best, initial, best_util, step, "max_steps")


def _dirichlet(n: int, k: int, rng: torch.Generator) -> torch.Tensor:
    """``n`` seeded draws from the flat Dirichlet over ``k`` experts (normalized exponentials)."""
    e = -torch.log(torch.rand(n, k, generator=rng).clamp_min(1e-12))
    return e / e.sum(dim=1, keepdim=True)


METHODS: dict[str, Callable[[RunContext], SearchResult]] = {
    "best_expert": best_expert,
    "uniform_soup": uniform_soup,
    "base_model": base_model,
    "random_search": random_search,
}
