"""Checkpoints: everything a run needs to resume, written atomically every step; the last two are kept.

``checkpoint/state.pt`` holds the optimizer's state (positions, velocities,
bests, RNG), the step, and the run's own bookkeeping; ``state.prev.pt`` is the
one before it. A checkpoint is serialized as its step ends and written (temp
file, fsync, rename; the old file renamed to ``state.prev.pt`` first) on the
run's background writer behind that step's data file, so a kill at any moment
leaves complete files. A newer checkpoint that cannot be read (a disk that lost
it, a copy cut short) falls back to the previous one, with a warning; the run
then recomputes one more step, and its next write moves the unreadable file to
``state.unreadable.pt``. Both are read with ``weights_only=True``: a
checkpoint holds tensors and plain values, never code.
"""
from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

from swarm.runtime.errors import ConfigError
from swarm.runtime.files import atomic_write_bytes, remove_stale_temps

FILENAME = "state.pt"
PREVIOUS = "state.prev.pt"
UNREADABLE = "state.unreadable.pt"  # where the next write moves a newest checkpoint that could not be read
_unreadable: set[Path] = set()  # such checkpoints found by `load` in this process

log = logging.getLogger("dswarm")


def path_of(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoint" / FILENAME


def serialize(state: dict[str, Any]) -> bytes:
    """The checkpoint's bytes, taken now: later in-place updates of the state's tensors do not reach them.

    Without the zip records' CRC-32s: torch.load never checks them (a flipped byte loads all the same),
    and computing them was a third of the time a zoo step spends here."""
    import torch
    from torch.utils.serialization import config

    buffer = io.BytesIO()
    with config.patch({"save.compute_crc32": False}):
        torch.save(state, buffer)
    return buffer.getvalue()


def write(run_dir: Path, data: bytes) -> None:
    """Replace the run's checkpoint with ``data`` (from `serialize`) atomically; the replaced one becomes the previous."""
    path = path_of(run_dir)
    if path in _unreadable:  # keep the readable previous one as the previous, the unreadable one for a look
        path.replace(path.with_name(UNREADABLE))
        _unreadable.discard(path)
    atomic_write_bytes(path, data, backup=path.with_name(PREVIOUS))


def _read(path: Path) -> dict[str, Any]:
    """One checkpoint file, or a ConfigError saying why it cannot be used."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a checkpoint we cannot read must not be silently ignored
        raise ConfigError(f"checkpoint: {path} is unreadable ({type(err).__name__}); move it away to start fresh") from err
    if not isinstance(state, dict) or "step" not in state:
        raise ConfigError(f"checkpoint: {path} is not a dswarm checkpoint; move it away to start fresh")
    return state


def load(run_dir: Path) -> dict[str, Any] | None:
    """The last complete checkpoint (the previous one when the last cannot be read), or None when there is none."""
    path = path_of(run_dir)
    previous = path.with_name(PREVIOUS)
    remove_stale_temps(path.parent, path.name)  # a save killed before its rename
    if not path.exists():
        if previous.exists():  # a kill between the two renames of `write`
            return _read(previous)
        return None
    try:
        return _read(path)
    except ConfigError as err:
        if not previous.exists():
            raise
        state = _read(previous)
        _unreadable.add(path)
        log.warning("%s; resuming from the previous checkpoint (step %s) instead", str(err).split("; move")[0], state["step"])
        return state
