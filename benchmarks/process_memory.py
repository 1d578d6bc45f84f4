"""The summed RSS of a process and all its children: what a benchmark's run holds, W&B's service and workers included.

Shared by benchmarks/step_profile.py and benchmarks/long_inputs.py, which sample it every 0.1 s while a run goes.
"""
from __future__ import annotations

import psutil

__all__ = ["tree_rss"]


def tree_rss(pid: int) -> int:
    """Bytes resident in ``pid`` and its descendants now; 0 once it has exited (a child may exit mid-count)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total
