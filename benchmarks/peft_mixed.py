"""PEFT's own mixed-adapter batches as a multi-LoRA engine: the third column of benchmarks/multi_lora.py.

PEFT applies several adapters in one batch when a forward gets
``adapter_names``, one adapter name per row (`PeftModel.forward(...,
adapter_names=[...])`, the "mixed adapter batches" inference of its docs;
`generate(..., adapter_names=...)` passes them on the same way): each LoRA
layer computes base(x) once and then, for every distinct name, ``lora_B(lora_A(
x[rows])) * scaling`` added to that name's rows. `PeftMixed` has the interface
of `generators.models.multi_lora.MultiLora` (``active(bank)``, ``keep(kept)``),
so `LoraModel.generate_each` and the decoding loop (finished rows and whole
adapters leaving the batch) run unchanged: the bank's rows are copied into as
many named PEFT adapters (added once, each re-seated on one flat buffer as
`LoraModel` does, so a row is one copy), and a forward pre-hook on the
PeftModel passes each batch row's adapter name.

    with batching_with([PeftMixed(lm)]):     # lm.generate_each batches through PEFT's mixed path
        texts = lm.generate_each(vectors, prompts, max_new_tokens=64)
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from peft.utils.save_and_load import get_peft_model_state_dict

from generators.models.lora_model import LoraModel
from generators.models.particles import share_flat

__all__ = ["PeftMixed", "batching_with"]


class PeftMixed:
    """Named PEFT adapters holding a bank's rows, and the ``adapter_names`` of every forward."""

    def __init__(self, lm: LoraModel) -> None:
        self.lm = lm
        self.slots: list[tuple[str, torch.Tensor]] = []  # (adapter name, its flat buffer)
        self.names: list[str] = []  # the adapter of each segment of the current batch

    def reserve(self, n: int) -> None:
        """Named adapters for ``n`` rows of a bank, made now (PEFT's `add_adapter` is not a step's cost)."""
        if n > 0:
            self._slot(n - 1)

    def _slot(self, g: int) -> tuple[str, torch.Tensor]:
        while len(self.slots) <= g:
            name, model = f"{self.lm.adapter}_mixed{len(self.slots)}", self.lm.model
            model.add_adapter(name, self.lm.config)
            live = get_peft_model_state_dict(model, adapter_name=name)  # file keys, views of the live tensors
            params = {p.data_ptr(): p for p in model.parameters()}
            self.slots.append((name, share_flat({k: params[t.data_ptr()] for k, t in live.items()}, self.lm.spec)))
        return self.slots[g]

    @contextlib.contextmanager
    def active(self, bank: torch.Tensor) -> Iterator[None]:
        """Within the block, a batch of ``G * k`` rows gives rows ``[g*k, (g+1)*k)`` adapter ``bank[g]``."""
        with torch.no_grad():
            for g, row in enumerate(bank):
                self._slot(g)[1].copy_(row)
        self.names = [self._slot(g)[0] for g in range(len(bank))]
        hook = self.lm.model.register_forward_pre_hook(self._adapter_names, with_kwargs=True)
        try:
            yield
        finally:
            hook.remove()
            self.names = []

    def _adapter_names(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        rows = len(kwargs["input_ids"]) // len(self.names)  # the batch is equal segments, adapter-major
        return args, {**kwargs, "adapter_names": [name for name in self.names for _ in range(rows)]}

    def keep(self, kept: torch.Tensor) -> None:
        """Only adapters ``kept`` (indices into the current ones, in order) still have rows."""
        self.names = [self.names[i] for i in kept.tolist()]


@contextlib.contextmanager
def batching_with(engines: list[PeftMixed]) -> Iterator[None]:
    """Within the block, each engine's model batches its adapters through it (`generate_each`), in place
    of the hand-written hooks (`LoraModel._multi`), which the block puts back."""
    saved = [(e.lm, e.lm._multi, e.lm.multi_lora) for e in engines]
    try:
        for e in engines:
            e.lm._multi, e.lm.multi_lora = e, True
        yield
    finally:
        for lm, multi, flag in saved:
            lm._multi, lm.multi_lora = multi, flag
