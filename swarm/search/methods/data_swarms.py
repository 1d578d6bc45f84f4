"""data_swarms: the paper's method, particle swarm optimization of the generator experts in weight space.

The swarm starts at the generator experts (``pso.n_particles``, ``pso.include_base``:
seeded mixes of two experts and the base model too; swarm/search/population.py).
Each step its particles (flat LoRA vectors of the generator) write items, the
search takers answer them, the objective turns the scores into one utility a
particle, and the PSO (swarm/search/pso.py) moves every particle; the run's
bookkeeping (record, checkpoint, resume) comes from the context. The personal
bests and g are the candidates of the fresh selection (swarm/search/selection.py).
"""
from __future__ import annotations

import time

from swarm.config import settings
from swarm.search.context import RunContext, SearchResult
from swarm.search.population import populate
from swarm.search.pso import PSO
from swarm.search.selection import swarm_candidates


def data_swarms(ctx: RunContext) -> SearchResult:
    """Particle swarm optimization of the generator experts in weight space."""
    cfg = ctx.cfg
    _, x0 = populate(ctx.setup.writer.model.expert_vectors, cfg.pso.n_particles, cfg.pso.include_base, cfg.seed)
    pso = PSO(x0, seed=cfg.seed, **settings(cfg.pso))
    initial = None  # the best particle of step 1 (a starting point): the yardstick summary.json's initial_heldout scores
    if ctx.state is not None:
        pso.load_state_dict(ctx.state["pso"])
        initial = ctx.state.get("initial")
    while pso.should_stop() is None:
        started = time.time()
        step = pso.steps_done + 1
        ev = ctx.evaluate(pso.x, step)
        pso.tell(ev.utility)
        if step == 1:
            initial = pso.x[pso.g_index].clone()
        extra = {"best": pso.g_util, "worst": pso.worst_util, "step_length": pso.step_length, "restarts": int(pso.restarted.sum())}
        pso.step()
        ctx.record(step, ev, started, extra)
        ctx.save({"method": "data_swarms", "step": step, "pso": pso.state_dict(), "orig_means": ctx.setup.evaluator.orig_means,
                  "initial": initial})
    return SearchResult(pso.g.clone(), pso.initial_best, pso.g_util, pso.steps_done, pso.should_stop(), initial=initial,
                        candidates=swarm_candidates(pso, cfg.select.candidates))
