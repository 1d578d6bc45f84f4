"""Run dirs that cannot collide: unique names, one live run per dir, paths that survive a chdir.

- ``${dswarm_uid:}`` in ``hydra.run.dir`` / ``hydra.sweep.dir`` is a short
  random suffix drawn once per process, so two identical commands started in
  the same second get two run dirs. Hydra caches the resolved value in the
  config it pickles for submitit jobs, so a requeued job finds its own dir.
  ``${dswarm_short:...}`` keeps a dir name under the file-name limit.
- `run_dir_lock` holds an OS file lock on ``<run dir>/.lock`` for the whole
  run: a second live run in the same dir is refused with one line; a killed
  run's lock goes with its process, so the same command resumes.
- `absolute_paths` anchors the relative path settings at the directory the
  command was started in, so ``hydra.job.chdir=true`` changes nothing.

Imports nothing heavy: the CLI uses it before torch loads.
"""
from __future__ import annotations

import hashlib
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from swarm.runtime.errors import ConfigError

LOCK_FILE = ".lock"
_UID = secrets.token_hex(3)

# Settings that name files or dirs; a group's keys count only for the `_target_`s listed.
PATH_SETTINGS = {
    "task": ({"objectives.tasks.json_task.JsonTask", "objectives.tasks.hf.HfTask", "objectives.tasks.arith.ArithTask"},
             ("path", "realism_corpus", "source", "contamination_refs")),
    "generator": ({"generators.sources.hf.hf_generators"}, ("base", "adapters")),
    "taker": ({"generators.sources.hf.hf_takers"}, ("base", "adapters", "heldout")),
    "judge": ({"objectives.judging.llm_judges.HFLLMJudge"}, ("model",)),
}


def short_name(name: str, limit: int = 120) -> str:
    """``name`` cut to ``limit`` characters, with a hash of the whole so cut names stay distinct.

    Optuna's float overrides make ``override_dirname`` longer than a file name may be.
    """
    if len(name) <= limit:
        return name
    return f"{name[: limit - 9]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def register_resolvers() -> None:
    """``${dswarm_uid:}`` (six hex digits, the same for every use in this process) and ``${dswarm_short:...}``."""
    if not OmegaConf.has_resolver("dswarm_uid"):
        OmegaConf.register_new_resolver("dswarm_uid", lambda: _UID, use_cache=True)
    if not OmegaConf.has_resolver("dswarm_short"):
        OmegaConf.register_new_resolver("dswarm_short", lambda name: short_name(str(name)))


@contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the run; another live run there gets a one-line error."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(run_dir / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise ConfigError(
            f"hydra.run.dir: {run_dir} is in use by another live run (its {LOCK_FILE} is held); "
            "wait for it to end or give this run another hydra.run.dir"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _anchored(value: str, cwd: Path) -> str:
    """``value`` made absolute when it is a relative path that exists under ``cwd`` or starts with . or ~.

    Anything else (a hub id such as ``org/model``, a zoo name, ``smollm2``) is left alone.
    """
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    if value.startswith((".", "~")) or (cwd / path).exists():
        return str((cwd / path).resolve())
    return value


def absolute_paths(cfg: DictConfig, cwd: Path) -> None:
    """Rewrite the relative path settings of ``cfg`` in place, anchored at ``cwd``."""
    for group, (targets, keys) in PATH_SETTINGS.items():
        node = cfg.get(group)
        if node is None or node.get("_target_") not in targets:
            continue
        with open_dict(node):
            for key in keys:
                if key not in node or OmegaConf.is_missing(node, key):
                    continue  # validate names the missing setting
                value = node[key]
                if isinstance(value, str):
                    node[key] = _anchored(value, cwd)
                elif isinstance(value, ListConfig):
                    node[key] = [_anchored(v, cwd) if isinstance(v, str) else v for v in value]
