"""Any HF causal-LM dir with PEFT adapters as a model source (generator=hf, taker=hf); hub ids through the HF cache."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Sequence

from pydantic import AfterValidator

from generators.sources.hub import AdapterDir, ModelDir, adapter_dir, resolve_model
from generators.sources.protocol import GeneratorSources, TakerSources


def _at_least(n: int, what: str):
    """A list setting's rule: at least ``n`` entries (the count is checked before any model loads)."""
    def check(values: list) -> list:
        if len(values) < n:
            raise ValueError(f"needs at least {n} {what}, got {len(values)}")
        return values
    return AfterValidator(check)


def _heldout_entry(value: str) -> str:
    """A held-out taker of ``taker=hf``: smollm2, ``<model dir>@<adapter dir>``, or an adapter dir of taker.base."""
    return value if value == "smollm2" or "@" in value else adapter_dir(value)


def _resolve_all(values: Sequence[str], setting: str) -> list[Path]:
    return [resolve_model(v, f"{setting}[{i}]") for i, v in enumerate(values)]


def hf_generators(task: Any, seed: int, *, base: ModelDir,
                  adapters: Annotated[list[AdapterDir], _at_least(2, "generator experts (a swarm needs at least 2 particles)")],
                  ) -> GeneratorSources:
    """Any HF causal-LM dir and PEFT adapter dirs on it (local dirs, or hub ids through the HF cache); their
    training data is not known here, so there is no union expert."""
    return GeneratorSources(resolve_model(base, "generator.base"), _resolve_all(adapters, "generator.adapters"))


def hf_takers(task: Any, seed: int, *, base: ModelDir, adapters: Annotated[list[AdapterDir], _at_least(1, "adapter dirs")],
              heldout: Annotated[list[Annotated[str, AfterValidator(_heldout_entry)]], _at_least(1, "held-out taker")],
              ) -> TakerSources:
    """LoRA takers of one HF base; a held-out entry is an adapter dir of that base or another model."""
    root = resolve_model(base, "taker.base")
    models = [f"{root}@{a}" for a in _resolve_all(adapters, "taker.adapters")]
    held = [str(h) if h == "smollm2" or "@" in str(h) else f"{root}@{resolve_model(h, f'taker.heldout[{i}]')}"
            for i, h in enumerate(heldout)]
    return TakerSources(models, held, sizing_base=root)
