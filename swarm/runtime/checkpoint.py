"""Checkpoints: everything a run needs to resume, written atomically every step.

One file, ``checkpoint/state.pt``: the optimizer's state (positions, velocities,
bests, RNG), the step, and the run's own bookkeeping. It is serialized as the
step ends and written (temp file, fsync, rename) on the run's background
writer behind that step's data file, so a kill at any moment leaves either the
previous complete checkpoint or the new one. It is read with
``weights_only=True``: a checkpoint can hold tensors and plain values, never code.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from swarm.runtime.errors import ConfigError
from swarm.runtime.files import atomic_write_bytes, remove_stale_temps

FILENAME = "state.pt"


def path_of(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoint" / FILENAME


def serialize(state: dict[str, Any]) -> bytes:
    """The checkpoint's bytes, taken now: later in-place updates of the state's tensors do not reach them."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def write(run_dir: Path, data: bytes) -> None:
    """Replace the run's checkpoint with ``data`` (from `serialize`) atomically."""
    atomic_write_bytes(path_of(run_dir), data)


def load(run_dir: Path) -> dict[str, Any] | None:
    """The last complete checkpoint, or None when the run dir has none."""
    path = path_of(run_dir)
    remove_stale_temps(path.parent, path.name)  # a save killed before its rename
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a checkpoint we cannot read must not be silently ignored
        raise ConfigError(f"checkpoint: {path} is unreadable ({type(err).__name__}); move it away to start fresh") from err
    if not isinstance(state, dict) or "step" not in state:
        raise ConfigError(f"checkpoint: {path} is not a dswarm checkpoint; move it away to start fresh")
    return state
