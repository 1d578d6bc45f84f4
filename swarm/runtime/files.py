"""Atomic file writes: a reader (or a resumed run) never sees a half-written file."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same directory, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temps(directory: Path, name: str) -> None:
    """Delete the temp files/dirs a killed writer of ``directory/name`` left behind."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    for stale in directory.glob(f".{name}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)


RUN_SUBDIRS = (".", "checkpoint", "data", "best", "plots")  # where the run's atomic writers put temps


def remove_all_stale_temps(run_dir: Path) -> None:
    """Delete the temp files/dirs the atomic writers left in a run dir (a run killed mid-write).

    Only the run's own directories, not recursively: a run dir may be anywhere (even ``.``).
    """
    for sub in RUN_SUBDIRS:
        directory = Path(run_dir) / sub
        if directory.is_dir():
            for stale in directory.glob(".*.tmp"):
                shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Fill a temp dir next to ``path``; on success it replaces ``path`` whole.

    A reader never sees a half-written ``path``: it sees the old one, the new
    one, or (for the instant between two renames) none.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent, path.name)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old.", suffix=".tmp"))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def jsonl(rows: Iterable[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def atomic_write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    atomic_write_text(path, jsonl(rows))


class OrderedWriter:
    """Runs a run's per-step writes on one background thread, in the order they were submitted.

    A step's disk time (write, fsync, rename: the GIL is released) then
    overlaps the next step's generation. One thread, first in first out: a
    step's checkpoint never lands before that step's data file, so a kill at
    any moment leaves the last complete checkpoint and what it needs.
    Callers hand over finished bytes, never live tensors. A failed write is
    raised by the next ``submit`` or by ``flush``.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dswarm-writer")
        self._pending: list[Future] = []

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        self._raise_failures(wait=False)
        self._pending.append(self._pool.submit(fn, *args))

    def flush(self) -> None:
        """Wait until everything submitted is on disk; raise the first failed write."""
        self._raise_failures(wait=True)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._pool.shutdown(wait=True)

    def _raise_failures(self, wait: bool) -> None:
        done = self._pending if wait else [f for f in self._pending if f.done()]
        self._pending = [f for f in self._pending if f not in done]
        for future in done:
            future.result()
