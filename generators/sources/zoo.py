"""The embedded zoo as a model source (generator=zoo, taker=zoo): its experts and takers, built once and cached."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from annotated_types import MinLen

from generators.sources.protocol import TakerSources

Takers = Annotated[list[str], MinLen(1)]  # zoo taker names, lora:<cluster>, smollm2, <model dir>[@<adapter dir>]


def _zoo(size: str, zoo_seed: int):
    from generators.zoo import build_zoo

    return build_zoo(size, seed=zoo_seed)


def zoo_generators(task: Any, seed: int, *, size: str, zoo_seed: int) -> tuple[Path, list[Path]]:
    """The embedded zoo's generator experts (built once and cached)."""
    zoo = _zoo(size, zoo_seed)
    return zoo.base_dir, list(zoo.generators.values())


def zoo_takers(task: Any, seed: int, *, size: str, zoo_seed: int, models: Takers, heldout: Takers) -> TakerSources:
    """The zoo's takers by name, or any other entry (smollm2, model dirs): every taker is its own model."""
    return TakerSources(list(map(str, models)), list(map(str, heldout)), zoo=_zoo(size, zoo_seed))
