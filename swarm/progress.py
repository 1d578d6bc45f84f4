"""One progress line per phase of a step (generate, answer, judge), with its rate.

A multi-minute GPU step should not be silent: each phase shows a tqdm line
(`generate: 100%|...| 640/640 [00:02, 305 item/s]`) that it updates as its
batches finish and leaves on screen when done. Off unless asked (the run's
`progress` setting, main process only), and then it costs nothing.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

__all__ = ["phase"]


@contextlib.contextmanager
def phase(name: str, total: int, unit: str, enabled: bool) -> Iterator[Callable[[int], None]]:
    """Yields ``tick(n)``: n more of the phase's ``total`` units are done."""
    if not enabled or total <= 0:
        yield lambda n: None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=name, unit=unit, leave=True, mininterval=1.0)
    try:
        yield bar.update
    finally:
        bar.close()
