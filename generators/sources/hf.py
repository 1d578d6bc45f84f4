"""Any HF causal-LM dir with PEFT adapters as a model source (generator=hf, taker=hf); hub ids through the HF cache."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from generators.sources.hub import resolve_model
from generators.sources.protocol import TakerSources


def _resolve_all(values: Sequence[str], setting: str) -> list[Path]:
    return [resolve_model(v, f"{setting}[{i}]") for i, v in enumerate(values)]


def hf_generators(task: Any, seed: int, *, base: str, adapters: Sequence[str]) -> tuple[Path, list[Path]]:
    """Any HF causal-LM dir and PEFT adapter dirs on it (local dirs, or hub ids through the HF cache)."""
    return resolve_model(base, "generator.base"), _resolve_all(adapters, "generator.adapters")


def hf_takers(task: Any, seed: int, *, base: str, adapters: Sequence[str], heldout: Sequence[str]) -> TakerSources:
    """LoRA takers of one HF base; a held-out entry is an adapter dir of that base or another model."""
    root = resolve_model(base, "taker.base")
    models = [f"{root}@{a}" for a in _resolve_all(adapters, "taker.adapters")]
    held = [str(h) if h == "smollm2" or "@" in str(h) else f"{root}@{resolve_model(h, f'taker.heldout[{i}]')}"
            for i, h in enumerate(heldout)]
    return TakerSources(models, held, sizing_base=root)
