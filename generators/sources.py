"""Where a run's models come from: the generator's base and experts, the takers' entries.

The ``generator`` and ``taker`` config groups name one of these with ``_target_``
(``_partial_``: the run passes the task and its seed):

    generator: (task, seed) -> (base dir, [generator expert dirs])       one particle per expert
    taker:     (task, seed) -> TakerSources                              search and held-out entries

A taker entry is any model (generators/taker_specs.py): a zoo taker name,
``lora:<cluster>``, ``smollm2``, or ``<model dir>[@<adapter dir>]``; the run
resolves the entries into taker specs with its answer settings. A generator or
taker of your own is one such function, named by ``generator._target_=pkg.fn``
(docs/configuration.md). Errors are a one-line ValueError naming the setting.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from generators.hub import resolve_model


@dataclass
class TakerSources:
    """The takers of a run, before they are loaded.

    ``sizing_base``: the model whose tokenizer sizes line answers when ``taker.max_new_tokens``
    is null (None: there is no single taker base, so the setting is required).
    """

    models: list[str]
    heldout: list[str]
    zoo: Any = None
    sizing_base: Path | None = None


def _zoo(size: str, zoo_seed: int):
    from generators.zoo import build_zoo

    return build_zoo(size, seed=zoo_seed)


def _resolve_all(values: Sequence[str], setting: str) -> list[Path]:
    return [resolve_model(v, f"{setting}[{i}]") for i, v in enumerate(values)]


def zoo_generators(task: Any, seed: int, *, size: str, zoo_seed: int) -> tuple[Path, list[Path]]:
    """The embedded zoo's generator experts (built once and cached)."""
    zoo = _zoo(size, zoo_seed)
    return zoo.base_dir, list(zoo.generators.values())


def zoo_takers(task: Any, seed: int, *, size: str, zoo_seed: int, models: Sequence[str],
               heldout: Sequence[str]) -> TakerSources:
    """The zoo's takers by name, or any other entry (smollm2, model dirs): every taker is its own model."""
    return TakerSources(list(map(str, models)), list(map(str, heldout)), zoo=_zoo(size, zoo_seed))


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


def _max_len(value: int | None) -> dict[str, int]:
    """The training-length override of a smollm2 group; empty when null (from the task)."""
    return {} if value is None else {"max_len": int(value)}


def smollm2_generators(task: Any, seed: int, *, k: int, train_steps: int, train_max_len: int | None, template: str,
                       taker_template: str, few_shot: int, items_per_prompt: int,
                       chat_template: bool) -> tuple[Path, list[Path]]:
    """SmolLM2-135M-Instruct with ``k`` LoRA experts trained on clusters of the task's dev data (cached)."""
    from generators import smollm2

    experts = smollm2.experts(
        task, role="generator", k=k, steps=train_steps, seed=seed, template=template, taker_template=taker_template,
        few_shot=few_shot, items_per_prompt=items_per_prompt, chat_template=chat_template,
        overrides=_max_len(train_max_len),
    )
    return smollm2.base_dir(), experts


def smollm2_takers(task: Any, seed: int, *, k: int, heldout_k: int, train_steps: int, train_max_len: int | None,
                   template: str) -> TakerSources:
    """``k`` SmolLM2 taker experts and ``heldout_k`` held-out ones (other seeds), trained once and cached."""
    from generators import smollm2

    base = smollm2.base_dir()
    common = dict(steps=train_steps, seed=seed, taker_template=template, overrides=_max_len(train_max_len))
    search = smollm2.experts(task, role="taker", k=k, **common)
    held = smollm2.experts(task, role="heldout", k=heldout_k, **common)
    return TakerSources([f"{base}@{a}" for a in search], [f"{base}@{a}" for a in held], sizing_base=base)
