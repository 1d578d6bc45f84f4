"""Names in ``taker.models`` / ``taker.heldout`` -> ``TakerSpec``s (generators/takers/panel.py).

An entry is one of:
- a zoo taker's name (``t1``, ``h2``): that zoo model, asked like the zoo takers;
- ``lora:<cluster>``: a LoRA taker of the zoo's ``lora_base`` (one base: the adversarial model swarm);
- ``smollm2``: SmolLM2-135M-Instruct off the shelf, no adapter, asked through its own chat template,
  its usual-order numbers rewritten in the arith convention;
- ``<model dir>`` or ``<model dir>@<adapter dir>``: any HF causal LM, optionally with a PEFT LoRA;
- ``openai:<model>@<base_url>``: a model behind an OpenAI-compatible server (generators/takers/served.py),
  named ``openai:<model>``; asked like the run's takers, or like SmolLM2 off the shelf (``served_as``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from generators.takers.lora_panel import AnswerSettings
from generators.takers.panel import Served, TakerSpec

__all__ = ["resolve_takers", "check_held_out", "heldout_groups", "served_spec", "SMOLLM2_ASKED", "SERVED_AS"]

SMOLLM2 = "smollm2"
SERVED = "openai:"
SERVED_AS = ("taker", "off_the_shelf")  # how a served model is asked: like the run's takers, or like SmolLM2
# How SmolLM2 is asked unless taker.smollm2 says otherwise: a chat turn, the number in the usual order.
SMOLLM2_ASKED = AnswerSettings(template="What is {input}? Reply with the number only.", max_new_tokens=12, stop="\n",
                               batch_size=32)


def served_spec(entry: str, asked: AnswerSettings, chat: bool, smollm2: AnswerSettings, served_as: str,
                setting: str) -> TakerSpec:
    """The spec of ``openai:<model>@<base_url>``: asked like the run's takers (``served_as=taker``: the same
    prompt, chat template and budget, so a served copy of a taker answers as it does in-process) or like
    SmolLM2 off the shelf (a chat turn, numbers rewritten in the arith convention)."""
    model, _, url = entry[len(SERVED):].partition("@")
    if not model or not url.startswith(("http://", "https://")):
        raise ValueError(f"{setting}: {entry!r} is not openai:<model>@<base_url> (e.g. openai:qwen@http://127.0.0.1:8000/v1)")
    if served_as not in SERVED_AS:
        raise ValueError(f"taker.served_as: expected one of {SERVED_AS}, got {served_as!r}")
    off = served_as == "off_the_shelf"
    return TakerSpec(SERVED + model, None, None, smollm2 if off else asked, chat_template=off or chat, reverse_digits=off,
                     served=Served(model, url))


def resolve_takers(entries: Sequence[str], zoo, asked: AnswerSettings, chat: bool, smollm2: AnswerSettings,
                   setting: str, served_as: str = "taker") -> list[TakerSpec]:
    """Specs for ``entries``; ``ValueError`` naming ``setting`` for an entry that names nothing."""
    specs = []
    for entry in map(str, entries):
        name = entry
        if entry.startswith(SERVED):
            specs.append(served_spec(entry, asked, chat, smollm2, served_as, setting))
            continue
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
            known = sorted(table) + [f"lora:{c}" for c in zoo.lora_takers] + [SMOLLM2, f"{SERVED}<model>@<base_url>"]
            raise ValueError(f"{setting}: unknown taker {entry!r}; the zoo has {known}, or give a model dir")
        adapter_dir = Path(adapter) if adapter else None
        specs.append(TakerSpec((adapter_dir or Path(base)).name, Path(base), adapter_dir, asked, chat))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"{setting}: taker names must differ, got {names}")
    return specs


def heldout_groups(names: Sequence[str]) -> dict[str, list[int]]:
    """Column groups of a held-out panel: ``models`` (the zoo's other models, any model dir),
    ``off_the_shelf`` (SmolLM2 as shipped) and ``served`` (models behind endpoints); empty groups are left out."""
    groups = {"models": [i for i, n in enumerate(names) if n != SMOLLM2 and not n.startswith(SERVED)],
              "off_the_shelf": [i for i, n in enumerate(names) if n == SMOLLM2],
              "served": [i for i, n in enumerate(names) if n.startswith(SERVED)]}
    return {g: rows for g, rows in groups.items() if rows}


def _identity(spec: TakerSpec) -> tuple:
    """What makes two entries the same model: the endpoint, or the model dir and adapter dir."""
    if spec.served is not None:
        return ("served", spec.served.model, spec.served.base_url.rstrip("/"))
    return ("local", spec.base and Path(spec.base).resolve(), spec.adapter and Path(spec.adapter).resolve())


def check_held_out(search: Sequence[TakerSpec], heldout: Sequence[TakerSpec]) -> None:
    """A held-out taker must be another model than every search taker; else a ValueError naming taker.heldout."""
    seen = {_identity(s): s.name for s in search}
    for i, spec in enumerate(heldout):
        if _identity(spec) in seen:
            raise ValueError(f"taker.heldout[{i}]: {spec.name!r} is also a search taker ({seen[_identity(spec)]!r}); "
                             "held-out takers must be other models, or the held-out score measures the search itself")
