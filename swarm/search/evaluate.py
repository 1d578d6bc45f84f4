"""Evaluate particles: each generator writes items, the takers answer, the judge scores,
the objective turns the scores into one utility per particle.

This is the one place where models meet objectives. A particle's result
depends only on (its vector, the step seed), never on which process or batch
evaluated it, so sharding across processes leaves the results unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from generators.takers.lora_panel import TakerPanel
from generators.takers.specs import heldout_groups
from generators.writer import Prompt, Writer
from objectives import metrics
from objectives.contamination import rate
from objectives.endpoints import Counts, Usage, merge, since
from objectives.judging.judges import Judge
from objectives.judging.scores import Scores, defeat_all, format_valid_sets, score_sets, stack
from objectives.realism import Realism
from objectives.tasks.item import Item
from swarm.runtime.dist import Dist
from swarm.runtime.progress import phase


@dataclass
class ParticleResult:
    """What one particle's evaluation produced; gathered from every process."""

    items: list[Item]
    scores: Scores
    realism: torch.Tensor  # [N] per-item realism in [0, 1] (0 for invalid items)


@dataclass
class Evaluation:
    """One step's evaluation of all particles."""

    results: list[ParticleResult]
    components: dict[str, torch.Tensor]  # name -> [P]
    utility: torch.Tensor  # [P]
    valid_fraction: torch.Tensor  # [P] format parsed and answer confirmed (valid/answer)
    missing: int = 0
    scored: int = field(default=0)
    valid_format: torch.Tensor | None = None  # [P] format parsed (valid/format)
    defeat_all: torch.Tensor | None = None  # [P] scored items every taker got wrong (< 0.5)
    seconds: dict[str, float] = field(default_factory=dict)  # this process's wall time per phase (generate, answer, judge)
    usage: dict[str, Counts] = field(default_factory=dict)  # endpoint traffic since the last evaluation, every process
    contamination: torch.Tensor | None = None  # [P] share of checked items at or over the contamination threshold
    overlap: torch.Tensor | None = None  # [P] mean n-gram overlap of the checked items

    @property
    def missing_fraction(self) -> float:
        total = self.missing + self.scored
        return self.missing / total if total else 0.0


def step_seed(seed: int, step: int) -> int:
    """The seed every particle of a step shares: common random numbers make particles comparable.

    Distinct steps below 2**31 - 1 (a prime) give distinct seeds; the steps above
    ``pso.max_steps``'s bound are reserved for data no search step may see.
    """
    return (seed * 1_000_003 + step * 7_919) % (2**31 - 1)


EXPORT_SEED_STEP = 1_000_000  # the final dataset (best/data.jsonl, the held-out evaluation)
SELECT_SEED_STEP = 2_000_000  # the fresh items the exported generator is chosen on (swarm/search/selection.py)
RESERVED_STEPS = (EXPORT_SEED_STEP, SELECT_SEED_STEP)  # all above swarm.config.search.MAX_STEPS


