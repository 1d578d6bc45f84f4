"""The zoo's skill matrix: every taker's accuracy per difficulty bin, and what each generator expert writes.

Takers answer greedily, ``n`` fresh problems per bin; generators sample
(temperature 1) from few-shot prompts of the task's dev kind; their valid
items are sorted into bins (``problems.bin_of``).
"""
from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import torch

from generators.models.lora_model import LoraModel
from generators.prompts import few_shot_prompt, parse_items
from generators.zoo.problems import BINS, GENERATOR_TEMPLATE, N_NEW, N_SHOTS, TAKER_STOP, TAKER_TEMPLATE, bin_of, sample
from objectives.tasks.arith import FAMILIES, canonical, parse_answer, sample_problem, solve

__all__ = ["measure_takers", "measure_generators", "generator_stats", "skill_table"]


def measure_takers(takers: dict[str, Path], n: int, seed: int) -> dict[str, dict[str, float]]:
    """Greedy accuracy of each taker (its own model dir) on ``n`` fresh problems per bin."""
    torch.set_num_threads(1)
    rng = random.Random(f"eval-takers-{seed}")
    problems = [(b, sample(b, rng)) for b in BINS for _ in range(n)]
    prompts = [TAKER_TEMPLATE.format(input=p) for _, p in problems]
    acc = {}
    for name, model_dir in takers.items():
        answers = LoraModel(model_dir, []).generate(prompts, max_new_tokens=10, batch_size=256, stop=TAKER_STOP)
        right = Counter(b for (b, p), a in zip(problems, answers) if parse_answer(a) == solve(p))
        acc[name] = {b: round(right[b] / n, 3) for b in BINS}
    return acc


def generator_stats(texts: list[str]) -> dict:
    """Valid share, uniqueness and bin shares of the items in generated lists."""
    items = [it for t in texts for it in parse_items(t, N_NEW, N_SHOTS + 1)]
    valid = [canonical(it) for it in items if it is not None and solve(canonical(it)) is not None]
    shares = Counter(bin_of(v) for v in valid)
    return {
        "valid": round(len(valid) / max(1, len(items)), 3),
        "unique": round(len(set(valid)) / max(1, len(valid)), 3),
        "shares": {b: round(shares[b] / max(1, len(valid)), 3) for b in BINS},
    }


def generator_prompts(n_lists: int, seed: int) -> list[str]:
    """Few-shot prompts as a run writes them: examples from the task's dev families."""
    rng = random.Random(f"eval-generators-{seed}")
    pool = [sample_problem(rng.choice(FAMILIES), rng) for _ in range(200)]
    return [few_shot_prompt(rng.sample(pool, N_SHOTS), N_NEW, GENERATOR_TEMPLATE) for _ in range(n_lists)]


def measure_generators(base_dir: Path, generators: dict[str, Path], n_lists: int, seed: int) -> dict[str, dict]:
    """``generator_stats`` of every expert and of the base (the zero vector), sampled at temperature 1."""
    torch.set_num_threads(1)
    prompts = generator_prompts(n_lists, seed)
    lm = LoraModel(base_dir, list(generators.values()))
    out = {}
    for name, vec in [*zip(generators, lm.expert_vectors), ("base", torch.zeros(lm.dim))]:
        lm.load(vec)
        out[name] = generator_stats(lm.generate(prompts, max_new_tokens=16 * N_NEW, temperature=1.0, batch_size=64, seed=seed))
    return out


def skill_table(matrix: dict, heldout: tuple[str, ...] = ()) -> str:
    """The skill matrix as two markdown tables (takers x bins, generators x bin shares)."""
    bins = " | ".join(BINS)
    lines = [f"| taker | {bins} |", "|---" * (len(BINS) + 1) + "|"]
    for name, row in matrix["takers"].items():
        tag = " (held-out)" if name in heldout else ""
        lines.append(f"| {name}{tag} | " + " | ".join(f"{row[b]:.2f}" for b in BINS) + " |")
    lines += ["", f"| generator | valid | unique | {bins} |", "|---" * (len(BINS) + 3) + "|"]
    for name, g in matrix["generators"].items():
        shares = " | ".join(f"{g['shares'][b]:.2f}" for b in BINS)
        lines.append(f"| {name} | {g['valid']:.2f} | {g['unique']:.2f} | {shares} |")
    return "\n".join(lines)
