"""The PSO's velocity and position update as in-place passes over memory (swarm/search/pso.py calls it).

    v ← a_i·v + a_c·(p − x) + a_s·(g − x) + a_r·(x − g_worst);  x ← x + λ·v

The update is memory-bound, so its cost is how often it streams [n, d]
tensors. Compiled (`torch.compile` fuses the differences form into one loop
that reads x, v, p, g_worst and writes x, v), or eager, regrouped as
a_i·v + a_c·p + (a_r − a_c − a_s)·x + a_s·g − a_r·g_worst: six in-place passes
and no scratch buffer, on CPU over column blocks that fit in cache so memory
is streamed about once (the differences form would need eight passes and a
scratch). The regrouping costs a few ulps of |x| per step, far below any step
the search takes; with a single nonzero weight each term is still exact.
Either way a step over gemma-2-9b-sized LoRA particles is tens of
milliseconds, not the reference's safetensors round trips. Imports no repo module.
"""
from __future__ import annotations

import shutil
from typing import Callable

import torch

BLOCK = 1 << 16  # columns per block of the CPU update: 4 particles x 64 Ki fp32 = 1 MiB per tensor
FUSE_MIN = 1 << 22  # elements of x from which `fused="auto"` compiles the update (16 MiB fp32)

Update = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float], None]


def compiler_available() -> bool:
    """torch.compile on CPU needs a C++ compiler."""
    return any(shutil.which(cc) for cc in ("c++", "g++", "clang++"))


def _differences(x: torch.Tensor, v: torch.Tensor, p: torch.Tensor, g: torch.Tensor, g_worst: torch.Tensor,
                 a: torch.Tensor, step_length: torch.Tensor) -> None:
    """The update in the differences form, for `torch.compile` to fuse."""
    a_i, a_c, a_s, a_r = a[:, 0:1], a[:, 1:2], a[:, 2:3], a[:, 3:4]
    new_v = a_i * v + a_c * (p - x) + a_s * (g - x) + a_r * (x - g_worst)
    v.copy_(new_v)
    x.add_(step_length * new_v)


def eager(x: torch.Tensor, v: torch.Tensor, p: torch.Tensor, g: torch.Tensor, g_worst: torch.Tensor,
          a: torch.Tensor, step_length: float) -> None:
    """Six in-place passes, over cache-sized column blocks on CPU; ``a`` is [n, 4] (a_i, a_c, a_s, a_r)."""
    a_i, a_c, a_s, a_r = (a[:, k : k + 1] for k in range(4))
    a_x = a_r - a_c - a_s
    d = x.shape[1]
    block = BLOCK if x.device.type == "cpu" else d  # a GPU streams whole rows faster
    for start in range(0, d, block):  # column blocks stay in cache across the six passes
        cols = slice(start, start + block)
        xb, vb, pb = x[:, cols], v[:, cols], p[:, cols]
        vb.mul_(a_i)
        vb.addcmul_(pb, a_c)
        vb.addcmul_(xb, a_x)
        vb.addcmul_(a_s, g[cols])  # [n, 1] * [d] broadcasts without a temporary; g[cols] is in p's block
        vb.addcmul_(a_r, g_worst[cols], value=-1.0)
        xb.add_(vb, alpha=step_length)


def compiled() -> Update:
    """The one-pass update (compiles at its first call)."""
    fn = torch.compile(_differences, dynamic=False, fullgraph=True)

    def update(x, v, p, g, g_worst, a, step_length: float) -> None:
        fn(x, v, p, g, g_worst, a, torch.tensor(step_length, device=a.device))

    return update


def choose(fused: bool | str, x: torch.Tensor) -> tuple[Update, bool]:
    """The update for ``x`` and whether it is the compiled one; ``fused="auto"``: compile only where six
    passes over memory cost milliseconds (big particles on CPU, a C++ compiler present)."""
    if fused == "auto":
        fused = x.device.type == "cpu" and x.numel() >= FUSE_MIN and compiler_available()
    return (compiled(), True) if fused else (eager, False)
