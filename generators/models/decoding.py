"""Left-padded batched decoding whose every row is reproducible on its own.

A row's continuation depends only on its prompt, its adapter and its own seed,
never on which other rows share its batch: greedy rows take the argmax, and
sampled rows draw from their own `torch.Generator` (seeded from the call's
seed and the prompt's index), so the one-adapter-at-a-time path and the
multi-LoRA path give the same items, and a resumed run the same as an
uninterrupted one.

Finished rows leave the batch. `generate` keeps computing a row after its
EOS or stop string until the batch's last row ends; in a zoo step the
generators' rows are live for about half of their batch's decode steps and
the takers' one-line answers for a quarter (docs/performance.md). The loop
here (the same greedy step, processors and KV cache as `generate`) drops
them from the batch, its KV cache and its adapters whenever that removes an
eighth of the rows.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from transformers import DynamicCache, LogitsProcessor, TemperatureLogitsWarper, TopPLogitsWarper

__all__ = ["Decoding", "compaction", "length_chunks", "row_seed"]


def row_seed(seed: int, index: int) -> int:
    """The seed of prompt ``index``'s row in a call seeded with ``seed``."""
    return (seed * 1_000_003 + index) % (2**63)


def length_chunks(ids: Sequence[Sequence[int]], batch_size: int, max_tokens: int | None = None,
                  new_tokens: int = 0) -> list[list[int]]:
    """Prompt indices sorted by token length, in chunks of ``batch_size`` (little padding per batch), each
    chunk's rows x (its longest prompt + ``new_tokens``) within ``max_tokens`` (a longer prompt: a chunk alone)."""
    lengths = [len(row) for row in ids]
    chunks: list[list[int]] = []
    chunk: list[int] | None = None
    for i in sorted(range(len(ids)), key=lengths.__getitem__):  # ascending: the newest prompt is the longest
        if chunk is None or len(chunk) >= batch_size or (
                max_tokens is not None and (len(chunk) + 1) * (lengths[i] + new_tokens) > max_tokens):
            chunk = []
            chunks.append(chunk)
        chunk.append(i)
    return chunks


class _RowSampler(LogitsProcessor):
    """Temperature and top-p, then one draw per row from that row's seed's generator.

    The draw is ``torch.multinomial(p, 1, generator=g)``'s own (the argmax of
    p / q with q ~ Exp(1) drawn from g), done for every row at once. Rows with
    the same seed (one prompt's rows for every adapter of a multi-LoRA batch)
    share one generator: their streams would be identical anyway, so a step
    draws one q per distinct prompt still in the batch, not one per row.
    Returns logits that are -inf except at the drawn token, so the greedy
    step picks exactly the draw."""

    def __init__(self, seeds: Sequence[int], device: torch.device, temperature: float, top_p: float) -> None:
        distinct = {s: j for j, s in enumerate(dict.fromkeys(seeds))}
        self.generators = [torch.Generator(device=device).manual_seed(s) for s in distinct]
        self.rows = torch.tensor([distinct[s] for s in seeds], device=device)
        self.warpers = [TemperatureLogitsWarper(temperature)] + ([TopPLogitsWarper(top_p)] if top_p < 1.0 else [])

    def select(self, index: torch.Tensor) -> None:
        """Keep batch rows ``index`` (the rows that left stop drawing; the others' streams go on unchanged)."""
        self.rows = self.rows[index]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for warp in self.warpers:
            scores = warp(input_ids, scores)
        probs = torch.softmax(scores.float(), dim=-1)
        live, rows = torch.unique(self.rows, return_inverse=True)  # one draw per generator still in the batch
        q = torch.stack([torch.empty_like(probs[0]).exponential_(1, generator=self.generators[j]) for j in live.tolist()])
        drawn = torch.argmax(probs / q[rows], dim=-1)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, drawn[:, None], 0.0)


