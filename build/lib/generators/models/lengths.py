"""Lengths from the task: token budgets sized to what the task's examples need.

Fixed budgets (192 training tokens, 16 answer tokens) fit GSM8K and nothing with long
inputs. Here every budget that the config leaves ``null`` is computed from token-length
percentiles of the task's own dev items, bounded by the model's context:

- generation: ``items_per_prompt`` items of the 90th-percentile item length, +25 %;
- few-shot: shrunk, one example at a time, until prompt + generation fit the context;
- generator training: the prompt's examples and targets at that length (what the expert
  must see to learn the task's items whole);
- taker answers (``line``): the 95th-percentile reference length; taker training: the
  90th-percentile prompt plus that answer.

An impossible fit raises ``ValueError`` naming the ``dswarm`` setting to change.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Sequence

SAMPLE = 2000  # items tokenized for the percentiles (a seeded sample of larger tasks)
SLACK = 8  # tokens for numbering, separators and the end token


def percentile(values: Sequence[int], q: float) -> int:
    """The ``q``-quantile (nearest rank) of ``values``; 0 when empty."""
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def token_lengths(tokenizer, texts: Sequence[str]) -> list[int]:
    """Token count of each text (a seeded sample of ``SAMPLE`` when there are more)."""
    texts = list(texts)
    if len(texts) > SAMPLE:
        texts = random.Random(0).sample(texts, SAMPLE)
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []


def model_context(config, default: int = 2048) -> int:
    """The model's context length from its HF config (``max_position_embeddings``)."""
    return int(getattr(config, "max_position_embeddings", None) or default)


@dataclass(frozen=True)
class GeneratorLengths:
    few_shot: int
    max_new_tokens: int
    train_max_len: int


def generator_lengths(tokenizer, context: int, examples: Sequence[str], template: str, few_shot: int,
                      items_per_prompt: int, max_new_tokens: int | None = None,
                      train_max_len: int | None = None) -> GeneratorLengths:
    """Few-shot count and token budgets of the generator for these formatted dev ``examples``."""
    item = percentile(token_lengths(tokenizer, examples), 0.9) + 3  # "k. " before each line
    header = len(tokenizer(template.format(n=items_per_prompt, examples=""))["input_ids"]) + 3
    new = max_new_tokens or math.ceil(1.25 * items_per_prompt * item) + SLACK
    if header + new > context:
        raise ValueError(f"generator.max_new_tokens: {new} new tokens after a {header}-token prompt exceed the "
                         f"model's context of {context}; lower generator.items_per_prompt or generator.max_new_tokens")
    shots = few_shot
    while shots > 0 and header + shots * item + new > context:
        shots -= 1
    train = train_max_len or min(context, header + (shots + items_per_prompt) * item + SLACK)
    return GeneratorLengths(shots, new, train)


def taker_lengths(tokenizer, context: int, prompts: Sequence[str], outputs: Sequence[str],
                  max_new_tokens: int | None = None, train_max_len: int | None = None) -> tuple[int, int]:
    """(answer tokens, taker training length) for these taker ``prompts`` and reference ``outputs``."""
    prompt = percentile(token_lengths(tokenizer, prompts), 0.9)
    answer = percentile(token_lengths(tokenizer, outputs), 0.95) + SLACK
    new = max_new_tokens or answer
    if prompt + new > context:
        raise ValueError(f"taker.max_new_tokens: {new} answer tokens after {prompt}-token questions exceed the "
                         f"model's context of {context}; lower taker.max_new_tokens")
    return new, train_max_len or min(context, prompt + answer)
