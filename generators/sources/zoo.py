"""The embedded zoo as a model source (generator=zoo, taker=zoo): its experts and takers, built once and cached.

The union expert (``method=data_merge``) is trained by the zoo's own job
(generators/zoo/build.py: union_expert_job) on the union of the experts' data (every
dev cluster), as many examples as they saw together, seeded by the zoo seed, and
cached next to the zoo.
"""
from __future__ import annotations

import hashlib
import json
import logging
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from annotated_types import MinLen

from generators.models.cache import build_once, default_cache_dir
from generators.sources.protocol import GeneratorSources, TakerSources

log = logging.getLogger(__name__)
Takers = Annotated[list[str], MinLen(1)]  # zoo taker names, lora:<cluster>, smollm2, <model dir>[@<adapter dir>]


def _zoo(size: str, zoo_seed: int):
    from generators.zoo import build_zoo

    return build_zoo(size, seed=zoo_seed)


def zoo_generators(task: Any, seed: int, *, size: str, zoo_seed: int) -> GeneratorSources:
    """The embedded zoo's generator experts (built once and cached). Their clusters are of the arith task's default
    dev items: a task whose few-shot pool holds other items is told so in one warning line."""
    zoo = _zoo(size, zoo_seed)
    trained = {p for items in zoo.clusters.values() for p in items}
    other = sum(getattr(it, "input", None) not in trained for it in task.dev)
    if other:
        log.warning("generator=zoo: %d of the task's %d dev items (its few-shot pool) are not among the %d dev items the "
                    "zoo's experts were clustered from (task=arith at its defaults, docs/zoo.md)", other, len(task.dev),
                    len(trained))
    return GeneratorSources(zoo.base_dir, list(zoo.generators.values()), partial(union_expert, size, zoo_seed))


zoo_generators.writes_answers = False  # bare arithmetic, never "Answer: ...": swarm/config/preflight.py reads it


def zoo_takers(task: Any, seed: int, *, size: str, zoo_seed: int, models: Takers, heldout: Takers) -> TakerSources:
    """The zoo's takers by name, or any other entry (smollm2, model dirs): every taker is its own model."""
    return TakerSources(list(map(str, models)), list(map(str, heldout)), zoo=_zoo(size, zoo_seed))


UNION_VERSION = 1  # bump to invalidate cached union experts


def union_expert(size: str, seed: int) -> Path:
    """The cached union expert of the zoo (size, seed); trained the first time (generators/zoo/train.py)."""
    from generators.zoo import build_zoo, union_expert_job
    from generators.zoo.train import train_lora

    z = build_zoo(size, seed=seed)
    key = hashlib.sha256(json.dumps({"v": UNION_VERSION, "zoo": z.root.name}).encode()).hexdigest()[:12]

    def train(tmp: Path) -> None:
        train_lora(union_expert_job(z, size, seed, tmp))
        (tmp / "DONE").write_text(json.dumps({"experts": list(z.generators)}) + "\n")

    return build_once(default_cache_dir() / "data_merge" / f"{z.root.name}-union-{key}", "DONE", train)
