"""W&B's run in a process of its own: the run hands each step's metrics over a pipe and goes on.

Why a process: `wandb.log` encodes every key of a step (~70 on the zoo), makes
the items table and hooks the console, all Python that held the run's GIL:
~0.9 % of a zoo step (docs/performance.md). A thread would not help (the GIL:
a step got slower when W&B logged from the writer thread); another process
runs it on another core while the next step generates, and keeps wandb's
import (seconds, and its console hook) out of the run's process.

The run's side (`WandbProcess`) queues plain data: numbers, `Table` and
`Image` (made into wandb's objects over there), summaries and artifacts by
path; a feeder thread writes them to the child's stdin, one JSON line each
(strict JSON: a NaN arrives as null). The child
(`main`, in a Python of its own) answers one line when its run has
started, ``ready`` or ``error: ...``, and later only ``error: ...`` lines,
which `finish` logs as warnings. It ignores SIGINT and SIGTERM (the run stops
it in order) and ends its W&B run as failed when the run's process vanishes
(its stdin closes without a ``finish``). Imports nothing heavy here: wandb only
in the child.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import queue
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from swarm.runtime.errors import ConfigError

log = logging.getLogger("dswarm")

START_TIMEOUT_S = 300  # wandb.init online may wait on the network; offline it takes seconds
_WIRE = orjson.OPT_APPEND_NEWLINE | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS  # Table, Image: `_marked`
MAX_ERRORS = 20  # error lines the child reports (a pipe holds them all until `finish` reads them)


@dataclass(frozen=True)
class Table:
    """A `wandb.Table`, as plain data."""

    columns: list[str]
    data: list[list[Any]]


@dataclass(frozen=True)
class Image:
    """A `wandb.Image` of a file."""

    path: str


class WandbProcess:
    """The run's handle on the W&B child: `log`, `update_summary` and `log_artifact` return at once."""

    def __init__(self, init: Mapping[str, Any]) -> None:
        """Start the child with ``wandb.init(**init)`` and wait for its run to start; a run W&B refuses
        to start is a ConfigError (one line), as it was when W&B ran in this process."""
        root = str(Path(__file__).resolve().parents[2])  # this checkout's packages, whatever the cwd
        env = {**os.environ, "WANDB_SILENT": os.environ.get("WANDB_SILENT", "true"),
               "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        self.proc = subprocess.Popen([sys.executable, "-c", f"import sys; from {__name__} import main; sys.exit(main())"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self._send(dict(init))
        answer = self._read_line(START_TIMEOUT_S)
        if answer != "ready":
            self.proc.kill()
            code = self.proc.wait()
            raise ConfigError(f"W&B: the run did not start ({answer or f'its process gave no answer, exit code {code}'}); "
                              "logger=none runs without W&B")
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._feeder = threading.Thread(target=self._feed, name="dswarm-wandb", daemon=True)
        self._feeder.start()
        self._gone = False

    def log(self, data: Mapping[str, Any], step: int) -> None:
        self._put(("log", dict(data), step))

    def update_summary(self, summary: Mapping[str, Any]) -> None:
        self._put(("summary", dict(summary)))

    def log_artifact(self, name: str, kind: str, metadata: Mapping[str, Any],
                     dirs: Mapping[str, str | None] | None = None, files: Mapping[str, str | None] | None = None) -> None:
        """An artifact of ``dirs`` and ``files`` (path -> name inside it, None: at its root / its own name)."""
        self._put(("artifact", name, kind, dict(metadata), dict(dirs or {}), dict(files or {})))

    def finish(self, exit_code: int) -> None:
        """End the W&B run (wait for the child: an online run uploads now); log what went wrong over there."""
        self._queue.put(("finish", exit_code))
        self._queue.put(None)
        self._feeder.join()
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        code = self.proc.wait()
        errors = self.proc.stdout.read().decode(errors="replace").splitlines()
        self.proc.stdout.close()
        for line in errors:
            log.warning("W&B: %s", line.removeprefix("error: "))
        if code != 0:
            log.warning("W&B: its process exited with %d; metrics.jsonl holds every step", code)

    def _put(self, message: tuple) -> None:
        if self.proc.poll() is not None:  # the child died: say so once; metrics.jsonl still holds everything
            if not self._gone:
                self._gone = True
                log.warning("W&B: its process ended (exit code %s); the run goes on without it", self.proc.returncode)
            return
        self._queue.put(message)

    def _feed(self) -> None:
        while (message := self._queue.get()) is not None:
            try:
                self._send(message)
            except (BrokenPipeError, OSError):  # the child is gone; `_put` and `finish` say so
                return

    def _send(self, message: Any) -> None:
        line = orjson.dumps(message, default=_marked, option=_WIRE)
        self.proc.stdin.write(line)
        self.proc.stdin.flush()

    def _read_line(self, timeout: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline().decode(errors="replace").strip() if ready else ""


def _marked(value: Any) -> dict[str, Any]:
    """A `Table` or `Image` on the wire: its fields under a key that names its kind."""
    if isinstance(value, (Table, Image)):
        return {f"dswarm/{type(value).__name__}": asdict(value)}
    raise TypeError(f"W&B's process takes numbers, strings, lists, dicts, Table and Image, not {type(value).__name__}")


# ----------------------------------------------------------------------------- the child


def _materialize(data: Mapping[str, Any]) -> dict[str, Any]:
    import wandb

    def one(value: Any) -> Any:
        if isinstance(value, dict) and (table := value.get("dswarm/Table")) is not None:
            return wandb.Table(columns=table["columns"], data=table["data"])
        if isinstance(value, dict) and (image := value.get("dswarm/Image")) is not None:
            return wandb.Image(image["path"])
        return value

    return {key: one(value) for key, value in data.items()}


def _artifact(name: str, kind: str, metadata: dict, dirs: dict, files: dict):
    import wandb

    artifact = wandb.Artifact(name, type=kind, metadata=metadata)
    for path, inside in dirs.items():
        artifact.add_dir(path, name=inside)
    for path, inside in files.items():
        artifact.add_file(path, name=inside)
    return artifact


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the whole process group: the run stops us in order
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    answers = os.fdopen(os.dup(1), "w", buffering=1)  # our lines; whatever wandb prints goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    stream = sys.stdin.buffer
    init = orjson.loads(stream.readline())
    try:
        import wandb

        settings = init.pop("settings", {})
        run = wandb.init(**init, settings=wandb.Settings(**settings))
        if importlib.util.find_spec("pandas") is not None:
            import pandas  # noqa: F401  (wandb imports it on the first table, to ask whether it is a DataFrame: ~1 s)
    except Exception as err:  # noqa: BLE001 - any failure to start is the run's one line
        answers.write(f"error: {type(err).__name__}: {err}".replace("\n", " ") + "\n")
        return 1
    answers.write("ready\n")
    exit_code, errors = 1, 0  # a stdin closed without "finish": the run's process vanished
    for line in stream:
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:  # a line torn by the run's process dying mid-write
            break
        kind = message[0]
        try:
            if kind == "log":
                run.log(_materialize(message[1]), step=message[2])
            elif kind == "summary":
                run.summary.update(message[1])
            elif kind == "artifact":
                run.log_artifact(_artifact(*message[1:]))
            elif kind == "finish":
                exit_code = message[1]
                break
        except Exception as err:  # noqa: BLE001 - one bad record must not end the dashboard
            errors += 1
            if errors <= MAX_ERRORS:
                answers.write(f"error: {kind}: {type(err).__name__}: {err}".replace("\n", " ") + "\n")
    run.finish(exit_code=exit_code)
    return 0
