"""Read an offline W&B run back from its ``run-<id>.wandb`` file (tests only).

``wandb.Api`` needs a server, so this reads the file itself: W&B writes it as
a LevelDB-style log (a 7-byte ``:W&B`` header, then 32 KiB blocks of
length-prefixed chunks) of ``wandb_internal_pb2.Record`` protobufs.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

BLOCK = 32768
HEADER = 7  # crc32 (4), length (2), chunk type (1): FULL=1, FIRST=2, MIDDLE=3, LAST=4


def records(path: Path) -> Iterator[Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, parts = HEADER, b""
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk, pos = data[pos + HEADER : pos + HEADER + length], pos + HEADER + length
        parts = chunk if kind in (1, 2) else parts + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(parts)
            yield record


def _items(items) -> dict[str, Any]:
    """W&B's key/value items; nested keys (a table's or image's fields) join with '.'."""
    out = {}
    for item in items:
        key = item.key or ".".join(item.nested_key)
        out[key] = json.loads(item.value_json)
    return out


@dataclass
class OfflineRun:
    name: str = ""
    job_type: str = ""
    group: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    artifacts: list[Any] = field(default_factory=list)  # wandb_internal_pb2.ArtifactRecord
    exit_code: int | None = None  # None: the run file holds no exit record


def read_run(run_dir: Path) -> OfflineRun:
    """The offline W&B run under ``run_dir/wandb/``: run fields, history rows, summary, artifacts."""
    (path,) = Path(run_dir).glob("wandb/offline-run-*/run-*.wandb")
    run = OfflineRun()
    for r in records(path):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            run.name, run.job_type, run.group, run.tags = r.run.display_name, r.run.job_type, r.run.run_group, list(r.run.tags)
            run.config.update({i.key: json.loads(i.value_json) for i in r.run.config.update})
        elif kind == "history":
            run.history.append(_items(r.history.item))
        elif kind == "summary":
            run.summary.update(_items(r.summary.update))
        elif kind == "exit":
            run.exit_code = r.exit.exit_code
        elif kind == "artifact" and r.artifact.type != "run_table":  # run_table: the media of logged tables
            run.artifacts.append(r.artifact)
    return run


def table(run_dir: Path, value: dict[str, Any]) -> dict[str, Any]:
    """A logged wandb.Table's JSON (``columns``, ``data``) from a history/summary value."""
    assert value["_type"] == "table-file", value
    (files,) = Path(run_dir).glob("wandb/offline-run-*/files")
    return json.loads((files / value["path"]).read_text())
