"""A panel of test takers: LoRA experts of one base model that answer items.

A `TakerPanel` is the takers that share one base: one live model and the
takers' flat vectors. `answer_all` has every taker answer every input in one
multi-LoRA pass (each batch row its own taker's adapter); `answer` is one
taker alone (its vector swapped in place). Neither reloads a model.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from generators.models.lora_model import LoraModel


@dataclass(frozen=True)
class AnswerSettings:
    template: str  # e.g. "Q: {input}\nA:"
    max_new_tokens: int
    stop: str | None
    batch_size: int
    max_batch_tokens: int = 1 << 16  # multi-LoRA: rows x (prompt + new tokens) per forward, the KV-cache budget
    extract: Callable[[str], str] | None = None  # taker.answer=reasoning: the task's answer extractor


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
        return self.answer_all(inputs, [taker])[0]

    def answer_all(
        self, inputs: list[str], takers: Sequence[int] | None = None, progress: Callable[[int], None] | None = None
    ) -> list[list[str]]:
        """out[j][i]: taker ``takers[j]``'s answer to ``inputs[i]`` (all takers by default), one batched pass."""
        chosen = self.vectors if takers is None else self.vectors[list(takers)]
        s = self.settings
        answers = self.model.generate_each(
            chosen, [s.template.format(input=text) for text in inputs], max_new_tokens=s.max_new_tokens,
            temperature=0.0, batch_size=s.batch_size, stop=s.stop, max_batch_tokens=s.max_batch_tokens, progress=progress,
        )
        return answers if s.extract is None else [[s.extract(t) for t in row] for row in answers]
