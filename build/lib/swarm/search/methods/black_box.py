"""Black-box searches over the experts' mixture coefficients, with the swarm's evaluation budget.

Both evaluate as many candidates a step as the swarm has particles (the
generator experts), for ``pso.max_steps`` steps, and both start from the
experts themselves (step 1), as the swarm does:

- ``random_search``: random convex combinations of the experts plus Gaussian
  noise (relative to the experts' spread);
- ``cma_es``: CMA-ES (the ``cma`` package) over the coefficient vector c of
  the mixture ``c @ experts``, seeded; the experts (the unit vectors) are its
  first generation. A resumed run replays the checkpointed utilities through
  a fresh, identically seeded CMA-ES, so it continues exactly.
"""
from __future__ import annotations

import math
import time
from typing import Annotated

import torch
from annotated_types import Ge, Gt

from swarm.search.context import RunContext, SearchResult


def random_search(ctx: RunContext, *, noise: Annotated[float, Ge(0)]) -> SearchResult:
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
            candidates = mix @ experts + torch.randn(k, experts.shape[1], generator=rng) * spread * noise
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


def _loss(utility: float) -> float:
    """CMA-ES minimizes; a NaN/inf utility (garbage) is the worst loss there is."""
    return -utility if math.isfinite(utility) else 1e12


def cma_es(ctx: RunContext, *, sigma: Annotated[float, Gt(0)]) -> SearchResult:
    """CMA-ES over the experts' mixture coefficients, with the swarm's budget (module docstring)."""
    import cma
    import numpy as np

    experts = ctx.setup.writer.model.expert_vectors
    k = experts.shape[0]
    rng = np.random.default_rng(ctx.cfg.seed + 1)  # its own generator: numpy's global state is nobody's
    options = {"popsize": k, "randn": lambda *shape: rng.standard_normal(shape), "verbose": -9}
    es = cma.CMAEvolutionStrategy([1.0 / k] * k, sigma, options)
    history: list[list[float]] = [] if ctx.state is None else ctx.state["history"]
    best, best_util, initial = experts[0].clone(), float("-inf"), float("nan")
    if ctx.state is not None:
        best, best_util, initial = ctx.state["best"], ctx.state["utility"], ctx.state["initial"]
    step = 0
    while step < ctx.cfg.pso.max_steps:
        step += 1
        if step == 1:
            es.inject([row for row in torch.eye(k, dtype=torch.float64).numpy()], force=True)
        coefficients = es.ask()
        if step <= len(history):  # resuming: replay what was told, evaluate nothing
            es.tell(coefficients, [_loss(u) for u in history[step - 1]])
            continue
        started = time.time()
        candidates = torch.from_numpy(np.asarray(coefficients)).to(experts) @ experts
        ev = ctx.evaluate(candidates, step)
        utilities = ev.utility.tolist()
        es.tell(coefficients, [_loss(u) for u in utilities])
        history.append(utilities)
        i = int(torch.argmax(ev.utility))
        if step == 1:
            initial = utilities[i]
        if utilities[i] > best_util:
            best, best_util = candidates[i].clone(), utilities[i]
        ctx.record(step, ev, started, {"best": best_util, "worst": min(utilities), "cma/sigma": float(es.sigma)})
        ctx.save({"method": "cma_es", "step": step, "best": best, "utility": best_util, "initial": initial, "history": history})
    return SearchResult(best, initial, best_util, step, "max_steps")
