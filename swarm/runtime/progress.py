"""One progress line per phase of a step (generate, answer, judge), with its rate.

A multi-minute GPU step should not be silent: each phase shows a tqdm line
(`generate: 100%|...| 640/640 [00:02, 305 item/s]`) that it updates as its
batches finish and leaves on screen when done. Off unless asked (the run's
`progress` setting, main process only), and then it costs nothing. Given a
``clock`` dict, a phase also adds its wall seconds there: the step's
`time/<phase>` metrics (metrics.jsonl, W&B) say where a step's time went.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

__all__ = ["phase"]


@contextlib.contextmanager
def phase(name: str, total: int, unit: str, enabled: bool, clock: dict[str, float] | None = None) -> Iterator[Callable[[int], None]]:
    """Yields ``tick(n)``: n more of the phase's ``total`` units are done; adds its seconds to ``clock[name]``."""
    start, bar = time.perf_counter(), None
    if enabled and total > 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=name, unit=unit, leave=True, mininterval=1.0)
    try:
        yield bar.update if bar is not None else (lambda n: None)
    finally:
        if bar is not None:
            bar.close()
        if clock is not None:
            clock[name] = clock.get(name, 0.0) + time.perf_counter() - start
