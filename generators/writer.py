"""A generator model writes evaluation items for a task from few-shot prompts.

The writer owns the prompt side of generation (which dev examples go into
each few-shot prompt, seeded per step) and the parsing of the numbered
lines back into items; the model side is `LoraModel.generate`.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from generators.models.lora_model import LoraModel
from generators.prompts import few_shot_prompt, parse_items, sample_examples
from objectives.contamination import Contamination
from objectives.judging.verify import NoVerifier, Verifier, verdicts
from objectives.tasks.item import Item, Task

__all__ = ["Prompt", "Writer", "WriterSettings"]

# Item texts remembered across steps before the memo starts over: an item of a long real generation holds a few KB,
# and the zoo writes ~60 distinct items a step.
_MEMO_SIZE = 10_000

Progress = Callable[[int], None]
"""progress(n): n more items done (a phase's progress line counts them)."""


@dataclass(frozen=True)
class WriterSettings:
    template: str
    few_shot: int
    items_per_prompt: int
    prompts_per_step: int
    max_new_tokens: int
    temperature: float
    top_p: float
    batch_size: int
    max_batch_tokens: int = 1 << 16  # multi-LoRA: rows x (prompt + new tokens) per forward, the KV-cache budget


@dataclass(frozen=True)
class Prompt:
    """What a prompt search varies: the formatted dev examples each prompt draws its shots from, and the template."""

    examples: tuple[str, ...]
    template: str


class Writer:
    """A generator model that writes items for a task from few-shot prompts; the verifier checks their answers,
    the contamination screen measures (and may drop) copies of the references."""

    def __init__(self, model: LoraModel, task: Task, settings: WriterSettings, verifier: Verifier | None = None,
                 contamination: Contamination | None = None) -> None:
        self.model = model
        self.task = task
        self.settings = settings
        self.verifier = verifier or NoVerifier()
        self.contamination = contamination
        self.pool = [task.format_example(item) for item in task.dev]
        self._known: dict[str | None, Item] = {}  # items of earlier steps by text (a pure verifier only: `_items`)

    def write(self, vector: torch.Tensor, seed: int, n_prompts: int, progress: Progress | None = None,
              prompt: Prompt | None = None) -> list[Item]:
        """``n_prompts × items_per_prompt`` items; unparseable slots are invalid items."""
        return self.write_each(vector[None], seed, n_prompts, progress, prompt)[0]

    def write_each(self, vectors: torch.Tensor, seed: int, n_prompts: int, progress: Progress | None = None,
                   prompt: Prompt | None = None) -> list[list[Item]]:
        """``write`` for every row of ``vectors`` [G, d], all in one multi-LoRA generation.

        Every particle gets the same few-shot prompts and sampling seeds (the
        step's common random numbers), so its items depend on its vector alone.
        ``prompt`` replaces the example pool (all dev items) and the template."""
        s = self.settings
        rng = random.Random(seed)
        pool, template = (self.pool, s.template) if prompt is None else (list(prompt.examples), prompt.template)
        shots = [sample_examples(pool, s.few_shot, rng) for _ in range(n_prompts)]
        prompts = [few_shot_prompt(ex, s.items_per_prompt, template) for ex in shots]
        texts = self.model.generate_each(
            vectors, prompts, max_new_tokens=s.max_new_tokens, temperature=s.temperature, top_p=s.top_p,
            batch_size=s.batch_size, seed=seed, max_batch_tokens=s.max_batch_tokens,
            progress=progress and (lambda rows: progress(rows * s.items_per_prompt)),
        )
        slots = [[t for ex, text in zip(shots, particle) for t in parse_items(text, s.items_per_prompt, start=len(ex) + 1)]
                 for particle in texts]
        items = self._items(list(dict.fromkeys(t for particle in slots for t in particle)))
        return [[items[t] for t in particle] for particle in slots]

    def _items(self, texts: list[str | None]) -> dict[str | None, Item]:
        """Each distinct item text of a step parsed, verified and screened once: an item is a function of its
        text, and the particles of a step write many of the same ones (on the zoo a quarter are distinct).
        With a pure verifier (``verifier.pure``: its verdict depends on the item alone) an item is remembered
        across steps too, in a bounded memo (on the zoo a quarter of a step's items were written before); a
        verifier that asks a model or an endpoint checks every step's items afresh."""
        known = self._known if getattr(self.verifier, "pure", False) else {}
        if len(known) > _MEMO_SIZE:
            known.clear()
        new = [t for t in texts if t not in known]
        parsed = [self.task.parse_item(t) for t in new]
        known.update(zip(new, map(self._checked, parsed, verdicts(parsed, self.verifier))))
        return {t: known[t] for t in texts}

    def _checked(self, item: Item, verdict: bool | None) -> Item:
        """``item`` with the verifier's verdict and, if it stays valid, the contamination screen's overlap: what
        `verify` then `Contamination.screen` give, in one copy of the item (two copies cost ~0.1 % of a zoo step)."""
        changes = {} if verdict is None else {"valid": verdict, "verified": verdict}
        if self.contamination is not None:
            return self.contamination.check(item, **changes)
        return replace(item, **changes) if changes else item
