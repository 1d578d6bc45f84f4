"""Sweeps (`dswarm -m`) that survive their failed jobs and give sweepers a number.

A job that fails writes its one-line error to ``<run dir>/error.txt`` and to
its log, and returns nothing; the launcher goes on with the other jobs (in
this process, under submitit, or as Optuna trials, which a job without a
number marks FAIL). When the sweep ends, `SweepReport` (a Hydra callback in
the main process) counts the ``error.txt`` files under the sweep dir and the
sweep exits 1 with one line. A job that succeeds returns ``sweep.metric``
from its summary (default ``search_takers.utility``, a validation score on the
search takers), which Optuna maximizes.

Imports nothing heavy: the CLI uses it before torch loads.
"""
from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Iterator, Mapping

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from swarm.runtime.errors import ConfigError, exit_on_error, first_line, full_error
from swarm.runtime.files import atomic_write_text

log = logging.getLogger("dswarm")

ERROR_FILE = "error.txt"
FAILED_SWEEP = 1
failed_jobs = 0  # set by SweepReport at the end of a sweep; the CLI exits FAILED_SWEEP when > 0


def metric_value(summary: Mapping[str, Any], metric: str) -> float:
    """``summary[a][b]`` for ``metric = "a.b"``: the number a sweeper optimizes."""
    node: Any = summary
    for part in metric.split("."):
        if not isinstance(node, Mapping) or part not in node:
            top = ", ".join(sorted(summary))
            raise ConfigError(f"sweep.metric: {metric!r} is not in the run's summary (top-level keys: {top})")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        raise ConfigError(f"sweep.metric: {metric!r} is {node!r} in the summary, not a number")
    return float(node)


def _record_failure(run_dir: Path, code: int, message: str) -> None:
    atomic_write_text(run_dir / ERROR_FILE, f"exit {code}: {message}\n")
    log.error("job failed (exit %d): %s", code, message)


@contextmanager
def job_failures(run_dir: Path) -> Iterator[None]:
    """Inside a sweep job: any failure is recorded in the job's run dir and log, never raised.

    A bad setting gets its one line; anything unexpected gets its traceback in
    the log too. A job that succeeds (e.g. a rerun) removes an old error.txt.
    """
    (run_dir / ERROR_FILE).unlink(missing_ok=True)
    try:
        with exit_on_error(partial(_record_failure, run_dir)):
            yield
    except Exception as err:  # noqa: BLE001 (a bug in one job must not stop the sweep)
        if full_error():
            raise
        log.exception("job failed with an unexpected error")
        _record_failure(run_dir, 1, f"{type(err).__name__}: {first_line(err)}")


class SweepReport(Callback):
    """At the end of a sweep: one line counting the failed jobs (their run dirs hold error.txt)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global failed_jobs
        sweep_dir = Path(str(config.hydra.sweep.dir))
        failed = sorted(sweep_dir.glob(f"**/{ERROR_FILE}"))
        failed_jobs = len(failed)
        if failed:
            jobs = len({p.parent.parent for p in sweep_dir.glob("**/.hydra/config.yaml")} | {p.parent for p in failed}) or "?"
            first = failed[0].read_text().strip()
            sys.stderr.write(
                f"dswarm: error: {failed_jobs} of {jobs} sweep jobs failed (each failed run dir holds "
                f"{ERROR_FILE}); first: {failed[0].parent.name}: {first}\n"
            )
