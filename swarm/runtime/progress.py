"""One progress line per phase of a step (generate, answer, judge) that takes a while, with its rate.

A multi-minute GPU step should not be silent: on a terminal each phase shows a
tqdm line (`generate: 100%|...| 640/640 [00:02, 305 item/s]`) that it updates as
its batches finish and leaves on screen when done; in a log that is no terminal
(Slurm, submitit, a pipe) it is one line when a phase of at least
`LINE_AFTER_S` ends (`generate: 640/640 item in 2.1 s (305.0 item/s)`): a
shorter phase is no wait worth a line (a zoo step's three phases take 0.25 s,
and their lines were 0.2 % of it), and its seconds are in the step's
`time/<phase>` metrics all the same. Off unless asked (the run's
`progress` setting, main process only), and then it costs nothing. Given a
``clock`` dict, a phase also adds its wall seconds there: the step's
`time/<phase>` metrics (metrics.jsonl, W&B) say where a step's time went.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator

__all__ = ["phase"]

log = logging.getLogger("dswarm")
LINE_AFTER_S = 1.0  # off a terminal, phases shorter than this get no line


@contextlib.contextmanager
def phase(name: str, total: int, unit: str, enabled: bool, clock: dict[str, float] | None = None) -> Iterator[Callable[[int], None]]:
    """Yields ``tick(n)``: n more of the phase's ``total`` units are done; adds its seconds to ``clock[name]``.

    On a terminal a tqdm bar; anywhere else (a Slurm or submitit log, a pipe) one log line when a
    phase of at least `LINE_AFTER_S` ends, so a log holds one line per long phase instead of a bar's redraws."""
    start, bar, done = time.perf_counter(), None, [0]
    live = enabled and total > 0 and sys.stderr.isatty()
    if live:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=name, unit=unit, leave=True, mininterval=1.0)

    def tick(n: int) -> None:
        done[0] += n
        if bar is not None:
            bar.update(n)

    try:
        yield tick
    finally:
        seconds = time.perf_counter() - start
        if bar is not None:
            bar.close()
        elif enabled and total > 0 and seconds >= LINE_AFTER_S:
            log.info("%s: %d/%d %s in %.1f s (%.1f %s/s)", name, done[0], total, unit, seconds, done[0] / max(seconds, 1e-9), unit)
        if clock is not None:
            clock[name] = clock.get(name, 0.0) + seconds
