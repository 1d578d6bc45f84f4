"""LoRA tensors <-> one flat fp32 vector per particle.

This is the only module that knows how a set of named LoRA tensors maps onto
the flat vectors the PSO works on. The layout is fixed by a `FlatSpec`:
names in sorted order, each tensor's elements contiguous (row-major) at its
offset. Flat vectors are always fp32, whatever the adapters' dtype, so the
swarm arithmetic never rounds to bf16 between steps; `share_flat` puts a live
model's LoRA tensors into one buffer of this layout (in the model's dtype), so
loading a particle is one cast-and-copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

__all__ = ["FlatSpec", "spec_of", "check_vector", "flatten", "unflatten", "share_flat"]


@dataclass(frozen=True)
class FlatSpec:
    """Layout of a flat vector: `names[k]` has shape `shapes[k]` and occupies
    `vec[offsets[k] : offsets[k] + prod(shapes[k])]`; `numel` is the total."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    offsets: tuple[int, ...]
    numel: int

    def sizes(self) -> tuple[int, ...]:
        """Number of elements of each named tensor, in `names` order."""
        return tuple(_prod(s) for s in self.shapes)


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def spec_of(tensors: Mapping[str, torch.Tensor]) -> FlatSpec:
    """The layout of `tensors`: sorted names, so it does not depend on dict order."""
    if not tensors:
        raise ValueError("spec_of: no tensors given")
    names = tuple(sorted(tensors))
    shapes = tuple(tuple(int(s) for s in tensors[k].shape) for k in names)
    offsets, total = [], 0
    for shape in shapes:
        offsets.append(total)
        total += _prod(shape)
    return FlatSpec(names=names, shapes=shapes, offsets=tuple(offsets), numel=total)


def _check_keys(tensors: Mapping[str, torch.Tensor], spec: FlatSpec, what: str) -> None:
    """Raise a ValueError naming the offending key(s) if `tensors` does not match `spec`."""
    missing = [k for k in spec.names if k not in tensors]
    extra = sorted(k for k in tensors if k not in set(spec.names))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}" + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""))
        if extra:
            parts.append(f"unexpected {extra[:5]}" + (f" (+{len(extra) - 5} more)" if len(extra) > 5 else ""))
        raise ValueError(f"{what}: tensor names do not match the flat spec: " + "; ".join(parts))
    for name, shape in zip(spec.names, spec.shapes):
        got = tuple(tensors[name].shape)
        if got != shape:
            raise ValueError(f"{what}: tensor {name!r} has shape {list(got)}, spec expects {list(shape)}")


def check_vector(vec: torch.Tensor, spec: FlatSpec, what: str) -> None:
    """Raise a ValueError naming ``what`` unless ``vec`` is 1-D with ``spec.numel`` elements."""
    if vec.dim() != 1 or vec.numel() != spec.numel:
        raise ValueError(f"{what}: expected a 1-D vector of {spec.numel} elements, got shape {list(vec.shape)}")


def flatten(
    tensors: Mapping[str, torch.Tensor], spec: FlatSpec, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Concatenate `tensors` in spec order into one fp32 1-D vector.

    With `out` (fp32, 1-D, `spec.numel` elements, e.g. a row of the PSO's
    position matrix) the values are written there and `out` is returned, so
    loading a swarm allocates nothing per particle.
    """
    _check_keys(tensors, spec, "flatten")
    if out is None:
        device = tensors[spec.names[0]].device
        out = torch.empty(spec.numel, dtype=torch.float32, device=device)
    else:
        check_vector(out, spec, "flatten(out=)")
        if out.dtype != torch.float32:
            raise ValueError(f"flatten(out=): out must be float32, got {out.dtype}")
    for name, offset, size in zip(spec.names, spec.offsets, spec.sizes()):
        out[offset : offset + size].copy_(tensors[name].detach().reshape(-1))
    return out


def unflatten(vec: torch.Tensor, spec: FlatSpec) -> dict[str, torch.Tensor]:
    """Named views into `vec` (no copy): writing to them writes to `vec`."""
    check_vector(vec, spec, "unflatten")
    return {
        name: vec[offset : offset + size].view(shape)
        for name, shape, offset, size in zip(spec.names, spec.shapes, spec.offsets, spec.sizes())
    }


def share_flat(params: Mapping[str, torch.nn.Parameter], spec: FlatSpec) -> torch.Tensor:
    """Re-seat live parameters as views of one flat buffer in `spec`'s layout; return the buffer.

    This is how a particle becomes the active adapter: afterwards
    `buffer.copy_(vec)` writes a whole particle into the model in one copy
    (cast to the parameters' dtype). The model keeps its parameter objects and
    their values; only their storage moves into the buffer, so nothing is
    reloaded or re-wrapped between particles.
    """
    _check_keys(params, spec, "share_flat")
    first = params[spec.names[0]]
    if any(params[name].dtype != first.dtype or params[name].device != first.device for name in spec.names):
        raise ValueError("share_flat: parameters differ in dtype or device; one flat buffer cannot hold them")
    buffer = torch.empty(spec.numel, dtype=first.dtype, device=first.device)
    with torch.no_grad():
        for name, view in unflatten(buffer, spec).items():
            view.copy_(params[name])
            params[name].data = view
    return buffer
