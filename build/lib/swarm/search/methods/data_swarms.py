"""data_swarms: the paper's method, particle swarm optimization of the generator experts in weight space.

Each step the swarm's particles (flat LoRA vectors of the generator) write items,
the search takers answer them, the objective turns the scores into one utility a
particle, and the PSO (swarm/search/pso.py) moves every particle; the run's
bookkeeping (record, checkpoint, resume) comes from the context.
"""
from __future__ import annotations

import time

from swarm.search.context import RunContext, SearchResult
from swarm.search.pso import PSO


def data_swarms(ctx: RunContext) -> SearchResult:
    """Particle swarm optimization of the generator experts in weight space."""
    pso = PSO.from_config(ctx.setup.writer.model.expert_vectors, ctx.cfg.pso, ctx.cfg.seed)
    initial = None  # the best particle of step 1 (an expert): the yardstick summary.json's initial_heldout scores
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
    return SearchResult(pso.g.clone(), pso.initial_best, pso.g_util, pso.steps_done, pso.should_stop(), initial=initial)
