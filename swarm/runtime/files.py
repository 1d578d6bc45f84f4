"""Atomic file writes: a reader (or a resumed run) never sees a half-written file.

Temp files and dirs (``tempfile.mkstemp``/``mkdtemp``: mode 0600/0700) get the
mode a plain ``open``/``mkdir`` would have had under the process's umask before
they are renamed into place, so a colleague on a shared cluster can read a run's
results whenever the umask lets them (022: 0644 files, 0755 dirs).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import orjson

_PLAIN = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
_PRETTY = _PLAIN | orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


def umask() -> int:
    """The process's umask, read without changing it (Linux: /proc; elsewhere set and restored at once)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mkstemp(directory: Path, name: str) -> tuple[int, str]:
    """A temp file for ``directory/name`` with the mode ``open`` would give it."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    os.fchmod(fd, 0o666 & ~umask())
    return fd, tmp


def _mkdtemp(directory: Path, prefix: str) -> Path:
    """A temp dir in ``directory`` with the mode ``mkdir`` would give it."""
    tmp = Path(tempfile.mkdtemp(dir=directory, prefix=prefix, suffix=".tmp"))
    tmp.chmod(0o777 & ~umask())
    return tmp


def atomic_write_bytes(path: Path, data: bytes | Iterable[bytes | memoryview], backup: Path | None = None) -> None:
    """Write ``data`` (or its parts, in order) to a temp file in the same directory, fsync, then rename over ``path``.

    With ``backup``, the file ``path`` held is first renamed to ``backup`` (the previous version is kept).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _mkstemp(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.writelines([data] if isinstance(data, bytes) else data)
            f.flush()
            os.fsync(f.fileno())
        if backup is not None and path.exists():
            os.replace(path, backup)
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
    """Fill a temp dir next to ``path``; on success it replaces ``path`` whole, its files with the umask's modes.

    A reader never sees a half-written ``path``: it sees the old one, the new
    one, or (for the instant between two renames) none.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent, path.name)
    tmp = _mkdtemp(path.parent, f".{path.name}.")
    try:
        yield tmp
        mask = umask()
        for f in tmp.rglob("*"):  # the umask's modes: a library may write 0600 files (safetensors does)
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fchmod(fh.fileno(), 0o666 & ~mask)
                    os.fsync(fh.fileno())
            elif f.is_dir():
                f.chmod(0o777 & ~mask)
        old = None
        if path.exists():
            old = _mkdtemp(path.parent, f".{path.name}.old.")
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


def finite(obj: Any) -> Any:
    """``obj`` with every NaN and ±inf float replaced by None (JSON's null)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def dumps(obj: Any, pretty: bool = False) -> str:
    """Strict JSON, the only kind the run writes: NaN/±inf (which strict parsers refuse) become null.

    orjson writes them so, 4x faster than ``json`` (a step's data file was 0.4 % of a zoo step);
    what it refuses (an int over 64 bits, say) goes through ``json`` and ``finite``. ``pretty``:
    indented by 2, keys sorted (summary.json and the like)."""
    try:
        return orjson.dumps(obj, option=_PRETTY if pretty else _PLAIN).decode()
    except orjson.JSONEncodeError:
        return json.dumps(finite(obj), allow_nan=False, **({"indent": 2, "sort_keys": True} if pretty else {}))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, dumps(obj, pretty=True) + "\n")


def append_synced(path: Path, text: str) -> None:
    """Append ``text`` and fsync: not atomic, so readers of such a log skip a torn last line."""
    with open(path, "a") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def jsonl(rows: Iterable[dict]) -> str:
    return "".join(dumps(r) + "\n" for r in rows)


def atomic_write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    atomic_write_text(path, jsonl(rows))


class OrderedWriter:
    """Runs a run's per-step writes on one background thread, in the order they were submitted.

    A step's disk time (write, fsync, rename: the GIL is released) then
    overlaps the next step's generation. One thread, first in first out: a
    step's checkpoint never lands before that step's data file, so a kill at
    any moment leaves the last complete checkpoint and what it needs.
    Callers hand over finished data (bytes, checkpoint snapshots, plain values),
    never live tensors. A failed write is
    raised by the next ``submit`` or by ``flush``.

    A step's earlier writes are ``defer``-ed: they start with its last one
    (the checkpoint's ``submit``), so the thread's own Python (opening files,
    encoding) does not take the GIL from the step's bookkeeping in between;
    it runs while the next step's forward passes have released the GIL.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dswarm-writer")
        self._pool.submit(int)  # the pool starts its thread at the first job: now, with the run, not inside its first step
        self._pending: list[Future] = []
        self._deferred: list[tuple[Callable[..., None], tuple]] = []

    def defer(self, fn: Callable[..., None], *args: Any) -> None:
        """Queue ``fn(*args)``; it starts, in order, with the next ``submit`` (or ``flush``)."""
        self._deferred.append((fn, args))

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        self._raise_failures(wait=False)
        self._start_deferred()
        self._pending.append(self._pool.submit(fn, *args))

    def flush(self) -> None:
        """Wait until everything submitted or deferred is on disk; raise the first failed write."""
        self._start_deferred()
        self._raise_failures(wait=True)

    def _start_deferred(self) -> None:
        jobs, self._deferred = self._deferred, []
        self._pending += [self._pool.submit(fn, *args) for fn, args in jobs]

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
