"""Black-box searches over the experts' mixture coefficients, with the swarm's evaluation budget.

Both evaluate as many candidates a step as the swarm has particles (the
generator experts, or ``pso.n_particles`` with ``pso.include_base``: the
rows of swarm/search/population.py), for ``pso.max_steps`` steps, and both
start from the swarm's own starting points (step 1), as the swarm does, so
every searcher writes and scores steps x particles item sets:

- ``random_search``: random convex combinations of the experts plus Gaussian
  noise (relative to the experts' spread);
- ``cma_es``: CMA-ES (the ``cma`` package) over the coefficient vector c of
  the mixture ``c @ experts``, seeded, population size = the swarm's size;
  the swarm's starting coefficients (unit vectors, the base's zero vector,
  the mixes) are its first generation. A resumed run replays the checkpointed
  utilities through a fresh, identically seeded CMA-ES, so it continues exactly.

Each keeps its ``select.candidates`` best distinct points for the fresh selection.
"""
from __future__ import annotations

import math
import time
from typing import Annotated

import torch
from annotated_types import Ge, Gt

from swarm.search.context import RunContext, SearchResult
from swarm.search.population import populate
from swarm.search.selection import as_candidates, keep_best


def start(ctx: RunContext) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The experts [k, d], and the swarm's starting coefficients [n, k] and vectors [n, d]."""
    experts, pso = ctx.setup.writer.model.expert_vectors, ctx.cfg.pso
    return (experts, *populate(experts, pso.n_particles, pso.include_base, ctx.cfg.seed))


def random_search(ctx: RunContext, *, noise: Annotated[float, Ge(0)]) -> SearchResult:
    """Random convex combinations of the experts, perturbed, with the swarm's budget."""
    experts, _, x0 = start(ctx)
    (n, k), spread = (x0.shape[0], experts.shape[0]), experts.std(dim=0)
    rng = torch.Generator().manual_seed(ctx.cfg.seed)
    step, pool, best_util, initial = 0, [], float("-inf"), float("nan")
    if ctx.state is not None:
        step, pool, best_util, initial = ctx.state["step"], ctx.state["pool"], ctx.state["utility"], ctx.state["initial"]
        rng.set_state(ctx.state["rng"])
    while step < ctx.cfg.pso.max_steps:
        started = time.time()
        step += 1
        if step == 1:
            candidates = x0
        else:
            mix = _dirichlet(n, k, rng)
            candidates = mix @ experts + torch.randn(n, experts.shape[1], generator=rng) * spread * noise
        ev = ctx.evaluate(candidates, step)
        utilities = ev.utility.tolist()
        if step == 1:
            initial = max(utilities)
        best_util = max(best_util, max(utilities))
        pool = keep_best(pool, candidates, utilities, step, ctx.cfg.select.candidates)
        ctx.record(step, ev, started, {"best": best_util, "worst": min(utilities)})
        ctx.save({"method": "random_search", "step": step, "pool": pool, "utility": best_util, "initial": initial, "rng": rng.get_state()})
    return _result(pool, initial, best_util, step)


def _result(pool: list[dict], initial: float, best_util: float, steps: int) -> SearchResult:
    """The best point so far as the search's best, every kept point a candidate of the fresh selection."""
    return SearchResult(pool[0]["vector"], initial, best_util, steps, "max_steps", candidates=as_candidates(pool))


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

    experts, c0, _ = start(ctx)
    n, k = c0.shape
    rng = np.random.default_rng(ctx.cfg.seed + 1)  # its own generator: numpy's global state is nobody's
    options = {"popsize": n, "randn": lambda *shape: rng.standard_normal(shape), "verbose": -9}
    es = cma.CMAEvolutionStrategy([1.0 / k] * k, sigma, options)
    history: list[list[float]] = [] if ctx.state is None else ctx.state["history"]
    pool, best_util, initial = [], float("-inf"), float("nan")
    if ctx.state is not None:
        pool, best_util, initial = ctx.state["pool"], ctx.state["utility"], ctx.state["initial"]
    step = 0
    while step < ctx.cfg.pso.max_steps:
        step += 1
        if step == 1:
            es.inject(list(c0.numpy()), force=True)
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
        if step == 1:
            initial = max(utilities)
        best_util = max(best_util, max(utilities))
        pool = keep_best(pool, candidates, utilities, step, ctx.cfg.select.candidates)
        ctx.record(step, ev, started, {"best": best_util, "worst": min(utilities), "cma/sigma": float(es.sigma)})
        ctx.save({"method": "cma_es", "step": step, "pool": pool, "utility": best_util, "initial": initial, "history": history})
    return _result(pool, initial, best_util, step)

