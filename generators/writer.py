"""A generator model writes evaluation items for a task from few-shot prompts.

The writer owns the prompt side of generation (which dev examples go into
each few-shot prompt, seeded per step) and the parsing of the numbered
lines back into items; the model side is `LoraModel.generate`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from generators.experts import LoraModel
from generators.prompts import few_shot_prompt, parse_items, sample_examples
from objectives.tasks import Item, Task

__all__ = ["Writer", "WriterSettings"]


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


class Writer:
    """A generator model that writes items for a task from few-shot prompts."""

    def __init__(self, model: LoraModel, task: Task, settings: WriterSettings, progress: bool = False) -> None:
        self.model = model
        self.task = task
        self.settings = settings
        self.progress = progress
        self.pool = [task.format_example(item) for item in task.dev]

    def write(self, vector: torch.Tensor, seed: int, n_prompts: int) -> list[Item]:
        """``n_prompts × items_per_prompt`` items; unparseable slots are invalid items."""
        s = self.settings
        rng = random.Random(seed)
        shots = [sample_examples(self.pool, s.few_shot, rng) for _ in range(n_prompts)]
        prompts = [few_shot_prompt(ex, s.items_per_prompt, s.template) for ex in shots]
        self.model.load(vector)
        texts = self.model.generate(
            prompts,
            max_new_tokens=s.max_new_tokens,
            temperature=s.temperature,
            top_p=s.top_p,
            batch_size=s.batch_size,
            seed=seed,
            progress=self.progress and n_prompts > s.prompts_per_step,  # a bar for the long final dataset only
        )
        items = []
        for ex, text in zip(shots, texts):
            items.extend(self.task.parse_item(t) for t in parse_items(text, s.items_per_prompt, start=len(ex) + 1))
        return items
