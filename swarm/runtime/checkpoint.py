"""Checkpoints: everything a run needs to resume, written atomically every step; the last two are kept.

``checkpoint/state.safetensors`` holds the optimizer's state (positions,
velocities, bests, RNG), the step, and the run's own bookkeeping;
``state.prev.safetensors`` is the one before it. A checkpoint is taken as its
step ends (`serialize`) and written (temp file, fsync, rename; the old file
renamed to the previous one first) on the run's background writer behind that
step's data file, so a kill at any moment leaves complete files. A newer
checkpoint that cannot be read (a disk that lost it, a copy cut short) falls
back to the previous one, with a warning; the run then recomputes one more
step, and its next write moves the unreadable file to ``state.unreadable.safetensors``.

The file is in the safetensors layout (the header's length, a JSON header, the
tensors' bytes) and is read by the safetensors library: no pickle, so a
checkpoint holds tensors and plain values, never code. The plain values
(numbers, strings, None, lists, tuples, dicts) are one JSON document in the
header's metadata, each container tagged, so a tuple comes back a tuple and a
dict keeps its int keys. The file is written here rather than by
``safetensors.torch.save`` (or ``torch.save``, as before) because both hold the
GIL while they copy the tensors: the step copies them once (the PSO updates its
buffers in place) and the writer thread streams the copies to the file, the GIL
released inside the write (docs/performance.md, the eighth session: 1.0 ms a
zoo step before, measured against the decode loop).
"""
from __future__ import annotations

import json
import logging
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swarm.runtime.errors import ConfigError
from swarm.runtime.files import atomic_write_bytes, remove_stale_temps

FILENAME = "state.safetensors"
PREVIOUS = "state.prev.safetensors"
UNREADABLE = "state.unreadable.safetensors"  # where the next write moves a newest checkpoint that could not be read
LEGACY = ("state.pt", "state.prev.pt")  # torch.save checkpoints of dswarm before the safetensors layout
_METADATA = "dswarm_state"  # the header metadata key of the plain values
_unreadable: set[Path] = set()  # such checkpoints found by `load` in this process
_DTYPES = {"torch.float64": "F64", "torch.float32": "F32", "torch.float16": "F16", "torch.bfloat16": "BF16", "torch.int64": "I64",
           "torch.int32": "I32", "torch.int16": "I16", "torch.int8": "I8", "torch.uint8": "U8", "torch.bool": "BOOL"}  # safetensors' names

log = logging.getLogger("dswarm")

if TYPE_CHECKING:
    import torch


def path_of(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoint" / FILENAME


@dataclass(frozen=True)
class Snapshot:
    """A checkpoint as it was when taken: its plain values as tagged JSON, and one copy of all its tensors'
    bytes, in order (``specs``: each tensor's dtype and shape)."""

    plain: str
    data: torch.Tensor  # uint8, on the CPU
    specs: list[tuple[torch.dtype, tuple[int, ...]]]

    def parts(self) -> list[bytes | memoryview]:
        """The file's bytes, in order: the header's length, the header, the tensors' bytes."""
        header: dict[str, Any] = {"__metadata__": {_METADATA: self.plain}}
        offset = 0
        for i, (dtype, shape) in enumerate(self.specs):
            size = math.prod(shape) * dtype.itemsize
            header[str(i)] = {"dtype": _DTYPES[str(dtype)], "shape": list(shape), "data_offsets": [offset, offset + size]}
            offset += size
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)  # the tensors' bytes start 8-aligned, as the format asks
        return [struct.pack("<Q", len(text)), text, *([memoryview(self.data.numpy())] if len(self.data) else [])]


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """`serialize`'s JSON back into values, with the file's tensors."""
    if not isinstance(value, dict):
        return value
    (tag, inner), = value.items()
    if tag == "tensor":
        return tensors[str(inner)]
    if tag == "dict":
        return {_decode(k, tensors): _decode(v, tensors) for k, v in inner}
    items = [_decode(v, tensors) for v in inner]
    return tuple(items) if tag == "tuple" else items


def serialize(state: dict[str, Any]) -> Snapshot:
    """The checkpoint as it is now: later in-place updates of the state's tensors do not reach it."""
    import torch

    tensors: list[torch.Tensor] = []

    def encode(value: Any) -> Any:
        """``value`` as JSON with tagged containers; each tensor numbered in ``tensors``."""
        if isinstance(value, torch.Tensor):
            if str(value.dtype) not in _DTYPES:
                raise TypeError(f"checkpoint: cannot hold a {value.dtype} tensor")
            tensors.append(value.detach())
            return {"tensor": len(tensors) - 1}
        if isinstance(value, dict):
            return {"dict": [[encode(k), encode(v)] for k, v in value.items()]}
        if isinstance(value, (list, tuple)):
            return {"tuple" if isinstance(value, tuple) else "list": [encode(v) for v in value]}
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"checkpoint: cannot hold a {type(value).__name__}")

    plain = json.dumps(encode(state))
    # every tensor's bytes copied at once, in order, into one buffer (one copy and one allocation, not one a tensor)
    data = torch.cat([t.reshape(-1).view(torch.uint8).cpu() for t in tensors]) if tensors else torch.zeros(0, dtype=torch.uint8)
    return Snapshot(plain, data, [(t.dtype, tuple(t.shape)) for t in tensors])


def write(run_dir: Path, snapshot: Snapshot) -> None:
    """Replace the run's checkpoint with ``snapshot`` atomically; the replaced one becomes the previous."""
    path = path_of(run_dir)
    if path in _unreadable:  # keep the readable previous one as the previous, the unreadable one for a look
        path.replace(path.with_name(UNREADABLE))
        _unreadable.discard(path)
    atomic_write_bytes(path, snapshot.parts(), backup=path.with_name(PREVIOUS))


def read(path: Path) -> dict[str, Any]:
    """One checkpoint file, or a ConfigError saying why it cannot be used."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as f:
            tensors = {key: f.get_tensor(key) for key in f.keys()}
            state = _decode(json.loads(f.metadata()[_METADATA]), tensors)
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
    legacy = [path.with_name(name) for name in LEGACY if path.with_name(name).exists()]
    if legacy and not (path.exists() or previous.exists()):
        raise ConfigError(f"checkpoint: {legacy[0]} was written by an older dswarm (torch.save); resume it with "
                          "that version, or move it away to start fresh")
    if not path.exists():
        if previous.exists():  # a kill between the two renames of `write`
            return read(previous)
        return None
    try:
        return read(path)
    except ConfigError as err:
        if not previous.exists():
            raise
        state = read(previous)
        _unreadable.add(path)
        log.warning("%s; resuming from the previous checkpoint (step %s) instead", str(err).split("; move")[0], state["step"])
        return state
