"""Adversarial Swarms: a data swarm and a model swarm of test takers that co-evolve.

Usage: dswarm method=adversarial [method.pool_size=64 method.replace_fraction=0.2] pso.max_steps=10
       dswarm method=adversarial method.replace_fraction=0     # control: the takers never see generated data
       dswarm method=adversarial method.feed=random            # control: random generated items, not the hardest
       dswarm method=adversarial method.feed=reference         # the reference's pool: every slot replaced w.p. f, drifting

Both swarms run on the same PSO engine (swarm/search/pso.py) with the same ``pso``
settings (seeds ``seed`` and ``seed + 1``). Step s:

1. model swarm: every taker particle answers the pool P_s (``pool_size``
   items, at first a seeded sample of the task's dev items); its utility is
   its mean judged score on the pool;
2. data swarm: every generator particle writes items and the takers it faces
   are the model swarm's current particles, the very positions just scored
   on P_s. With objective=difficulty (the intended one) a generator's
   utility is 1 − the strongest current taker's mean score;
3. the pool: a fixed, seeded choice of ``round(replace_fraction · pool_size)``
   pool slots takes the step's hardest new valid items with their answers
   — hardest = lowest mean score of the current takers (``feed=hardest``;
   ``feed=random``: a seeded random choice of the same candidates, a
   control) — giving P_{s+1}. Only items whose answer the judge confirms
   (:func:`confirmed`: the verifier recomputes it) enter: the hardest items
   are otherwise mostly those whose generated answer is wrong. The other slots keep their dev items, so
   the takers' objective stays anchored to the task: (1 − f)·dev + f·the
   newest adversarial data. ``feed=reference`` moves the pool as the
   authors' code does instead: every slot, dev or generated, is replaced
   with probability f by a random confirmed generated item of the step
   (:func:`drift`), so the pool drifts from dev toward generated items;
4. both swarms move (pso.step).

The two objectives change every step (stronger takers, a harder pool), so a
global best's remembered utility goes stale: from step 2 on each swarm also
re-scores its incumbent global best g on the step's objective (one extra
particle, same step seed; ``PSO.rescore_incumbent``) before it is told the
new utilities, and g is replaced by any particle that beats it *now*, at that
particle's current position. Personal bests keep their
remembered utilities (they only steer). The run stops at ``pso.max_steps``,
or when both global bests have stalled for ``pso.patience`` steps.
``pso.n_particles`` and ``pso.include_base`` populate the data swarm; the
model swarm is the search takers. The exported generator is the data swarm's
g or personal best that is best on fresh items against the takers of the last
step (swarm/search/selection.py).

One checkpoint holds both PSO states, the pool and the step; finalize()
exports the best taker to best/taker/ and adds summary.json's ``adversarial``
block (:func:`finalize_adversarial`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Annotated, Any, Callable

import torch
from annotated_types import Ge, Interval

from generators.takers.lora_panel import TakerPanel
from objectives import metrics
from objectives.tasks.item import Item
from swarm.config import settings
from swarm.runtime.errors import ConfigError, RunStopped
from swarm.runtime.files import atomic_dir
from swarm.search.context import RunContext, SearchResult
from swarm.search.evaluate import Evaluation, evaluation_summary, step_seed
from swarm.search.methods.adversarial_pool import (
    Feed,
    confirmed_items,
    drift,
    generated_slots,
    initial_pool,
    pick_items,
    pool_items,
    replace_in_pool,
)
from swarm.search.population import populate
from swarm.search.pso import PSO
from swarm.search.selection import swarm_candidates


@dataclass(kw_only=True)  # after SearchResult's defaulted fields
class AdversarialResult(SearchResult):
    best_taker: torch.Tensor  # the model swarm's global best g
    initial_taker: torch.Tensor  # the best taker expert on the initial (dev) pool
    initial_generator: torch.Tensor  # the best initial data swarm particle at step 1
    initial_taker_name: str  # the expert the best initial taker is
    taker_initial_best: float
    taker_best_utility: float

    def extra_summary(self, ctx: RunContext, heldout: Evaluation,
                      evaluate_heldout: Callable[[torch.Tensor], Evaluation], weights: dict[str, float]) -> dict[str, Any]:
        """summary.json's ``adversarial`` block; exports best/taker/ too."""
        return {"adversarial": finalize_adversarial(ctx, self, heldout, evaluate_heldout, weights)}


