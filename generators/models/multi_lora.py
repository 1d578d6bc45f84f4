"""Many LoRA adapters of one base in one forward pass (segmented batched matmul).

Serving systems (S-LoRA, Punica's SGMV, vLLM's multi-LoRA) batch requests for
different adapters of one base: the base weights are read once for all rows
and each row gets its own low-rank update. Here the adapters are the rows of
a `bank` [G, d] in the flat layout of `generators.models.particles` (the PSO's
position matrix itself when dtype and device agree), and a batch is laid out
adapter-major, `k` rows per adapter. Each LoRA linear layer then adds

    out[g, rows] += scaling * (x[g, rows] @ A_g^T) @ B_g^T      for every g at once

as one `torch.bmm` and one in-place `baddbmm_` over the G segments. A_g^T and
B_g^T of every layer are laid out from the bank by one gather per batch (one
copy of [G, d] for all the forwards of a `generate`), each matrix contiguous,
not read strided every step.
PEFT's own LoRA path is switched off in those layers meanwhile, so each
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

from generators.models.particles import FlatSpec

__all__ = ["MultiLora"]


@dataclass(frozen=True)
class _Slot:
    """Where one LoRA layer's A and B sit in a flat vector."""

    a_offset: int
    a_shape: tuple[int, int]  # [r, in]
    b_offset: int
    b_shape: tuple[int, int]  # [out, r]
    scaling: float


class MultiLora:
    """Forward hooks on one adapter's LoRA layers that apply a bank of adapters, one per row segment."""

    def __init__(self, peft_model: PeftModel, adapter: str, slots: dict[LoraLinear, _Slot]) -> None:
        self.peft_model, self.adapter, self.slots = peft_model, adapter, slots
        self._weights: dict[LoraLinear, tuple[torch.Tensor, torch.Tensor, float]] = {}
        # Where each layer's A^T [in, r] and B^T [r, out] come from in a flat vector, side by side: `active`
        # lays every layer out with one gather instead of two strided copies per layer.
        blocks, self._shapes = [], []
        for s in slots.values():
            (r, n_in), (n_out, _) = s.a_shape, s.b_shape
            blocks.append(s.a_offset + torch.arange(r * n_in).view(r, n_in).t().reshape(-1))
            blocks.append(s.b_offset + torch.arange(n_out * r).view(n_out, r).t().reshape(-1))
            self._shapes += [(n_in, r), (r, n_out)]
        device = next(peft_model.parameters()).device
        self._gather = torch.cat(blocks).to(device) if blocks else torch.zeros(0, dtype=torch.long, device=device)
        self._sizes = [a * b for a, b in self._shapes]
        self._laid_out: torch.Tensor | None = None  # `active`'s gather buffer, sized for the largest bank so far
        self._layouts: dict[int, dict[LoraLinear, tuple[torch.Tensor, torch.Tensor, float]]] = {}  # views of it by bank size
        for module in slots:
            module.register_forward_hook(self._hook(module))

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

    def _hook(self, module: LoraLinear):
        def hook(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
            weights = self._weights.get(module)
            if weights is None:
                return None
            a_t, b_t, scaling = weights
            x = args[0].to(a_t.dtype)  # PEFT keeps adapters in fp32 over a bf16/fp16 base and computes them there
            low = torch.bmm(x.reshape(len(a_t), -1, x.shape[-1]), a_t)  # [G, k*L, r]: rows are adapter-major
            if output.is_contiguous() and output.dtype == b_t.dtype:  # base(x) is fresh: add the G updates in place
                output.view(len(b_t), -1, output.shape[-1]).baddbmm_(low, b_t, alpha=scaling)
                return output
            return (output + torch.bmm(low, b_t).view_as(output) * scaling).to(output.dtype)  # PEFT's order and cast

        return hook

    @contextlib.contextmanager
    def active(self, bank: torch.Tensor) -> Iterator[None]:
        """Within the block, a batch of ``G * k`` rows gives rows ``[g*k, (g+1)*k)`` adapter ``bank[g]``.

        ``bank`` must be in the model's dtype and on its device; PEFT's own
        LoRA path is off inside, so only the bank's adapters apply. Each
        layer's A^T [G, in, r] and B^T [G, r, out] are laid out once here, for
        every forward of the block, by one gather of the bank (each adapter's
        matrix contiguous: on CPU a bmm over G small transposed views is several
        times slower, and a decode step runs it per layer)."""
        if bank.dim() != 2:
            raise ValueError(f"MultiLora.active: expected a [G, d] bank, got shape {list(bank.shape)}")
        laid_out, weights = self._layout(len(bank), bank.dtype)
        torch.index_select(bank, 1, self._gather, out=laid_out)
        self._weights = weights
        # PEFT's own path off in these layers only, by the flag its forward reads: `enable_adapters` also resets
        # requires_grad on every adapter parameter, and `PeftModel.disable_adapter` walks every module (together
        # 1.7 % of a zoo step); tests/test_multi_lora.py checks that the flag still switches PEFT's path. The flag
        # is a plain attribute: set past nn.Module.__setattr__, which first looks for a parameter, buffer or
        # submodule of that name (10x the cost, twice per layer).
        for module in self.slots:
            object.__setattr__(module, "_disable_adapters", True)
        try:
            yield
        finally:
            for module in self.slots:
                object.__setattr__(module, "_disable_adapters", False)
            self._weights = {}

    def _layout(self, g: int, dtype: torch.dtype) -> tuple[torch.Tensor, dict[LoraLinear, tuple[torch.Tensor, torch.Tensor, float]]]:
        """The rows a bank of ``g`` adapters is gathered into and each layer's (A^T, B^T, scaling) views of them,
        made once per bank size: `active` then only gathers. One buffer, as big as the largest bank so far,
        serves every size (what one gather of that bank would hold at once)."""
        buffer = self._laid_out
        if buffer is None or buffer.dtype != dtype or len(buffer) < g:
            buffer = self._laid_out = torch.empty(g, len(self._gather), dtype=dtype, device=self._gather.device)
            self._layouts = {}  # views of the old buffer
        if g not in self._layouts:
            parts = [part.unflatten(1, shape) for part, shape in zip(buffer[:g].split(self._sizes, dim=1), self._shapes)]
            self._layouts[g] = {module: (a_t, b_t, s.scaling)
                                for (module, s), a_t, b_t in zip(self.slots.items(), parts[0::2], parts[1::2])}
        return buffer[:g], self._layouts[g]

    def keep(self, kept: torch.Tensor) -> None:
        """Inside `active`: only adapters ``kept`` (indices into the current bank, in order) still have rows.

        Decoding calls it when every row of some adapters has finished and
        left the batch (`generators.models.decoding.compaction`)."""
        self._weights = {module: (a_t[kept], b_t[kept], scaling) for module, (a_t, b_t, scaling) in self._weights.items()}
