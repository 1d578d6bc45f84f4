"""Build the zoo once per recipe, cache it, load it; the ``dswarm-zoo`` command.

Layout of ``<cache>/zoo/<size>-seed<seed>-<hash>/`` (docs/zoo.md):
``generator/base`` and ``generator/experts/<cluster>`` (PEFT LoRA dirs, one per cluster of the task's dev items),
``takers/<name>`` and ``heldout/<name>`` (HF model dirs, each its own model),
``lora_takers/<cluster>`` (LoRAs of one search taker, for method=adversarial),
``skill_matrix.json``, and ``zoo.json`` written last (a complete zoo).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

import torch
from safetensors.torch import load_file

from generators.models.cache import build_once, default_cache_dir
from generators.zoo.recipe import RECIPE_VERSION, RECIPES, Recipe, cluster_mix, dev_clusters, recipe_key, task_of
from generators.zoo.skills import measure_generators, measure_takers, skill_table
from generators.zoo.train import train_lora, train_scratch

__all__ = ["Zoo", "build_zoo", "main", "union_expert_job", "weights_digest"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Zoo:
    root: Path
    base_dir: Path                      # the generator base
    generators: dict[str, Path]         # generator experts (LoRA dirs of base_dir), one per cluster
    takers: dict[str, Path]             # search takers: model dirs
    heldout: dict[str, Path]            # held-out takers: model dirs of other sizes and seeds
    lora_base: Path                     # the search taker whose LoRAs are lora_takers
    lora_takers: dict[str, Path]        # LoRA dirs of lora_base (one base: the adversarial model swarm)
    clusters: dict[str, list[str]] = field(hash=False, compare=False)  # the dev items each expert was trained on
    skill_matrix: dict = field(hash=False, compare=False)


def weights_digest(paths: Iterable[Path]) -> str:
    """sha256 over every tensor (file's folder, name, dtype, shape, bytes) of these safetensors files, in path
    order: which weights a zoo (or an exported generator) is, whatever machine or time wrote the files. A zoo
    build is bit-identical on one machine; the v2 zoo built on another machine was not (docs/claim.md)."""
    h = hashlib.sha256()
    for path in sorted(paths):
        tensors = load_file(str(path))
        for name in sorted(tensors):
            t = tensors[name].contiguous()
            h.update(f"{path.parent.name}/{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _load(root: Path) -> Zoo:
    m = json.loads((root / "zoo.json").read_text())
    group = lambda kind, names: {n: root / kind / n for n in names}  # noqa: E731
    return Zoo(
        root=root, base_dir=root / "generator" / "base", generators=group("generator/experts", m["generators"]),
        takers=group("takers", m["takers"]), heldout=group("heldout", m["heldout"]),
        lora_base=root / "takers" / m["lora_base"], lora_takers=group("lora_takers", m["lora_takers"]),
        clusters=m["clusters"], skill_matrix=json.loads((root / "skill_matrix.json").read_text()),
    )


def _jobs(recipe: Recipe, tmp: Path, final: Path, seed: int, clusters: dict[str, list[str]], excluded: list[str],
          pool: list[str]) -> tuple[list[dict], list[dict]]:
    """The training jobs: models from scratch (longest first), then the LoRAs of two of them."""
    scratch = [{"label": "generator", "kind": "base", "spec": asdict(recipe.generator), "out_dir": tmp / "generator" / "base"}]
    scratch += [{"label": n, "kind": "qa", "spec": asdict(s), "phases": s.phases, "out_dir": tmp / kind / n}
                for kind, group in (("takers", recipe.takers), ("heldout", recipe.heldout)) for n, s in group.items()]
    cost = lambda j: j["spec"]["steps"] * j["spec"]["batch"] * j["spec"]["hidden"] ** 2 * j["spec"]["layers"]  # noqa: E731
    scratch.sort(key=cost, reverse=True)  # longest first: two workers finish together
    generator = {"base_dir": tmp / "generator" / "base", "base_name": final / "generator" / "base"}
    taker = {"base_dir": tmp / "takers" / recipe.lora_taker_base, "base_name": final / "takers" / recipe.lora_taker_base}
    loras = [{**generator, "label": f"expert-{c}", "kind": "expert", "pool": pool, "cluster": items, "steps": recipe.expert_steps,
              "batch": recipe.expert_batch, "r": recipe.expert_r, "lr": recipe.expert_lr,
              "out_dir": tmp / "generator" / "experts" / c} for c, items in clusters.items()]
    loras += [{**taker, "label": f"lora-taker-{c}", "kind": "qa", "phases": [(recipe.lora_taker_steps, cluster_mix(items))],
               "steps": recipe.lora_taker_steps,
               "batch": 64, "r": recipe.lora_taker_r, "lr": recipe.lora_taker_lr, "out_dir": tmp / "lora_takers" / c}
              for c, items in clusters.items()]
    for job in scratch + loras:
        job.update({k: str(v) for k, v in job.items() if isinstance(v, Path)}, seed=seed, exclude=excluded)
    return scratch, loras


def _build(tmp: Path, final: Path, size: str, seed: int) -> None:
    recipe = RECIPES[size]
    times: dict[str, float] = {}
    t0 = t = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal t
        times[name] = round(time.perf_counter() - t, 1)
        log.info("zoo[%s]: %s done in %.1f s", size, name, times[name])
        t = time.perf_counter()

    task = task_of(recipe)
    pool = [item.input for item in task.dev]
    excluded = pool + [item.input for item in task.test]
    clusters = dev_clusters(recipe, seed)
    scratch, loras = _jobs(recipe, tmp, final, seed, clusters, excluded, pool)
    tmp.mkdir(parents=True)
    with ProcessPoolExecutor(recipe.workers, mp_context=multiprocessing.get_context("spawn")) as workers:
        for done in workers.map(train_scratch, scratch):
            log.info("zoo[%s]: %s", size, done)
        phase("models")
        for done in workers.map(train_lora, loras):
            log.info("zoo[%s]: %s", size, done)
        phase("loras")
        takers = {n: (tmp / kind / n, None) for kind, group in (("takers", recipe.takers), ("heldout", recipe.heldout))
                  for n in group}
        takers.update({f"lora:{c}": (tmp / "takers" / recipe.lora_taker_base, tmp / "lora_takers" / c) for c in clusters})
        gens = {c: tmp / "generator" / "experts" / c for c in clusters}
        acc = workers.submit(measure_takers, takers, clusters, recipe.eval_problems, seed, excluded)
        gen = workers.submit(measure_generators, tmp / "generator" / "base", gens, clusters, pool, recipe.eval_lists, seed)
        matrix = {**acc.result(), "generators": gen.result(), "n_problems_per_form": recipe.eval_problems,
                  "n_dev": len(pool), "n_generator_prompts": recipe.eval_lists}
        phase("skill matrix")
    times["total"] = round(time.perf_counter() - t0, 1)
    (tmp / "skill_matrix.json").write_text(json.dumps(matrix, indent=1))
    manifest = {
        "key": final.name, "weights_sha256": weights_digest(tmp.rglob("*.safetensors")), "size": size, "seed": seed,
        "recipe_version": RECIPE_VERSION, "recipe": asdict(recipe),
        "generators": list(clusters), "takers": list(recipe.takers), "heldout": list(recipe.heldout),
        "lora_base": recipe.lora_taker_base, "lora_takers": list(clusters), "clusters": clusters, "seconds": times,
    }
    (tmp / "zoo.json").write_text(json.dumps(manifest, indent=1))  # written last: marks a complete zoo


def build_zoo(size: str = "default", seed: int = 0, cache_dir: str | Path | None = None, force: bool = False) -> Zoo:
    """The zoo for (size, seed): loaded from the cache, or built once (under a file lock) and cached."""
    if size not in RECIPES:
        raise ValueError(f"unknown zoo size {size!r}; expected one of {sorted(RECIPES)}")
    final = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / "zoo" / recipe_key(size, seed)

    def build(tmp: Path) -> None:
        log.info("zoo[%s]: building %s", size, final)
        _build(tmp, final, size, seed)

    return _load(build_once(final, "zoo.json", build, force))


def union_expert_job(zoo: Zoo, size: str, seed: int, out_dir: Path) -> dict:
    """The ``train_lora`` job of method=data_merge's union expert: one LoRA of the generator base trained as the
    experts are, on every cluster's dev items at once, for as many steps as all the experts together."""
    recipe, task = RECIPES[size], task_of(RECIPES[size])
    every = [p for items in zoo.clusters.values() for p in items]
    return {"base_dir": str(zoo.base_dir), "base_name": str(zoo.base_dir), "out_dir": str(out_dir), "kind": "expert",
            "pool": [item.input for item in task.dev], "cluster": every, "r": recipe.expert_r, "lr": recipe.expert_lr,
            "steps": recipe.expert_steps * len(zoo.generators), "batch": recipe.expert_batch, "seed": seed,
            "exclude": [item.input for item in task.dev + task.test], "label": "data_merge-union"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="dswarm-zoo", description="Build (or load) the embedded model zoo.")
    parser.add_argument("--size", choices=sorted(RECIPES), default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--cache-dir", default=None, help="default: $DSWARM_CACHE or <repo>/.cache")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    zoo = build_zoo(args.size, args.seed, args.cache_dir, args.force)
    manifest = json.loads((zoo.root / "zoo.json").read_text())
    print(f"zoo: {zoo.root} (weights sha256 {manifest['weights_sha256'][:16]})")
    print(skill_table(zoo.skill_matrix, tuple(zoo.heldout)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