# ------------------------------------------------------------------------------ the loop

def _pool_utility(ctx: RunContext, pool: list[dict], step: int) -> torch.Tensor:
    """Every panel taker's mean judged score on the pool [T] (NaN when nothing was scored); takers sharded."""
    scores = ctx.setup.evaluator.score_sharded(pool_items(pool))
    total = scores.missing + int(scores.mask.sum())
    limit = ctx.cfg.judge.max_missing_fraction
    if total and scores.missing / total > limit:
        raise RunStopped(
            f"judge: {scores.missing / total:.0%} of pool scores missing at step {step} "
            f"(> judge.max_missing_fraction={limit}); "
            f"{f'checkpoint of step {step - 1} kept' if step > 1 else 'no step completed yet'}; run the same command again to resume"
        )
    return metrics.taker_means(scores.values[None], scores.mask[None])[0]


def _should_stop(data: PSO, model: PSO) -> str | None:
    a, b = data.should_stop(), model.should_stop()
    if "max_steps" in (a, b):
        return "max_steps"
    return "patience" if a and b else None


def adversarial_swarms(ctx: RunContext, *, pool_size: Annotated[int, Ge(1)], replace_fraction: Annotated[float, Interval(ge=0, le=1)],
                       feed: Feed) -> AdversarialResult:
    """The dual loop (module docstring); resumes from ``ctx.state``. method=adversarial."""
    cfg, setup = ctx.cfg, ctx.setup
    panel: TakerPanel = setup.takers
    if not isinstance(panel, TakerPanel):
        raise ConfigError("method=adversarial: the model swarm moves LoRA takers of one base; these search takers are "
                          "independent models (use taker=zoo_lora, or hf/smollm2 takers of one base)")
    if not callable(getattr(setup.judge, "confirm", None)):
        raise ConfigError(f"judge._target_: {cfg.judge._target_} has no confirm(items) (objectives/judging/judges.py: "
                          "Judge); Adversarial Swarms needs it to check a generated item's answer before its takers train on it")
    if len(panel) < 2:
        raise ConfigError(f"taker.adapters: the model swarm of method=adversarial needs at least 2 search takers, got {len(panel)}")
    if pool_size > len(setup.task.dev):
        raise ConfigError(f"method.pool_size: must be in [1, {len(setup.task.dev)}] (the task's dev items), got {pool_size}")
    slots = generated_slots(pool_size, round(replace_fraction * pool_size), cfg.seed + 2)
    _, x0 = populate(setup.writer.model.expert_vectors, cfg.pso.n_particles, cfg.pso.include_base, cfg.seed)
    data = PSO(x0, seed=cfg.seed, **settings(cfg.pso))  # pso.n_particles and pso.include_base: the data swarm's
    model = PSO(panel.vectors, seed=cfg.seed + 1, **settings(cfg.pso))
    taker_experts = panel.vectors.clone()
    if ctx.state is None:
        pool = initial_pool(list(setup.task.dev), pool_size, cfg.seed)
        initial = {"taker": -1, "generator": -1}
    else:
        s = ctx.state
        data.load_state_dict(s["pso"])
        model.load_state_dict(s["taker_pso"])
        pool, initial = s["pool"], dict(s["initial"])
        panel.vectors = s["takers"].clone()
    while _should_stop(data, model) is None:
        started = time.time()
        step = data.steps_done + 1
        # 1. the model swarm (and its incumbent g) on the pool P_s
        panel.vectors = torch.cat([model.x, model.g[None]]) if step > 1 else model.x.clone()
        means = _pool_utility(ctx, pool, step)
        taker_incumbent = means[-1].item() if step > 1 else None
        if taker_incumbent is not None:
            model.rescore_incumbent(taker_incumbent)
        taker_utility = means[: model.n]
        model.tell(taker_utility)
        # 2. the data swarm against the takers just scored
        panel.vectors = model.x.clone()
        ev = ctx.evaluate(data.x, step)
        incumbent = None
        if step > 1:
            incumbent = ctx.evaluate(data.g[None], step).utility[0].item()
            data.rescore_incumbent(incumbent)
        data.tell(ev.utility)
        if step == 1:
            initial = {"taker": model.g_index, "generator": data.g_index}
        # 3. the pool P_{s+1}
        if feed == "reference":
            pool, replaced = drift(pool, confirmed_items(ev, setup.judge), replace_fraction, step_seed(cfg.seed + 2, step), step)
        else:
            new = pick_items(ev, {r["input"] for r in pool}, len(slots), setup.judge, feed, step_seed(cfg.seed + 2, step))
            pool, replaced = replace_in_pool(pool, new, slots, step), len(new)
        extra = {
            "best": data.g_util, "worst": data.worst_util, "step_length": data.step_length,
            "restarts": int(data.restarted.sum()), "incumbent": incumbent,
            "taker_utility": [(None if math.isnan(u) else u) for u in taker_utility.tolist()],
            "taker_incumbent": taker_incumbent, "taker_best": model.g_util, "taker_worst": model.worst_util, "taker_restarts": int(model.restarted.sum()),
            "pool/replaced": replaced, "pool/generated": sum(r["source"] != "dev" for r in pool),
        }
        # 4. both swarms move
        data.step()
        model.step()
        ctx.record(step, ev, started, extra)
        ctx.save({
            "method": "adversarial", "step": step,
            "pso": data.state_dict(), "taker_pso": model.state_dict(), "pool": pool, "initial": initial,
            "takers": panel.vectors, "orig_means": setup.evaluator.orig_means,
        })
    return AdversarialResult(
        best=data.g.clone(), initial_best=data.initial_best, best_utility=data.g_util, steps=data.steps_done,
        stop_reason=_should_stop(data, model), best_taker=model.g.clone(),
        initial_taker=taker_experts[initial["taker"]].clone(), initial_generator=x0[initial["generator"]].clone(),
        initial=x0[initial["generator"]],  # finalize scores its data once, for the yardstick and this block
        initial_taker_name=panel.names[initial["taker"]], taker_initial_best=model.initial_best,
        taker_best_utility=model.g_util, candidates=swarm_candidates(data, cfg.select.candidates),
    )


