"""Many LoRA adapters of one base in one forward pass (segmented batched matmul).

Serving systems (S-LoRA, Punica's SGMV, vLLM's multi-LoRA) batch requests for
different adapters of one base: the base weights are read once for all rows
and each row gets its own low-rank update. Here the adapters are the rows of
a `bank` [G, d] in the flat layout of `generators.particles` (the PSO's
position matrix itself when dtype and device agree: no copy), and a batch is
laid out adapter-major, `k` rows per adapter. Each LoRA linear layer then adds

    out[g, rows] += scaling * (x[g, rows] @ A_g^T) @ B_g^T      for every g at once

as two `torch.bmm` calls over the G segments, where A_g [r, in] and B_g [out, r]
are views into the bank's row g (strided batch, nothing gathered or copied).
PEFT's own LoRA path is switched off meanwhile (`disable_adapter`), so each
layer computes base(x) once plus the G updates.

Only vanilla LoRA on `nn.Linear` layers is batched (no DoRA, no
fan_in_fan_out, no LoRA bias, no embeddings); `MultiLora.build` returns None
for anything else and the caller keeps the one-adapter-at-a-time path.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from peft import PeftModel
from peft.tuners.lora import Linear as LoraLinear

from generators.particles import FlatSpec

__all__ = ["MultiLora"]


@dataclass(frozen=True)
class _Slot:
    """Where one LoRA layer's A and B sit in a flat vector."""

    a_offset: int
    a_shape: tuple[int, int]  # [r, in]
    b_offset: int
    b_shape: tuple[int, int]  # [out, r]
    scaling: float


def _view(bank: torch.Tensor, offset: int, shape: tuple[int, int]) -> torch.Tensor:
    """[G, *shape] view of every adapter's tensor at ``offset`` (row stride of the bank)."""
    return bank[:, offset : offset + shape[0] * shape[1]].unflatten(1, shape)


class MultiLora:
    """Forward hooks on one adapter's LoRA layers that apply a bank of adapters, one per row segment."""

    def __init__(self, peft_model: PeftModel, adapter: str, slots: dict[LoraLinear, _Slot]) -> None:
        self.peft_model, self.adapter, self.slots = peft_model, adapter, slots
        self._bank: torch.Tensor | None = None
        for module, slot in slots.items():
            module.register_forward_hook(self._hook(slot))

    @classmethod
    def build(cls, peft_model: PeftModel, adapter: str, spec: FlatSpec, keys: dict[int, str]) -> MultiLora | None:
        """Hooks for ``adapter``'s layers, or None when a layer is not vanilla linear LoRA.

        ``keys`` maps a live LoRA parameter's data_ptr to its name in ``spec``."""
        where = dict(zip(spec.names, zip(spec.offsets, spec.shapes)))
        slots: dict[LoraLinear, _Slot] = {}
        covered = 0
        for module in peft_model.modules():
            if not hasattr(module, "lora_A") or adapter not in module.lora_A:
                continue
            if not isinstance(module, LoraLinear) or module.fan_in_fan_out or adapter in module.lora_variant:
                return None
            a, b = module.lora_A[adapter], module.lora_B[adapter]
            if b.bias is not None or not isinstance(a, torch.nn.Linear):
                return None
            a_key, b_key = keys.get(a.weight.data_ptr()), keys.get(b.weight.data_ptr())
            if a_key is None or b_key is None:
                return None
            (a_off, a_shape), (b_off, b_shape) = where[a_key], where[b_key]
            slots[module] = _Slot(a_off, a_shape, b_off, b_shape, float(module.scaling[adapter]))
            covered += 2
        if covered != len(spec.names):  # some LoRA tensor this hook would not apply
            return None
        return cls(peft_model, adapter, slots)

    def _hook(self, slot: _Slot):
        def hook(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
            bank = self._bank
            if bank is None:
                return None
            x = args[0]
            groups = bank.shape[0]
            xs = x.reshape(groups, -1, x.shape[-1])  # [G, k*L, in]: rows are adapter-major
            low = torch.bmm(xs, _view(bank, slot.a_offset, slot.a_shape).transpose(1, 2))  # [G, k*L, r]
            delta = torch.bmm(low, _view(bank, slot.b_offset, slot.b_shape).transpose(1, 2))  # [G, k*L, out]
            return output + delta.view_as(output) * slot.scaling

        return hook

    @contextlib.contextmanager
    def active(self, bank: torch.Tensor) -> Iterator[None]:
        """Within the block, a batch of ``G * k`` rows gives rows ``[g*k, (g+1)*k)`` adapter ``bank[g]``.

        ``bank`` must be in the model's dtype and on its device; PEFT's own
        LoRA path is off inside, so only the bank's adapters apply."""
        if bank.dim() != 2:
            raise ValueError(f"MultiLora.active: expected a [G, d] bank, got shape {list(bank.shape)}")
        self._bank = bank
        try:
            with self.peft_model.disable_adapter():
                yield
        finally:
            self._bank = None
