"""The zoo's skill matrix: every taker's accuracy on the task's dev items and per problem form, and what each
generator writes.

Takers answer greedily: the ``n_dev`` dev items of the task the zoo is built
for (``dev_accuracy``, and per dev cluster) and ``n`` fresh problems per form.
Generators sample (temperature 1) from few-shot prompts drawn from the dev
pool as a run draws them; their valid items are sorted by cluster (the forms
of a cluster's dev items) and counted as copies when they are dev items.
"""
from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import torch

from generators.models.lora_model import LoraModel
from generators.prompts import few_shot_prompt, parse_items
from generators.zoo.problems import FORMS, GENERATOR_TEMPLATE, N_NEW, N_SHOTS, TAKER_STOP, TAKER_TEMPLATE, Fresh, form_of
from objectives.tasks.arith import canonical, parse_answer, solve

__all__ = ["measure_takers", "measure_generators", "generator_stats", "skill_table", "OTHER"]

OTHER = "other"  # a generated item of a form no dev cluster has


def _right(lm: LoraModel, problems: list[str]) -> list[bool]:
    prompts = [TAKER_TEMPLATE.format(input=p) for p in problems]
    answers = lm.generate(prompts, max_new_tokens=10, batch_size=256, stop=TAKER_STOP)
    return [parse_answer(a) == solve(p) for p, a in zip(problems, answers)]


def measure_takers(takers: dict[str, tuple[Path, Path | None]], clusters: dict[str, list[str]], n: int, seed: int,
                   excluded: list[str]) -> dict[str, dict]:
    """Greedy accuracy of each taker (a model dir, optionally with a LoRA dir) on the dev items (all of them and
    per cluster) and on ``n`` fresh problems per form. Takers of one base share one loaded model."""
    torch.set_num_threads(1)
    rng, fresh = random.Random(f"eval-takers-{seed}"), Fresh(excluded)
    by_form = [(f, fresh(f, rng)) for f in FORMS for _ in range(n)]
    dev = [(c, p) for c, items in clusters.items() for p in items]
    out: dict[str, dict] = {"dev_accuracy": {}, "dev_by_cluster": {}, "forms": {}}
    models: dict[tuple[Path, bool], LoraModel] = {}
    for name, (model_dir, adapter) in takers.items():
        key = (model_dir, adapter is not None)
        if key not in models:
            models[key] = LoraModel(model_dir, [a for m, a in takers.values() if m == model_dir and a is not None] if adapter else [])
        lm = models[key]
        if adapter is not None:
            lm.load(lm.expert_vectors[lm.adapter_dirs.index(adapter)])
        right = _right(lm, [p for _, p in dev] + [p for _, p in by_form])
        dev_right, form_right = right[: len(dev)], right[len(dev):]
        out["dev_accuracy"][name] = round(sum(dev_right) / len(dev), 3)
        per = Counter(c for (c, _), ok in zip(dev, dev_right) if ok)
        out["dev_by_cluster"][name] = {c: round(per[c] / len(items), 3) for c, items in clusters.items()}
        per = Counter(f for (f, _), ok in zip(by_form, form_right) if ok)
        out["forms"][name] = {f: round(per[f] / n, 3) for f in FORMS}
    return out


def generator_stats(texts: list[str], clusters: dict[str, list[str]]) -> dict:
    """Valid share, uniqueness, copies of dev items and cluster shares of the items in generated lists."""
    items = [it for t in texts for it in parse_items(t, N_NEW, N_SHOTS + 1)]
    valid = [canonical(it) for it in items if it is not None and solve(canonical(it)) is not None]
    home = {}  # form -> the cluster whose dev items have it most often
    for c, members in clusters.items():
        for form, count in Counter(map(form_of, members)).items():
            if count > home.get(form, ("", 0))[1]:
                home[form] = (c, count)
    shares = Counter(home.get(form_of(v), (OTHER, 0))[0] for v in valid)
    dev = {p for members in clusters.values() for p in members}
    per = max(1, len(valid))
    return {
        "valid": round(len(valid) / max(1, len(items)), 3),
        "unique": round(len(set(valid)) / per, 3),
        "dev_copies": round(sum(v in dev for v in valid) / per, 3),
        "shares": {c: round(shares[c] / per, 3) for c in [*clusters, OTHER]},
    }


def generator_prompts(pool: list[str], n_lists: int, seed: int) -> list[str]:
    """Few-shot prompts as a run writes them: ``N_SHOTS`` examples drawn from the dev pool."""
    rng = random.Random(f"eval-generators-{seed}")
    return [few_shot_prompt(rng.sample(pool, N_SHOTS), N_NEW, GENERATOR_TEMPLATE) for _ in range(n_lists)]


def measure_generators(base_dir: Path, generators: dict[str, Path], clusters: dict[str, list[str]], pool: list[str],
                       n_lists: int, seed: int) -> dict[str, dict]:
    """``generator_stats`` of every expert and of the base (the zero vector), sampled at temperature 1."""
    torch.set_num_threads(1)
    prompts = generator_prompts(pool, n_lists, seed)
    lm = LoraModel(base_dir, list(generators.values()))
    out = {}
    for name, vec in [*zip(generators, lm.expert_vectors), ("base", torch.zeros(lm.dim))]:
        lm.load(vec)
        texts = lm.generate(prompts, max_new_tokens=16 * N_NEW, temperature=1.0, batch_size=64, seed=seed)
        out[name] = generator_stats(texts, clusters)
    return out


def skill_table(matrix: dict, heldout: tuple[str, ...] = ()) -> str:
    """The skill matrix as markdown: takers x (dev, dev clusters, forms), generators x what they write."""
    clusters = list(next(iter(matrix["dev_by_cluster"].values())))
    head = ["dev", *(f"dev {c}" for c in clusters), *FORMS]
    lines = [f"| taker | {' | '.join(head)} |", "|---" * (len(head) + 1) + "|"]
    for name, acc in matrix["dev_accuracy"].items():
        tag = " (held-out)" if name in heldout else ""
        row = [acc, *matrix["dev_by_cluster"][name].values(), *matrix["forms"][name].values()]
        lines.append(f"| {name}{tag} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
    head = ["valid", "unique", "dev copies", *clusters, OTHER]
    lines += ["", f"| generator | {' | '.join(head)} |", "|---" * (len(head) + 1) + "|"]
    for name, g in matrix["generators"].items():
        row = [g["valid"], g["unique"], g["dev_copies"], *g["shares"].values()]
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
    return "\n".join(lines)
