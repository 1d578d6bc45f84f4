"""What a run records about itself: the code that ran, the libraries, the device, the time it took.

summary.json's ``provenance`` block, so a result can be traced to the code and the
machine that made it months later: the source's git commit (and whether the
work tree had uncommitted changes) when the package runs from a git checkout, its
version always; the versions of the libraries that decide the numbers (torch,
transformers, peft, accelerate); the device and dtype; the world size; and the
wall time of this process's run and of the search steps (summed over
metrics.jsonl, so a resumed run counts the steps of the runs before it).
"""
from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).resolve().parents[2]  # the repository (or site-packages) the package runs from
LIBRARIES = ("torch", "transformers", "peft", "accelerate", "hydra-core")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    """``git -C SOURCE args`` output, or None when SOURCE is not a git checkout (an installed wheel) or git is absent."""
    if not (SOURCE / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(SOURCE), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code() -> dict[str, Any]:
    """The package version, and the git commit of its source when it runs from a checkout."""
    out: dict[str, Any] = {"package": "data-swarms", "version": _version("data-swarms")}
    commit = _git("rev-parse", "HEAD")
    if commit is not None:
        out["git_commit"] = commit
        out["git_dirty"] = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return out


def provenance(device: str, dtype: str, world_size: int, wall_seconds: float, step_seconds: float) -> dict[str, Any]:
    """summary.json's ``provenance`` block."""
    return {
        "code": code(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "python": platform.python_version(),
        "device": device,
        "dtype": dtype,
        "world_size": world_size,
        "host": platform.node(),
        "wall_seconds": round(wall_seconds, 1),
        "step_seconds": round(step_seconds, 1),
    }
