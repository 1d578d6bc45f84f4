"""A panel of test takers: LoRA experts of one base model that answer items.

The panel holds one live model and the takers' flat vectors; answering with
taker ``t`` swaps its vector in place, so a step costs no model reloads.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from generators.experts import LoraModel


@dataclass(frozen=True)
class AnswerSettings:
    template: str  # e.g. "Q: {input}\nA:"
    max_new_tokens: int
    stop: str | None
    batch_size: int


class TakerPanel:
    """Takers that answer greedily; ``vectors`` may be replaced (the adversarial model swarm does)."""

    def __init__(self, model: LoraModel, vectors: torch.Tensor, names: Sequence[str], settings: AnswerSettings) -> None:
        if len(names) != vectors.shape[0]:
            raise ValueError(f"{len(names)} taker names for {vectors.shape[0]} taker vectors")
        self.model = model
        self.vectors = vectors
        self.names = list(names)
        self.settings = settings

    def __len__(self) -> int:
        return self.vectors.shape[0]

    def answer(self, taker: int, inputs: list[str]) -> list[str]:
        """Taker ``taker``'s answers to ``inputs`` (greedy, so independent of batching)."""
        self.model.load(self.vectors[taker])
        prompts = [self.settings.template.format(input=text) for text in inputs]
        return self.model.generate(
            prompts,
            max_new_tokens=self.settings.max_new_tokens,
            temperature=0.0,
            batch_size=self.settings.batch_size,
            stop=self.settings.stop,
        )
