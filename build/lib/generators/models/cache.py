"""The models' cache: where built models live, and the one way to build a directory there.

A built directory (the zoo, the converted SmolLM2, trained experts) appears
atomically: it is written to a temp dir next to its final place and renamed
into place, under an inter-process ``filelock`` so that concurrent processes
(two ranks of ``accelerate launch``, two test sessions) build it once and
then share it. A marker file written last tells a complete directory.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from filelock import FileLock

__all__ = ["default_cache_dir", "build_once", "publish"]


def default_cache_dir() -> Path:
    """``$DSWARM_CACHE``, else ``<repo root>/.cache`` (git-ignored)."""
    env = os.environ.get("DSWARM_CACHE")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".cache"


def publish(tmp: Path, final: Path) -> None:
    """Move a finished temp dir into place: a reader sees the old directory or the new one, never half of one."""
    if final.exists():
        old = final.parent / f".old-{final.name}-{os.getpid()}"
        final.rename(old)
        shutil.rmtree(old)
    os.replace(tmp, final)


def build_once(final: Path, marker: str, build: Callable[[Path], None], force: bool = False) -> Path:
    """``final``, built by ``build(tmp_dir)`` unless ``final/marker`` already exists.

    ``build`` must write ``marker`` last. A second process waits on the lock
    and then reuses the first one's directory; ``force`` rebuilds."""
    final = Path(final)
    if not force and (final / marker).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final.parent / f"{final.name}.lock")):
        if not force and (final / marker).is_file():
            return final
        tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            build(tmp)
            if not (tmp / marker).is_file():
                raise RuntimeError(f"building {final} wrote no {marker}")
            publish(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final
