"""The takers' pool of Adversarial Swarms (swarm/search/methods/adversarial.py): what enters it, and where.

The pool starts as a seeded sample of the task's dev items. Each step, generated
items whose answer the judge confirms (:func:`confirmed`) enter it:
``feed=hardest`` / ``feed=random`` put the step's hardest (or random) new items
into a fixed, seeded set of slots (:func:`pick_items`, :func:`replace_in_pool`),
so the other slots stay dev items; ``feed=reference`` replaces every slot with
probability ``replace_fraction`` by a random confirmed item (:func:`drift`), as
the authors' dual_swarm.py does, so the pool drifts toward generated items.
"""
from __future__ import annotations

from typing import Literal

import torch

from objectives.judging.judges import Judge
from objectives.tasks.item import Item
from swarm.search.evaluate import Evaluation


def initial_pool(dev: list[Item], size: int, seed: int) -> list[dict]:
    """A seeded sample of ``size`` dev items (in sampled order), each tagged with its source."""
    order = torch.randperm(len(dev), generator=torch.Generator().manual_seed(seed))[:size].tolist()
    return [{**dev[i].to_json(), "source": "dev"} for i in order]


def pool_items(pool: list[dict]) -> list[Item]:
    return [Item(r["input"], r["output"], r["valid"]) for r in pool]


Feed = Literal["hardest", "random", "reference"]  # which generated items enter the takers' pool, and where


def _candidates(ev: Evaluation, exclude: set[str]) -> list[tuple[float, float, int, int, Item]]:
    """Every new valid item with an answer, once: (mean taker score, -particle utility, particle, index, item).

    Sorted hardest first (lowest mean score; ties to the higher-utility particle, then generation order);
    inputs already in ``exclude`` (the pool) are skipped, a repeated input keeps its first (hardest) copy.
    """
    ranked = []
    for p, result in enumerate(ev.results):
        for n, item in enumerate(result.items):
            if not item.valid or item.output is None or item.input in exclude:
                continue
            scores = result.scores.values[:, n]
            scores = scores[torch.isfinite(scores)]
            if scores.numel():
                ranked.append((scores.mean().item(), -ev.utility[p].item(), p, n, item))
    ranked.sort(key=lambda r: r[:4])
    seen: set[str] = set()
    return [r for r in ranked if not (r[4].input in seen or seen.add(r[4].input))]


def confirmed(judge: Judge, items: list[Item]) -> list[bool]:
    """Whether the judge confirms each item's own answer (``Judge.confirm``): the verifier judge
    recomputes it, an LLM judge must give it a full score, the reference judge confirms nothing (a
    generated answer no judge can check may be wrong, and the takers must not be trained toward it)."""
    return judge.confirm(items) if items else []


def pick_items(ev: Evaluation, exclude: set[str], k: int, judge: Judge, feed: str = "hardest",
               seed: int = 0) -> list[Item]:
    """Up to ``k`` new items for the takers' pool, each with an answer the judge confirms.

    ``feed="hardest"``: lowest mean score of the current takers first (`_candidates`);
    ``feed="random"`` (a control): a seeded uniform order of the same candidates.
    Candidates are confirmed in that order, ``k`` at a time, until ``k`` pass.
    """
    if feed not in ("hardest", "random"):
        raise ValueError(f"feed must be hardest or random (reference: drift), got {feed!r}")
    if k <= 0:
        return []
    items = [r[4] for r in _candidates(ev, exclude)]
    if feed == "random":
        order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed)).tolist()
        items = [items[i] for i in order]
    chosen: list[Item] = []
    for start in range(0, len(items), k):
        if len(chosen) == k:
            break
        batch = items[start : start + k]
        chosen.extend(it for it, ok in zip(batch, confirmed(judge, batch)) if ok)
    return chosen[:k]


def confirmed_items(ev: Evaluation, judge: Judge) -> list[Item]:
    """Every new valid item of the step whose answer the judge confirms, each input once (``feed=reference``)."""
    items = [r[4] for r in _candidates(ev, set())]
    return [it for it, ok in zip(items, confirmed(judge, items)) if ok]


def drift(pool: list[dict], candidates: list[Item], fraction: float, seed: int, step: int) -> tuple[list[dict], int]:
    """``feed=reference``, as the authors' dual_swarm.py moves its pool: every slot, dev or generated, is replaced
    with probability ``fraction`` by a candidate drawn uniformly (with replacement), so the pool drifts from the
    dev items toward generated ones ((1 - fraction)^s of the dev items stay after s steps, on average).

    One seeded draw per slot for each of the two choices (replace?, which?); no candidate: no change.
    Returns the new pool and how many slots were replaced."""
    if not candidates:
        return list(pool), 0
    gen = torch.Generator().manual_seed(seed)
    hit = (torch.rand(len(pool), generator=gen) < fraction).tolist()
    pick = torch.randint(len(candidates), (len(pool),), generator=gen).tolist()
    new = [{**candidates[j].to_json(), "source": f"step_{step:03d}"} if h else r for r, h, j in zip(pool, hit, pick)]
    return new, sum(hit)


def generated_slots(size: int, k: int, seed: int) -> list[int]:
    """The pool slots that hold generated items: a seeded choice of ``k``, fixed for the run."""
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed))[:k].tolist()


def replace_in_pool(pool: list[dict], new: list[Item], slots: list[int], step: int) -> list[dict]:
    """A new pool with ``new`` in the first ``len(new)`` of ``slots`` (the rest unchanged)."""
    if len(new) > len(slots):
        raise ValueError(f"{len(new)} new items for {len(slots)} generated slots")
    pool = list(pool)
    for slot, item in zip(slots, new):
        pool[slot] = {**item.to_json(), "source": f"step_{step:03d}"}
    return pool