# ------------------------------------------------------------------------------ the summary

def _means(ctx: RunContext, panel: TakerPanel, items: list[Item]) -> tuple[list[float | None], int]:
    """Each taker's mean judged score on the valid items, and how many items were scored (collective)."""
    valid = [it for it in items if it.valid]
    scores = ctx.setup.evaluator.score_sharded(valid, panel)
    means = metrics.taker_means(scores.values[None], scores.mask[None])[0].tolist()
    return [None if math.isnan(m) else m for m in means], len(valid)


def finalize_adversarial(
    ctx: RunContext,
    result: AdversarialResult,
    final: Evaluation,
    evaluate_heldout: Callable[[torch.Tensor], Evaluation],
    weights: dict[str, float],
) -> dict[str, Any]:
    """summary.json's ``adversarial`` block; exports best/taker/ (main process).

    ``final`` is finalize()'s held-out evaluation of the best generator's data
    (best/data.jsonl); ``evaluate_heldout(vector)`` writes and scores the
    initial best generator's data the same way (same seed, same held-out takers).
    """
    setup = ctx.setup
    if torch.equal(result.initial_generator, result.best):
        initial_data = final
    else:
        initial_data = evaluate_heldout(result.initial_generator)  # collective: every process
    names = setup.heldout.names
    init_sum, final_sum = evaluation_summary(initial_data, names, weights), evaluation_summary(final, names, weights)
    block: dict[str, Any] = {
        "pool_size": ctx.cfg.method.pool_size,
        "replace_fraction": ctx.cfg.method.replace_fraction,
        "initial_taker": result.initial_taker_name,
        "taker_initial_utility": result.taker_initial_best,
        "taker_best_utility": result.taker_best_utility,
        "difficulty": {  # on the held-out takers: fixed, never seen by either swarm
            "initial_generator": init_sum["objective"]["difficulty"],
            "best_generator": final_sum["objective"]["difficulty"],
        },
        "heldout_takers": {"initial_generator": init_sum["takers"], "best_generator": final_sum["takers"]},
    }
    pair = TakerPanel(setup.takers.model, torch.stack([result.initial_taker, result.best_taker]),
                      ["initial_taker", "best_taker"], setup.takers.settings)
    for key, items in (("test", list(setup.task.test)), ("generated", final.results[0].items)):
        (initial, best), n = _means(ctx, pair, items)
        block[key] = {"initial_taker": initial, "best_taker": best, "n_items": n}
    if ctx.is_main:
        with atomic_dir(ctx.run_dir / "best" / "taker") as tmp:  # a kill never leaves half an adapter
            setup.takers.model.export(result.best_taker, tmp)
    return block