def compaction(finished: torch.Tensor, groups: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Rows to keep, and which of the ``groups`` segments keep any, or None when too few rows would leave.

    The batch is ``groups`` equal segments (one per adapter, adapter-major), so
    the kept batch must be too: every segment with a live row keeps its live
    rows, in order, topped up with its own finished rows to the largest live
    count. None unless that drops at least an eighth of the rows (a drop
    copies the KV cache once)."""
    live = ~finished.view(groups, -1)
    counts = live.sum(1)
    kept = counts.nonzero().flatten()
    width = int(counts.max())
    if len(kept) * width > 0.875 * finished.numel():
        return None
    order = torch.argsort((~live).to(torch.int8), dim=1, stable=True)[:, :width]  # live rows first
    rows = order + torch.arange(groups, device=finished.device)[:, None] * live.shape[1]
    return rows[kept].flatten(), kept


def _keeps_last_logits(model) -> bool:
    """Whether the (PEFT-wrapped) model takes ``logits_to_keep``: the prefill then computes one row of logits, not L."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return _takes_logits_to_keep(type(base))


@functools.cache
def _takes_logits_to_keep(cls: type) -> bool:
    """Read once per model class: `inspect.signature` costs ~25 us, and a zoo step decodes 9 batches."""
    return "logits_to_keep" in inspect.signature(cls.forward).parameters


def _eos_ids(model, tokenizer) -> list[int]:
    eos = model.generation_config.eos_token_id
    eos = tokenizer.eos_token_id if eos is None else eos
    return [] if eos is None else [eos] if isinstance(eos, int) else list(eos)


@dataclass(frozen=True)
class Decoding:
    """One call's decoding settings; `run` decodes one left-padded batch of token id lists."""

    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    stop: str | None = None

    def run(
        self,
        model,
        tokenizer,
        rows: Sequence[Sequence[int]],
        seeds: Sequence[int],
        device: torch.device,
        groups: int = 1,
        keep_groups: Callable[[torch.Tensor], None] | None = None,
    ) -> list[str]:
        """Continuations of ``rows`` (prompt stripped, cut at ``stop``); ``seeds[i]`` drives row i's sampling.

        ``rows`` are ``groups`` equal segments, one per adapter of a multi-LoRA
        batch; when whole segments leave, ``keep_groups(kept)`` is told which
        stay, in order, so the adapters can follow their rows."""
        batch = tokenizer.pad({"input_ids": [list(r) for r in rows]}, padding=True, return_tensors="pt").to(device)
        ids, mask = batch["input_ids"], batch["attention_mask"]
        pad = tokenizer.pad_token_id
        eos = torch.tensor(_eos_ids(model, tokenizer), device=device, dtype=torch.long)
        sampler = _RowSampler(seeds, device, self.temperature, self.top_p) if self.temperature > 0 else None
        out = torch.full((len(rows), self.max_new_tokens), pad, dtype=torch.long, device=device)
        finished = torch.zeros(len(rows), dtype=torch.bool, device=device)
        where = torch.arange(len(rows), device=device)  # batch row -> row of `rows`
        positions = (mask.long().cumsum(-1) - 1).clamp_(min=0)  # left padding: each row's tokens count from 0
        cache = DynamicCache(config=model.config)
        extra = {"logits_to_keep": 1} if _keeps_last_logits(model) else {}
        inputs = ids
        with torch.no_grad():
            for t in range(self.max_new_tokens):
                logits = model(input_ids=inputs, attention_mask=mask, position_ids=positions, cache=cache,
                               use_cache=True, **extra).logits[:, -1, :].float()
                logits = torch.nan_to_num(logits)  # a particle the swarm moved too far may give NaN/inf logits
                if sampler is not None:
                    logits = sampler(inputs, logits)
                tokens = logits.argmax(dim=-1).masked_fill_(finished[where], pad)  # a finished row's filler writes pad
                out[where, t] = tokens
                done = finished[where] | torch.isin(tokens, eos) | self._stopped(tokenizer, out[where, : t + 1])
                finished[where] = done
                if bool(done.all()):
                    break
                cut = compaction(done, groups)
                if cut is not None:
                    index, kept = cut
                    cache.batch_select_indices(index)
                    where, tokens, mask, positions = where[index], tokens[index], mask[index], positions[index]
                    if sampler is not None:
                        sampler.select(index)
                    if keep_groups is not None and len(kept) < groups:
                        keep_groups(kept)
                    groups = len(kept)
                inputs = tokens[:, None]
                mask = torch.cat([mask, mask.new_ones(len(mask), 1)], dim=1)
                positions = positions[:, -1:] + 1
        texts = tokenizer.batch_decode(out, skip_special_tokens=True)
        return [t.split(self.stop, 1)[0] if self.stop else t for t in texts]

    def _stopped(self, tokenizer, new: torch.Tensor) -> torch.Tensor:
        """Rows whose continuation so far ends in a text containing ``stop`` (checked on a short tail)."""
        if not self.stop:
            return torch.zeros(len(new), dtype=torch.bool, device=new.device)
        tails = tokenizer.batch_decode(new[:, -(len(self.stop) + 4):], skip_special_tokens=True)
        return torch.tensor([self.stop in text for text in tails], dtype=torch.bool, device=new.device)