class Evaluator:
    """Scores particles' items with a taker panel and turns them into utilities.

    A step runs three phases, each over all of this process's particles at
    once: generate (one multi-LoRA generation for every particle), answer
    (every search taker on every distinct item, one multi-LoRA pass) and
    judge (every answer in one call). With ``progress`` each phase prints one
    line with its rate (items/s); an Evaluation carries each phase's seconds."""

    def __init__(
        self,
        writer: Writer,
        takers: TakerPanel,
        judge: Judge,
        objective: Callable[[metrics.ObjectiveInputs, torch.Tensor], tuple[dict[str, torch.Tensor], torch.Tensor]],
        realism: Realism,
        dist: Dist,
        progress: bool = False,
        usage: Usage | None = None,
    ) -> None:
        self.writer = writer
        self.takers = takers
        self.judge = judge
        self.objective = objective
        self.realism = realism
        self.dist = dist
        self.progress = progress
        self.orig_means: torch.Tensor | None = None
        self.clock: dict[str, float] = {}  # phase -> seconds since the current evaluation began
        self.usage = usage or Usage()  # the ledger this process's endpoint clients write into
        self.total: dict[str, Counts] = {}  # every process's endpoint traffic so far (kept in the checkpoint)
        self._seen: dict[str, Counts] = {}

    def traffic(self) -> dict[str, Counts]:
        """Every process's endpoint traffic since the last call, added to ``total``; collective (all processes)."""
        now = self.usage.snapshot()
        mine, self._seen = since(now, self._seen), now
        delta = merge(self.dist.gather({self.dist.rank: mine}, self.dist.world))
        self.total = merge([self.total, delta])
        return delta

    def score_sets(
        self, item_sets: Sequence[Sequence[Item]], takers: TakerPanel | None = None, which: Sequence[int] | None = None
    ) -> list[Scores]:
        """Scores of each item set by the panel's takers (``which``: a subset of them), one pass each phase."""
        panel = takers or self.takers
        chosen = list(range(len(panel))) if which is None else list(which)

        def answer_all(inputs: list[str]) -> list[list[str]]:
            with phase("answer", len(inputs) * len(chosen), "answer", self.progress, self.clock) as tick:
                return panel.answer_all(inputs, chosen, progress=tick)

        def judge(items: list[Item], answers: list[str]) -> list[float | None]:
            with phase("judge", len(items), "item", self.progress, self.clock) as tick:
                scores = self.judge.score(items, answers)
                tick(len(items))
            return scores

        return score_sets(item_sets, answer_all, len(chosen), judge)

    def score(self, items: Sequence[Item], takers: TakerPanel | None = None) -> Scores:
        return self.score_sets([items], takers)[0]

    def score_sharded(self, items: Sequence[Item], takers: TakerPanel | None = None) -> Scores:
        """``score`` with the takers sharded over processes; the same Scores on every process."""
        panel = takers or self.takers
        if self.dist.world == 1:
            return self.score(items, panel)
        shard = self.dist.shard(len(panel))
        part = self.score_sets([items], panel, shard)[0] if shard else None
        mine = {t: Scores(part.values[j : j + 1], part.valid, part.missing if j == 0 else 0) for j, t in enumerate(shard)}
        rows = self.dist.gather(mine, len(panel))
        return Scores(torch.cat([r.values for r in rows]), rows[0].valid, sum(r.missing for r in rows))

    def result(self, items: list[Item], scores: Scores) -> ParticleResult:
        return self.results([items], [scores])[0]

    def results(self, item_sets: Sequence[list[Item]], scores: Sequence[Scores]) -> list[ParticleResult]:
        """Each item set's result; realism scores the texts of every set in one pass."""
        texts = [[item.input if item.valid else "" for item in items] for items in item_sets]
        realism = self.realism.score([text for row in texts for text in row]).split([len(row) for row in texts])
        return [ParticleResult(items, sc, r) for items, sc, r in zip(item_sets, scores, realism)]

    def write(self, vectors: torch.Tensor, seed: int, n_prompts: int, prompt: Prompt | None = None) -> list[list[Item]]:
        """Every row's items, one multi-LoRA generation (the generate phase); ``prompt``: see Writer.write_each."""
        total = len(vectors) * n_prompts * self.writer.settings.items_per_prompt
        with phase("generate", total, "item", self.progress, self.clock) as tick:
            return self.writer.write_each(vectors, seed, n_prompts, progress=tick, prompt=prompt)

    def original_means(self, items: Sequence[Item], takers: TakerPanel | None = None) -> torch.Tensor:
        """Per-taker mean score on the task's original dev items (novelty's reference), computed once."""
        scores = self.score_sharded(items, takers)
        return metrics.taker_means(scores.values[None], scores.mask[None])[0]

    def evaluate(
        self,
        vectors: torch.Tensor,
        seed: int,
        n_prompts: int | None = None,
        takers: TakerPanel | None = None,
        orig_means: torch.Tensor | None = None,
    ) -> Evaluation:
        """Evaluate every row of ``vectors`` with one shared seed.

        The particles are sharded over processes; with fewer particles than
        processes (the final evaluation, one-candidate baselines) every process
        writes the items and the takers are sharded instead.
        """
        self.clock = {}
        n_prompts = n_prompts or self.writer.settings.prompts_per_step
        n = vectors.shape[0]
        if n >= self.dist.world:
            shard = self.dist.shard(n)
            mine_vectors = vectors if len(shard) == n else vectors[shard]  # one process: the PSO's own tensor
            item_sets = self.write(mine_vectors, seed, n_prompts)
            scores = self.score_sets(item_sets, takers)
            mine = dict(zip(shard, self.results(item_sets, scores)))
            results = self.dist.gather(mine, n)
        else:
            results = [self.result(items, self.score_sharded(items, takers)) for items in self.write(vectors, seed, n_prompts)]
        ev = self.combine(results, self.orig_means if orig_means is None else orig_means)
        ev.seconds = dict(self.clock)  # a copy: scoring after this evaluation must not add to its phases
        ev.usage = self.traffic()
        return ev

    def evaluate_prompts(self, vectors: torch.Tensor, prompts: Sequence[Prompt | None], seed: int, n_prompts: int) -> Evaluation:
        """Row i of ``vectors`` writes with ``prompts[i]`` (one generation each, takers sharded), scored as one step."""
        self.clock = {}
        results = []
        for vector, prompt in zip(vectors, prompts):
            items = self.write(vector[None], seed, n_prompts, prompt)[0]
            results.append(self.result(items, self.score_sharded(items)))
        ev = self.combine(results, self.orig_means)
        ev.seconds = dict(self.clock)
        return ev

    def evaluate_items(self, items: list[Item], takers: TakerPanel | None = None, orig_means: torch.Tensor | None = None) -> Evaluation:
        """One fixed item set as a one-particle Evaluation, takers sharded over processes."""
        result = self.result(items, self.score_sharded(items, takers))
        return self.combine([result], self.orig_means if orig_means is None else orig_means)

    def combine(self, results: list[ParticleResult], orig_means: torch.Tensor) -> Evaluation:
        S, mask, valid = stack([r.scores for r in results])
        realism = torch.stack([r.realism for r in results])
        valid_fraction = valid.float().mean(dim=1)
        inputs = metrics.ObjectiveInputs(
            scores=S,
            mask=mask,
            orig_means=orig_means,
            similarity=realism,
            valid=valid,
        )
        components, utility = self.objective(inputs, valid_fraction)
        missing = sum(r.scores.missing for r in results)
        valid_format = format_valid_sets([r.items for r in results]).float().mean(dim=1)
        ev = Evaluation(results, components, utility, valid_fraction, missing, int(mask.sum()), valid_format, defeat_all(S, mask))
        screen = self.writer.contamination
        if screen is not None:
            ev.contamination = torch.tensor([rate(r.items, screen.threshold) for r in results])
            ev.overlap = torch.tensor([_mean([it.overlap for it in r.items if it.overlap is not None]) for r in results])
        return ev


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def evaluation_summary(ev: Evaluation, names: list[str], weights: dict[str, float]) -> dict[str, Any]:
    """Every objective component, the run's utility, and each taker's mean on one dataset."""
    result = ev.results[0]
    mask = result.scores.mask
    means = [(result.scores.values[t][mask[t]].mean().item() if mask[t].any() else None) for t in range(len(names))]
    return {
        "utility": ev.utility[0].item(),
        "objective": {k: v[0].item() for k, v in ev.components.items()},
        "weights": weights,
        "valid_fraction": ev.valid_fraction[0].item(),
        "valid_format": ev.valid_format[0].item(),
        "defeat_all": ev.defeat_all[0].item(),
        "n_items": len(result.items),
        "takers": dict(zip(names, means)),
        "missing": ev.missing,
    }


def validity_report(mode: str, groups: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """For each taker group's ``evaluation_summary``: difficulty on the valid items and the valid fraction,
    apart, whether the utility multiplies them (``objective.validity=multiply``) or not (``none``)."""
    return {"mode": mode, "groups": {name: {"difficulty_on_valid": g["objective"]["difficulty"],
                                            "valid_fraction": g["valid_fraction"], "n_items": g["n_items"]}
                                     for name, g in groups.items()}}


def taker_groups(ev: Evaluation, names: list[str], orig_means: torch.Tensor, evaluator: Evaluator, weights: dict[str, float]) -> dict[str, Any]:
    """``evaluation_summary`` of the same items for each group of held-out takers (``heldout_groups``):
    the scores are sliced, never recomputed, so every group scores exactly the same final dataset."""
    result, out = ev.results[0], {}
    for group, rows in heldout_groups(names).items():
        idx = torch.tensor(rows)
        values = result.scores.values[idx]
        missing = int((~torch.isfinite(values) & result.scores.valid).sum())
        sub = evaluator.combine([ParticleResult(result.items, Scores(values, result.scores.valid, missing), result.realism)],
                                orig_means[idx])
        out[group] = evaluation_summary(sub, [names[i] for i in rows], weights)
    return out
