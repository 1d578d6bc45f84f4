"""Build the zoo once per recipe, cache it, load it; the ``dswarm-zoo`` command.

Layout of ``<cache>/zoo/<size>-seed<seed>-<hash>/`` (docs/zoo.md):
``generator/base`` and ``generator/experts/<cluster>`` (PEFT LoRA dirs),
``takers/<name>`` and ``heldout/<name>`` (HF model dirs, each its own model),
``lora_takers/<cluster>`` (LoRAs of one search taker, for method=adversarial),
``skill_matrix.json``, and ``zoo.json`` written last (a complete zoo).
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from generators.models.cache import build_once, default_cache_dir
from generators.zoo.recipe import RECIPE_VERSION, RECIPES, recipe_key
from generators.zoo.skills import measure_generators, measure_takers, skill_table
from generators.zoo.train import train_lora, train_scratch

__all__ = ["Zoo", "build_zoo", "main"]
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
    skill_matrix: dict = field(hash=False, compare=False)


def _load(root: Path) -> Zoo:
    m = json.loads((root / "zoo.json").read_text())
    group = lambda kind, names: {n: root / kind / n for n in names}  # noqa: E731
    return Zoo(
        root=root, base_dir=root / "generator" / "base", generators=group("generator/experts", m["generators"]),
        takers=group("takers", m["takers"]), heldout=group("heldout", m["heldout"]),
        lora_base=root / "takers" / m["lora_base"], lora_takers=group("lora_takers", m["lora_takers"]),
        skill_matrix=json.loads((root / "skill_matrix.json").read_text()),
    )


def _build(tmp: Path, final: Path, size: str, seed: int) -> None:
    recipe = RECIPES[size]
    times: dict[str, float] = {}
    t0 = t = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal t
        times[name] = round(time.perf_counter() - t, 1)
        log.info("zoo[%s]: %s done in %.1f s", size, name, times[name])
        t = time.perf_counter()

    scratch = [{"label": "generator", "kind": "lists", "spec": asdict(recipe.generator), "out_dir": tmp / "generator" / "base"}]
    scratch += [{"label": n, "kind": "qa", "spec": asdict(s), "out_dir": tmp / kind / n}
                for kind, group in (("takers", recipe.takers), ("heldout", recipe.heldout)) for n, s in group.items()]
    cost = lambda j: j["spec"]["steps"] * j["spec"]["batch"] * j["spec"]["hidden"] ** 2 * j["spec"]["layers"]  # noqa: E731
    scratch.sort(key=cost, reverse=True)  # longest first: two workers finish together
    common = {"seed": seed, "r": recipe.expert_r, "lr": recipe.expert_lr}
    loras = [{**common, "label": f"expert-{c}", "kind": "lists", "target": c, "steps": recipe.expert_steps,
              "batch": recipe.expert_batch, "base_dir": tmp / "generator" / "base", "base_name": final / "generator" / "base",
              "out_dir": tmp / "generator" / "experts" / c} for c in recipe.clusters]
    lora_base = recipe.lora_taker_base
    loras += [{**common, "label": f"lora-taker-{c}", "kind": "qa", "target": c, "steps": recipe.lora_taker_steps,
               "r": recipe.lora_taker_r, "batch": 64, "base_dir": tmp / "takers" / lora_base,
               "base_name": final / "takers" / lora_base, "out_dir": tmp / "lora_takers" / c} for c in recipe.clusters]
    for job in scratch:
        job["seed"] = seed
    for job in scratch + loras:
        job.update({k: str(v) for k, v in job.items() if isinstance(v, Path)})
    tmp.mkdir(parents=True)
    with ProcessPoolExecutor(recipe.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for done in pool.map(train_scratch, scratch):
            log.info("zoo[%s]: %s", size, done)
        phase("models")
        for done in pool.map(train_lora, loras):
            log.info("zoo[%s]: %s", size, done)
        phase("loras")
        every = {j["label"]: Path(j["out_dir"]) for j in scratch if j["label"] != "generator"}
        gens = {c: tmp / "generator" / "experts" / c for c in recipe.clusters}
        acc = pool.submit(measure_takers, every, recipe.eval_problems, seed)
        gen = pool.submit(measure_generators, tmp / "generator" / "base", gens, recipe.eval_lists, seed)
        matrix = {"takers": acc.result(), "generators": gen.result(), "n_problems_per_bin": recipe.eval_problems,
                  "n_generator_prompts": recipe.eval_lists}
        phase("skill matrix")
    times["total"] = round(time.perf_counter() - t0, 1)
    (tmp / "skill_matrix.json").write_text(json.dumps(matrix, indent=1))
    manifest = {
        "key": final.name, "size": size, "seed": seed, "recipe_version": RECIPE_VERSION, "recipe": asdict(recipe),
        "generators": list(recipe.clusters), "takers": list(recipe.takers), "heldout": list(recipe.heldout),
        "lora_base": lora_base, "lora_takers": list(recipe.clusters), "seconds": times,
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
    print(f"zoo: {zoo.root}")
    print(skill_table(zoo.skill_matrix, tuple(zoo.heldout)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
