"""A panel of independent test takers: each its own model (own weights, size, tokenizer), optionally with a LoRA.

Items are text, so nothing requires takers to share a base, or to be in this
process at all: served takers (generators/takers/served.py) answer through an
endpoint, and a failed request is a None answer (a missing score). The panel groups
its takers by (base model, answer settings): each group is one
``TakerPanel`` over one ``LoraModel`` loaded once, so takers that share a base
still swap their adapters in place (a base-only taker in such a group is the
zero vector: the base exactly). A group of base-only takers answers through
the plain model. ``build_panel`` returns the bare ``TakerPanel`` when there is
one group, so code that moves LoRA takers (the adversarial model swarm) keeps
working on single-base panels.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from generators.models.lora_model import LoraModel
from generators.takers.lora_panel import AnswerSettings, TakerPanel
from generators.takers.served import ServedTakers
from objectives.endpoints import Endpoint

__all__ = ["Served", "TakerSpec", "Panel", "build_panels", "reversed_number"]

_NUMBER = re.compile(r"-?\d+")


@dataclass(frozen=True)
class Served:
    """A model behind an OpenAI-compatible endpoint."""

    model: str
    base_url: str


@dataclass(frozen=True)
class TakerSpec:
    """One taker: its model dir (None when served), optional adapter dir, and how it is asked."""

    name: str
    base: Path | None
    adapter: Path | None
    settings: AnswerSettings
    chat_template: bool = False
    reverse_digits: bool = False  # writes numbers in the usual order: rewrite them least-significant digit first
    served: Served | None = None  # asked through an endpoint (base and adapter are None)


def reversed_number(text: str) -> str:
    """An off-the-shelf model's answer in the arith task's convention (first number, digits reversed)."""
    m = _NUMBER.search(text)
    if m is None:
        return text
    value = m.group()
    return " " + ("-" if value.startswith("-") else "") + value.lstrip("-")[::-1]


class _BaseOnly:
    """Takers that are plain models (no adapter) sharing one loaded model and settings: they answer alike."""

    def __init__(self, model: LoraModel, names: Sequence[str], settings: AnswerSettings) -> None:
        self.model, self.names, self.settings = model, list(names), settings

    def __len__(self) -> int:
        return len(self.names)

    def answer_all(self, inputs: list[str], takers: Sequence[int] | None = None,
                   progress: Callable[[int], None] | None = None) -> list[list[str]]:
        chosen = list(range(len(self))) if takers is None else list(takers)
        s = self.settings
        answers = self.model.generate([s.template.format(input=t) for t in inputs], max_new_tokens=s.max_new_tokens,
                                      temperature=0.0, batch_size=s.batch_size, stop=s.stop, max_batch_tokens=s.max_batch_tokens)
        if progress is not None:
            progress(len(inputs) * len(chosen))
        return [answers for _ in chosen]


class Panel:
    """Takers of several bases, with ``TakerPanel``'s interface: each group answers its own takers in one pass."""

    def __init__(self, groups: Sequence[tuple[object, list[int]]], names: Sequence[str], post: Sequence[Callable[[str], str] | None]) -> None:
        self.groups = list(groups)
        self.names = list(names)
        self._post = list(post)
        self._where = {t: (g, i) for g, (_, members) in enumerate(self.groups) for i, t in enumerate(members)}

    def __len__(self) -> int:
        return len(self.names)

    def answer(self, taker: int, inputs: list[str]) -> list[str]:
        """Taker ``taker``'s answers to ``inputs``."""
        return self.answer_all(inputs, [taker])[0]

    def answer_all(self, inputs: list[str], takers: Sequence[int] | None = None,
                   progress: Callable[[int], None] | None = None) -> list[list[str | None]]:
        """out[j][i]: taker ``takers[j]``'s answer to ``inputs[i]`` (all takers by default); None: no answer."""
        chosen = list(range(len(self))) if takers is None else list(takers)
        out: list[list[str | None] | None] = [None] * len(chosen)
        for g, (group, _) in enumerate(self.groups):
            mine = [j for j, t in enumerate(chosen) if self._where[t][0] == g]
            if not mine:
                continue
            answers = group.answer_all(inputs, [self._where[chosen[j]][1] for j in mine], progress=progress)
            for j, rows in zip(mine, answers):
                post = self._post[chosen[j]]
                out[j] = [post(a) if a is not None else None for a in rows] if post else rows
        return out


def build_panels(panels: Sequence[Sequence[TakerSpec]], load: Callable[..., LoraModel],
                 serve: Callable[[TakerSpec], Endpoint] | None = None) -> list[TakerPanel | Panel]:
    """One panel per list of specs; every distinct (base, chat template) is loaded once for all of them,
    with the union of their adapters (``load(base, adapters, chat_template=...)``); a served spec gets its
    endpoint client from ``serve(spec)``.

    A one-group panel without answer rewriting is returned as the bare ``TakerPanel``."""
    if any(not specs for specs in panels):
        raise ValueError("a taker panel needs at least one taker")
    adapters: dict[tuple[str, bool], list[str]] = {}
    for s in (s for specs in panels for s in specs if s.served is None):
        rows = adapters.setdefault((str(s.base), s.chat_template), [])
        if s.adapter is not None and str(s.adapter) not in rows:
            rows.append(str(s.adapter))
    models = {key: load(Path(key[0]), [Path(a) for a in rows], chat_template=key[1]) for key, rows in adapters.items()}
    return [_panel(specs, models, adapters, serve) for specs in panels]


def _panel(specs: Sequence[TakerSpec], models: dict, adapters: dict,
           serve: Callable[[TakerSpec], Endpoint] | None) -> TakerPanel | Panel:
    keys: dict[tuple, list[int]] = {}
    served = [t for t, s in enumerate(specs) if s.served is not None]
    for t, s in enumerate(specs):
        if s.served is None:
            keys.setdefault((str(s.base), s.chat_template, s.settings), []).append(t)
    groups = []
    if served:
        if serve is None:
            raise ValueError(f"served takers {[specs[t].name for t in served]} need an endpoint client (serve=)")
        groups.append((ServedTakers([serve(specs[t]) for t in served], [specs[t].settings for t in served]), served))
    for (base, chat, settings), members in keys.items():
        model, rows = models[(base, chat)], adapters[(base, chat)]
        names = [specs[t].name for t in members]
        if not rows:
            groups.append((_BaseOnly(model, names, settings), members))
            continue
        zero = torch.zeros(model.dim, device=model.expert_vectors.device)
        vectors = torch.stack([model.expert_vectors[rows.index(str(specs[t].adapter))] if specs[t].adapter is not None else zero
                               for t in members])
        groups.append((TakerPanel(model, vectors.clone(), names, settings), members))
    post = [reversed_number if s.reverse_digits else None for s in specs]
    if len(groups) == 1 and isinstance(groups[0][0], TakerPanel) and not any(post):
        return groups[0][0]
    return Panel(groups, [s.name for s in specs], post)
