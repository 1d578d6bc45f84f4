"""Left-padded batched decoding whose every row is reproducible on its own.

A row's continuation depends only on its prompt, its adapter and its own seed,
never on which other rows share its batch: greedy rows take the argmax, and
sampled rows draw from their own `torch.Generator` (seeded from the call's
seed and the prompt's index), so the one-adapter-at-a-time path and the
multi-LoRA path give the same items, and a resumed run the same as an
uninterrupted one.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessor,
    StoppingCriteria,
    TemperatureLogitsWarper,
    TopPLogitsWarper,
)

__all__ = ["Decoding", "length_chunks", "row_seed"]


def row_seed(seed: int, index: int) -> int:
    """The seed of prompt ``index``'s row in a call seeded with ``seed``."""
    return (seed * 1_000_003 + index) % (2**63)


def length_chunks(ids: Sequence[Sequence[int]], batch_size: int) -> list[list[int]]:
    """Prompt indices sorted by token length, in chunks of ``batch_size`` (little padding per batch)."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]


class _StopOnString(StoppingCriteria):
    """Marks a row finished once its continuation contains `stop` (checked on a short tail)."""

    def __init__(self, tokenizer, stop: str, prompt_len: int) -> None:
        self.tokenizer, self.stop, self.prompt_len = tokenizer, stop, prompt_len
        self.window = len(stop) + 4

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        tails = input_ids[:, max(self.prompt_len, input_ids.shape[1] - self.window):]
        texts = self.tokenizer.batch_decode(tails, skip_special_tokens=True)
        return torch.tensor([self.stop in t for t in texts], dtype=torch.bool, device=input_ids.device)


class _RowSampler(LogitsProcessor):
    """Temperature and top-p, then one draw per row from that row's seed's generator.

    The draw is ``torch.multinomial(p, 1, generator=g)``'s own (the argmax of
    p / q with q ~ Exp(1) drawn from g), done for every row at once. Rows with
    the same seed (one prompt's rows for every adapter of a multi-LoRA batch)
    share one generator: their streams would be identical anyway, so a step
    draws one q per distinct prompt, not one per row. Returns logits that are
    -inf except at the drawn token, so generate's greedy step picks exactly
    the draw."""

    def __init__(self, seeds: Sequence[int], device: torch.device, temperature: float, top_p: float) -> None:
        distinct = {s: j for j, s in enumerate(dict.fromkeys(seeds))}
        self.generators = [torch.Generator(device=device).manual_seed(s) for s in distinct]
        self.rows = torch.tensor([distinct[s] for s in seeds], device=device)
        self.warpers = [TemperatureLogitsWarper(temperature)] + ([TopPLogitsWarper(top_p)] if top_p < 1.0 else [])

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for warp in self.warpers:
            scores = warp(input_ids, scores)
        probs = torch.softmax(scores.float(), dim=-1)
        q = torch.stack([torch.empty_like(probs[0]).exponential_(1, generator=g) for g in self.generators])
        drawn = torch.argmax(probs / q[self.rows], dim=-1)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, drawn[:, None], 0.0)


@dataclass(frozen=True)
class Decoding:
    """One call's decoding settings; `run` decodes one left-padded batch of token id lists."""

    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    stop: str | None = None

    def run(self, model, tokenizer, rows: Sequence[Sequence[int]], seeds: Sequence[int], device: torch.device) -> list[str]:
        """Continuations of ``rows`` (prompt stripped, cut at ``stop``); ``seeds[i]`` drives row i's sampling."""
        eos = model.generation_config.eos_token_id
        config = GenerationConfig(
            max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=eos if eos is not None else tokenizer.eos_token_id,
            remove_invalid_values=True,  # a particle the swarm moved too far may give NaN/inf logits
        )
        batch = tokenizer.pad({"input_ids": [list(r) for r in rows]}, padding=True, return_tensors="pt").to(device)
        width = batch["input_ids"].shape[1]
        processors = []
        if self.temperature > 0:
            processors.append(_RowSampler(seeds, device, self.temperature, self.top_p))
        criteria = [_StopOnString(tokenizer, self.stop, width)] if self.stop else None
        with torch.no_grad():
            out = model.generate(**batch, generation_config=config, logits_processor=processors, stopping_criteria=criteria)
        texts = tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
        return [t.split(self.stop, 1)[0] if self.stop else t for t in texts]
