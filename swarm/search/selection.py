"""Fresh selection: the exported generator is chosen on items no search step scored.

A search's best recorded utility is the maximum of many noisy estimates (a few
dozen items each), so it overstates the utility of the point it belongs to:
the winner's curse. Every method that searches (data_swarms, adversarial's
data swarm, random_search, cma_es, prompt_search) hands its best distinct
points to :func:`select` as ``SearchResult.candidates``, the best first; each
is re-scored on ``select.n_items`` fresh items, all written with one seed that
no search step uses (``SELECT_SEED_STEP``), by the search takers, and the one
best on those is exported (ties: the earlier candidate). The cost is
``select.candidates`` x ``select.n_items`` more items written and answered.

The result is summary.json's ``selection`` block; its items are
data/selection.jsonl (``particle``: the candidate's index), and
checkpoint/selection.json keeps it, so a run killed after the selection does
not score the candidates again.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import replace
from typing import Any, Callable, Sequence

import torch

from swarm.runtime.files import atomic_write_json, atomic_write_text, jsonl
from swarm.search.context import Candidate, RunContext, SearchResult, step_rows
from swarm.search.evaluate import SELECT_SEED_STEP, Evaluation, step_seed
from swarm.search.pso import PSO

STORED = "checkpoint/selection.json"

log = logging.getLogger("dswarm")


def _distinct(entries: Sequence[Any], k: int, point: Callable[[Any], tuple[torch.Tensor, Any]]) -> list[Any]:
    """The first ``k`` entries whose (vector, prompt) ``point`` differs from every earlier kept one."""
    kept: list[Any] = []
    for e in entries:
        if len(kept) == k:
            break
        vector, prompt = point(e)
        if not any(prompt == q and torch.equal(vector, w) for w, q in map(point, kept)):
            kept.append(e)
    return kept


def swarm_candidates(pso: PSO, k: int) -> list[Candidate]:
    """g, then the other personal bests by recorded utility (ties: the lower index), distinct points only."""
    util = pso.p_util.tolist()
    order = [pso.g_index] + sorted((i for i in range(pso.n) if i != pso.g_index), key=lambda i: (-util[i], i))
    ranked = [Candidate(pso.p[i].clone(), util[i], "g" if i == pso.g_index else f"p/{i}") for i in order]
    return _distinct(ranked, k, lambda c: (c.vector, c.prompt))


def keep_best(pool: list[dict], vectors: torch.Tensor, utilities: Sequence[float], step: int, k: int,
              prompts: Sequence[Any] | None = None) -> list[dict]:
    """A baseline's running best points: ``pool`` with this step's candidates, the ``k`` best distinct.

    Entries are checkpointable dicts {"vector", "utility", "source", "prompt"} (``prompt``: the method's own
    form of it); a NaN/inf utility counts as -inf; ties keep the earlier entry.
    """
    prompts = [None] * len(utilities) if prompts is None else prompts
    new = [{"vector": vectors[i].clone(), "utility": float(u) if math.isfinite(u) else -math.inf,
            "source": f"step {step}/{i}", "prompt": prompts[i]} for i, u in enumerate(utilities)]
    ranked = sorted(pool + new, key=lambda e: -e["utility"])  # stable: earlier entries first among ties
    return _distinct(ranked, k, lambda e: (e["vector"], e["prompt"]))


def as_candidates(pool: list[dict], prompt: Callable[[Any], Any] = lambda p: p) -> list[Candidate]:
    """``keep_best``'s entries as candidates; ``prompt`` turns the method's form of a prompt into a Prompt."""
    return [Candidate(e["vector"], e["utility"], e["source"], prompt(e["prompt"])) for e in pool]


def evaluate_candidates(ctx: RunContext, candidates: Sequence[Candidate], seed: int, n_prompts: int) -> Evaluation:
    """Every candidate's items from one seed, scored by the search takers like one step's particles."""
    ev_ = ctx.setup.evaluator
    vectors = torch.stack([c.vector for c in candidates])
    if all(c.prompt is None for c in candidates):
        return ev_.evaluate(vectors, seed, n_prompts)
    return ev_.evaluate_prompts(vectors, [c.prompt for c in candidates], seed, n_prompts)


def pick(fresh: Sequence[float]) -> int:
    """The candidate best on fresh items; ties (and NaN, which never wins) go to the earlier candidate."""
    return max(range(len(fresh)), key=lambda i: (fresh[i] if math.isfinite(fresh[i]) else -math.inf, -i))


def _block(candidates: Sequence[Candidate], ev: Evaluation, n_items: int) -> dict[str, Any]:
    fresh = ev.utility.tolist()
    winner = pick(fresh)
    rows = [{"source": c.source, "in_sample": c.in_sample, "fresh": f, "exported": i == winner,
             "valid_fraction": v, **{f"fresh/{k}": comp[i].item() for k, comp in ev.components.items()}}
            for i, (c, f, v) in enumerate(zip(candidates, fresh, ev.valid_fraction.tolist()))]
    return {"candidates": rows, "exported": winner, "n_items": n_items, "seed_step": SELECT_SEED_STEP}


def _stored(ctx: RunContext, result: SearchResult, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The block a previous process computed for this very search's end (same steps, candidates, settings)."""
    path = ctx.run_dir / STORED
    stored = json.loads(path.read_text()) if path.exists() else None
    if not stored or stored.get("steps") != result.steps or stored.get("settings") != settings:
        return None
    block = stored["block"]
    if [(r["source"], r["in_sample"]) for r in block["candidates"]] != [(c.source, c.in_sample) for c in result.candidates]:
        return None
    return block


def select(ctx: RunContext, result: SearchResult) -> SearchResult:
    """``result`` with the candidate best on fresh items as ``best`` and summary.json's ``selection`` block
    (collective: every process); a result without candidates (no search) is returned as it is."""
    if not result.candidates:
        return result
    cfg = ctx.cfg
    settings = {"candidates": cfg.select.candidates, "n_items": cfg.select.n_items}
    candidates = result.candidates[: cfg.select.candidates]
    result = replace(result, candidates=candidates)
    block = _stored(ctx, result, settings)
    if block is None:
        n_prompts = max(1, math.ceil(cfg.select.n_items / cfg.generator.items_per_prompt))
        ev = ctx.check(evaluate_candidates(ctx, candidates, step_seed(cfg.seed, SELECT_SEED_STEP), n_prompts),
                       result.steps + 1, "selection")
        block = _block(candidates, ev, n_prompts * cfg.generator.items_per_prompt)
        if ctx.is_main:
            if cfg.data.save_steps:
                ctx.files.submit(atomic_write_text, ctx.run_dir / "data" / "selection.jsonl",
                                 jsonl(step_rows(ev, ctx.setup.takers.names)))
            ctx.files.submit(atomic_write_json, ctx.run_dir / STORED, {"steps": result.steps, "settings": settings, "block": block})
    chosen, row = candidates[block["exported"]], block["candidates"][block["exported"]]
    if ctx.is_main:
        log.info("selection: exported %s (in-sample %.4f, fresh %.4f) of %d candidates on %d fresh items each",
                 row["source"], row["in_sample"], row["fresh"], len(candidates), block["n_items"])
    return replace(result, best=chosen.vector, prompt=chosen.prompt, selection=block)
