"""What one forward pass costs in memory, and what the process may use: a run that cannot fit says so first.

``batching.max_batch_tokens`` bounds every forward pass to T = rows x (prompt + new
tokens). Such a pass holds the KV cache of its T tokens, one layer's activations of
them, and one layer's attention scores, rows x heads x L x L for rows of L tokens,
i.e. T x heads x L: linear in T, and in L too. ``forward_bytes`` is that sum for a
model's HF config:

    T x (2 x layers x kv_heads x head_dim + 4 x (4 x hidden + 3 x intermediate) + 2 x heads x L) x dtype bytes

(four live copies of a layer's hidden and MLP activations, two of its scores). On
SmolLM2-135M (fp32, CPU, one thread; peak RSS above the loaded model) it predicts
1.21 GiB for 4 rows x 1,300 tokens (measured 1.19) and 1.97 GiB for 16 x 650
(measured 1.95); on a GPU whose attention kernel never holds the scores it errs high, on
the safe side. ``check_fits`` compares the largest pass the budget allows with
the memory the process may use (RAM or its cgroup's limit, or the GPU's), less what
is already loaded: a fixed property of the machine, so a busy neighbour never turns
a good setting into an error.
"""
from __future__ import annotations

from pathlib import Path

import psutil
import torch

__all__ = ["forward_bytes", "memory_limit", "check_fits"]

GB = 1e9


def forward_bytes(config, tokens: int, longest: int, dtype_bytes: int = 4) -> int:
    """Peak bytes of one forward pass of ``tokens`` tokens in rows of at most ``longest`` tokens."""
    heads = int(config.num_attention_heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    kv = 2 * int(config.num_hidden_layers) * int(getattr(config, "num_key_value_heads", None) or heads) * head_dim
    activations = 4 * (4 * int(config.hidden_size) + 3 * int(getattr(config, "intermediate_size", 4 * config.hidden_size)))
    return tokens * (kv + activations + 2 * heads * longest) * dtype_bytes


def _cgroup_room() -> int | None:
    """Bytes the process's cgroup may still take (v2, then v1), None without a limit: a Slurm job's memory."""
    for limit, usage in (("memory.max", "memory.current"), ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            text = (Path("/sys/fs/cgroup") / limit).read_text().strip()
            if text != "max" and int(text) < 1 << 60:
                return int(text) - int((Path("/sys/fs/cgroup") / usage).read_text())
        except (OSError, ValueError):
            continue
    return None


def memory_limit(device: torch.device) -> tuple[int, str]:
    """Bytes the run may still take on ``device`` (beyond what it holds now) and where that limit comes from."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory - torch.cuda.memory_reserved(device), f"{device}'s memory"
    room, where = psutil.virtual_memory().total - psutil.Process().memory_info().rss, "this machine's RAM"
    cgroup = _cgroup_room()
    if cgroup is not None and cgroup < room:
        room, where = cgroup, "the memory limit of this process's cgroup"
    return room, where


def check_fits(config, budget: int, longest: int, dtype: torch.dtype, device: torch.device, model: str) -> None:
    """ValueError naming ``batching.max_batch_tokens`` when a pass of ``budget`` tokens cannot fit on ``device``."""
    size = torch.finfo(dtype).bits // 8
    need = forward_bytes(config, budget, longest, size)
    room, where = memory_limit(device)
    if need <= room:
        return
    per_token = forward_bytes(config, 1, longest, size)
    fits = room // per_token
    if fits < longest:
        raise ValueError(f"batching.max_batch_tokens: even one row of {longest} tokens of {model} needs about "
                         f"{per_token * longest / GB:.1f} GB and {where} leaves {max(room, 0) / GB:.1f} GB; "
                         "shorten the prompts (generator.few_shot, generator.items_per_prompt) or use a smaller model")
    raise ValueError(f"batching.max_batch_tokens: a forward pass of {budget} tokens in rows of up to {longest} tokens of "
                     f"{model} needs about {need / GB:,.1f} GB and {where} leaves {room / GB:.1f} GB; set "
                     f"batching.max_batch_tokens={fits // 1024 * 1024 or fits} or lower")
