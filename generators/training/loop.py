"""The one training loop of the project's models: the zoo's models and `dswarm-experts`' LoRA experts.

Built on transformers' utilities: ``DataCollatorForSeq2Seq`` pads a batch
(right padding, labels -100 where no loss is taken) and
``get_cosine_with_min_lr_schedule_with_warmup`` is the schedule. Budgets are
steps, never wall-clock, so a seed names one set of weights.
"""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

import torch
from transformers import DataCollatorForSeq2Seq, get_cosine_with_min_lr_schedule_with_warmup

__all__ = ["Example", "encode", "collator", "label_loss", "micro_batches", "train_loop"]

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


def micro_batches(batch: dict[str, torch.Tensor], max_tokens: int | None) -> Iterator[tuple[dict[str, torch.Tensor], float]]:
    """``batch`` in pieces of at most ``max_tokens`` rows x padded length (one row at least), each with its share of
    the batch's label tokens: the shares' weighted losses sum to the batch's loss (the mean over all its labels)."""
    rows, width = batch["input_ids"].shape
    if max_tokens is None or rows * width <= max_tokens:
        yield batch, 1.0
        return
    total = int((batch["labels"][:, 1:] != -100).sum())
    per = max(1, max_tokens // width)
    for start in range(0, rows, per):
        part = {k: v[start:start + per] for k, v in batch.items()}
        used = int(part["attention_mask"].sum(1).max())  # right padding: columns past every row's end go
        part = {k: v[:, :used] for k, v in part.items()}
        labelled = int((part["labels"][:, 1:] != -100).sum())
        if labelled:
            yield part, labelled / total


def label_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor], label_logits: bool) -> torch.Tensor:
    """The mean next-token loss over the batch's labels. ``label_logits``: logits only at the positions that
    predict a label (``logits_to_keep``), not at every prompt token: [rows, L, vocab] was most of a long
    example's memory."""
    if not label_logits:
        return model(**batch).loss
    labels = batch["labels"]
    keep = (labels[:, 1:] != -100).any(0).nonzero().flatten()  # position t predicts token t + 1
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep).logits
    return torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), labels[:, keep + 1].flatten(), ignore_index=-100)


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
    max_tokens: int | None = None,
    label_logits: bool = False,
) -> list[float]:
    """AdamW on the trainable parameters, linear warmup then cosine to ``min_lr`` x lr; the loss of every step.

    ``batches(step)`` gives the step's batches (their losses are summed: e.g.
    Q/A lines and problem lists in one step). ``min_lr=1, warmup=0`` is a constant rate.
    A batch of more than ``max_tokens`` rows x tokens runs as micro-batches whose gradients add up to
    the batch's (the memory budget of a forward pass: ``batching.max_batch_tokens``)."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = get_cosine_with_min_lr_schedule_with_warmup(opt, int(warmup * steps), steps, min_lr_rate=min_lr)
    device = next(model.parameters()).device
    losses = []
    model.train()
    for step in range(steps):
        parts = [piece for batch in batches(step) for piece in micro_batches(batch, max_tokens)]
        whole = all(share == 1.0 for _, share in parts)  # nothing split: one backward of the summed losses, as ever
        total = 0.0
        for part, share in parts:
            with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
                loss = label_loss(model, {k: v.to(device) for k, v in part.items()}, label_logits) * share
            if whole:
                total = total + loss
            else:
                loss.backward()  # part by part: one part's activations alive at a time
                total += loss.item()
        if whole:
            total.backward()
            total = total.item()
        torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(total)
        if on_step is not None:
            on_step(step, losses[-1])
    model.eval()
    return losses
