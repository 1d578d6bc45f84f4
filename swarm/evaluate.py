"""Evaluate particles: each generator writes items, the takers answer, the judge scores,
the objective turns the scores into one utility per particle.

This is the one place where models meet objectives. A particle's result
depends only on (its vector, the step seed), never on which process or batch
evaluated it, so sharding across processes leaves the results unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch

from generators.takers import TakerPanel
from generators.writer import Writer
from objectives import metrics
from objectives.judges import Judge
from objectives.realism import Realism
from objectives.scores import Scores, score_items, stack
from objectives.tasks import Item
from swarm.dist import Dist


@dataclass(frozen=True)
class ObjectiveSettings:
    weights: Mapping[str, float]
    chunks: int
    novelty_eps: float


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
    valid_fraction: torch.Tensor  # [P]
    missing: int = 0
    scored: int = field(default=0)

    @property
    def missing_fraction(self) -> float:
        total = self.missing + self.scored
        return self.missing / total if total else 0.0


def step_seed(seed: int, step: int) -> int:
    """The seed every particle of a step shares: common random numbers make particles comparable."""
    return (seed * 1_000_003 + step * 7_919) % (2**31 - 1)


class Evaluator:
    """Scores particles' items with a taker panel and turns them into utilities."""

    def __init__(
        self,
        writer: Writer,
        takers: TakerPanel,
        judge: Judge,
        objective: ObjectiveSettings,
        realism: Realism,
        dist: Dist,
    ) -> None:
        self.writer = writer
        self.takers = takers
        self.judge = judge
        self.objective = objective
        self.realism = realism
        self.dist = dist
        self.orig_means: torch.Tensor | None = None

    def score(self, items: Sequence[Item], takers: TakerPanel | None = None) -> Scores:
        panel = takers or self.takers
        return score_items(items, panel.answer, len(panel), self.judge)

    def score_sharded(self, items: Sequence[Item], takers: TakerPanel | None = None) -> Scores:
        """``score`` with the takers sharded over processes; the same Scores on every process."""
        panel = takers or self.takers
        if self.dist.world == 1:
            return self.score(items, panel)
        mine = {
            t: score_items(items, lambda _, inputs, t=t: panel.answer(t, inputs), 1, self.judge)
            for t in self.dist.shard(len(panel))
        }
        rows = self.dist.gather(mine, len(panel))
        return Scores(torch.cat([r.values for r in rows]), rows[0].valid, sum(r.missing for r in rows))

    def result(self, items: list[Item], scores: Scores) -> ParticleResult:
        texts = [item.input if item.valid else "" for item in items]
        return ParticleResult(items, scores, self.realism.score(texts))

    def particle(self, vector: torch.Tensor, seed: int, n_prompts: int, takers: TakerPanel | None = None) -> ParticleResult:
        items = self.writer.write(vector, seed, n_prompts)
        return self.result(items, self.score(items, takers))

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
        n_prompts = n_prompts or self.writer.settings.prompts_per_step
        n = vectors.shape[0]
        if n >= self.dist.world:
            mine = {i: self.particle(vectors[i], seed, n_prompts, takers) for i in self.dist.shard(n)}
            results = self.dist.gather(mine, n)
        else:
            results = []
            for vector in vectors:
                items = self.writer.write(vector, seed, n_prompts)
                results.append(self.result(items, self.score_sharded(items, takers)))
        return self.combine(results, self.orig_means if orig_means is None else orig_means)

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
            chunks=self.objective.chunks,
            eps=self.objective.novelty_eps,
        )
        components = metrics.components(metrics.OBJECTIVES, inputs)
        utility = metrics.utility(components, self.objective.weights, valid_fraction)
        missing = sum(r.scores.missing for r in results)
        return Evaluation(results, components, utility, valid_fraction, missing, int(mask.sum()))
