"""Names in ``taker.models`` / ``taker.heldout`` -> ``TakerSpec``s (generators/takers/panel.py).

An entry is one of:
- a zoo taker's name (``t1``, ``h2``): that zoo model, asked like the zoo takers;
- ``lora:<cluster>``: a LoRA taker of the zoo's ``lora_base`` (one base: the adversarial model swarm);
- ``smollm2``: SmolLM2-135M-Instruct off the shelf, no adapter, asked through its own chat template,
  its usual-order numbers rewritten in the arith convention;
- ``<model dir>`` or ``<model dir>@<adapter dir>``: any HF causal LM, optionally with a PEFT LoRA.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from generators.takers.lora_panel import AnswerSettings
from generators.takers.panel import TakerSpec

__all__ = ["resolve_takers", "heldout_groups", "SMOLLM2_ASKED"]

SMOLLM2 = "smollm2"
# How SmolLM2 is asked unless taker.smollm2 says otherwise: a chat turn, the number in the usual order.
SMOLLM2_ASKED = AnswerSettings(template="What is {input}? Reply with the number only.", max_new_tokens=12, stop="\n",
                               batch_size=32)


def resolve_takers(entries: Sequence[str], zoo, asked: AnswerSettings, chat: bool, smollm2: AnswerSettings,
                   setting: str) -> list[TakerSpec]:
    """Specs for ``entries``; ``ValueError`` naming ``setting`` for an entry that names nothing."""
    specs = []
    for entry in map(str, entries):
        name = entry
        if entry == SMOLLM2:
            from generators.sources.smollm2 import base_dir

            specs.append(TakerSpec(SMOLLM2, base_dir(), None, smollm2, chat_template=True, reverse_digits=True))
            continue
        if entry.startswith("lora:") and zoo is not None and entry[5:] in zoo.lora_takers:
            specs.append(TakerSpec(entry[5:], zoo.lora_base, zoo.lora_takers[entry[5:]], asked, chat))
            continue
        table = {**zoo.takers, **zoo.heldout} if zoo is not None else {}
        if entry in table:
            specs.append(TakerSpec(name, table[entry], None, asked, chat))
            continue
        base, _, adapter = entry.partition("@")
        if "/" not in entry and zoo is not None:
            known = sorted(table) + [f"lora:{c}" for c in zoo.lora_takers] + [SMOLLM2]
            raise ValueError(f"{setting}: unknown taker {entry!r}; the zoo has {known}, or give a model dir")
        adapter_dir = Path(adapter) if adapter else None
        specs.append(TakerSpec((adapter_dir or Path(base)).name, Path(base), adapter_dir, asked, chat))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"{setting}: taker names must differ, got {names}")
    return specs


def heldout_groups(names: Sequence[str]) -> dict[str, list[int]]:
    """Column groups of a held-out panel: ``models`` (the zoo's other models, any model dir) and
    ``off_the_shelf`` (SmolLM2 as shipped); empty groups are left out."""
    groups = {"models": [i for i, n in enumerate(names) if n != SMOLLM2],
              "off_the_shelf": [i for i, n in enumerate(names) if n == SMOLLM2]}
    return {g: rows for g, rows in groups.items() if rows}
