"""The one training loop of the project's models: the zoo's models and `dswarm-experts`' LoRA experts.

Built on transformers' utilities: ``DataCollatorForSeq2Seq`` pads a batch
(right padding, labels -100 where no loss is taken) and
``get_cosine_with_min_lr_schedule_with_warmup`` is the schedule. Budgets are
steps, never wall-clock, so a seed names one set of weights.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from transformers import DataCollatorForSeq2Seq, get_cosine_with_min_lr_schedule_with_warmup

__all__ = ["Example", "encode", "collator", "train_loop"]

Example = tuple[list[int], list[int]]  # (input_ids, labels): -100 where no loss is taken


def encode(tokenizer, prompt: str, target: str, *, eos: bool, prompt_loss: bool = False, max_len: int | None = None,
           prompt_ids: list[int] | None = None) -> Example:
    """One example: prompt then target token ids, loss on the target (and on the prompt with ``prompt_loss``)."""
    p = prompt_ids if prompt_ids is not None else tokenizer(prompt)["input_ids"]
    t = tokenizer(target, add_special_tokens=False)["input_ids"] + ([tokenizer.eos_token_id] if eos else [])
    ids, labels = p + t, (p if prompt_loss else [-100] * len(p)) + t
    if max_len is not None:
        ids, labels = ids[:max_len], labels[:max_len]
    return ids, labels


def collator(tokenizer) -> Callable[[Sequence[Example]], dict[str, torch.Tensor]]:
    """Examples -> a right-padded batch (positions 0..n-1 in every row, as at generation time without padding)."""
    pad = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100, return_tensors="pt")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token

    def collate(examples: Sequence[Example]) -> dict[str, torch.Tensor]:
        side, tokenizer.padding_side = tokenizer.padding_side, "right"
        try:
            return pad([{"input_ids": i, "attention_mask": [1] * len(i), "labels": l} for i, l in examples])
        finally:
            tokenizer.padding_side = side

    return collate


def train_loop(
    model: torch.nn.Module,
    batches: Callable[[int], Sequence[dict[str, torch.Tensor]]],
    steps: int,
    lr: float,
    *,
    warmup: float = 0.05,
    min_lr: float = 0.1,
    clip: float = 1.0,
    autocast: torch.dtype | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """AdamW on the trainable parameters, linear warmup then cosine to ``min_lr`` x lr; the loss of every step.

    ``batches(step)`` gives the step's batches (their losses are summed: e.g.
    Q/A lines and problem lists in one step). ``min_lr=1, warmup=0`` is a constant rate."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = get_cosine_with_min_lr_schedule_with_warmup(opt, int(warmup * steps), steps, min_lr_rate=min_lr)
    device = next(model.parameters()).device
    losses = []
    model.train()
    for step in range(steps):
        with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
            loss = sum(model(**{k: v.to(device) for k, v in b.items()}).loss for b in batches(step))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if on_step is not None:
            on_step(step, losses[-1])
    model.eval()
    return losses
