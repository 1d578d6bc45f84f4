"""The run's own record of its settings, and the check that a resumed run computes what the first one did.

Hydra would write ``.hydra/`` (config.yaml, hydra.yaml, overrides.yaml) before
the app runs, so a second command in a live run's dir, or a resume with
another objective, would rewrite the record before anything could refuse it.
conf/config.yaml turns that off (``hydra.output_subdir: null``) and the run
writes ``.hydra/`` itself, atomically, only once it holds the run dir's lock
and `check_resume` has passed:

- a run dir with a checkpoint is a resume: its stored ``.hydra/config.yaml``
  is compared with the new config; a difference outside `RESUMABLE` (the
  method, objective, seed, task, models, PSO update, ...) is a ConfigError
  naming the settings that differ, and nothing in the dir has been touched;
- settings in `RESUMABLE` only say how long, how loud or how fast the run is
  (``pso.max_steps``, logging, threads, progress, ...): they may change, and
  the record then holds the new values.

Imports nothing heavy: the CLI uses it before torch loads.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

from swarm.runtime.checkpoint import FILENAME, LEGACY, PREVIOUS
from swarm.runtime.errors import ConfigError
from swarm.runtime.files import atomic_write_text
from swarm.runtime.rundir import absolute_paths

RECORD_DIR = ".hydra"
CHECKPOINTS = tuple(f"checkpoint/{name}" for name in (FILENAME, PREVIOUS, *LEGACY))  # a legacy one: checkpoint.load says so

# Settings a resume may change (a key or a whole group): when to stop, what is logged and shown, how fast and in
# how much memory it runs, where a sweep job goes, how an endpoint is reached. Everything else changes what is computed.
RESUMABLE = (
    "pso.max_steps",
    "logger",
    "progress",
    "threads",
    "data.save_steps",
    "sweep.metric",
    "slurm",
    "judge.max_missing_fraction",
    "batching.max_batch_tokens",
    "generator.max_batch_tokens", "taker.max_batch_tokens",  # the same budget, for the SmolLM2 experts' training
    # how an endpoint is reached, not what it computes: a restarted server on another port, a slower network
    *(f"{g}.{k}" for g in ("judge", "verifier")
      for k in ("base_url", "api_key_env", "concurrency", "timeout", "max_retries", "backoff", "backoff_max")),
    "taker.api_key_env", "taker.endpoint_concurrency", "taker.endpoint_timeout", "taker.endpoint_max_retries",
    "taker.endpoint_backoff", "taker.endpoint_backoff_max",
    "endpoints",
)


def flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"pso": {"inertia": 0.4}}`` -> ``{"pso.inertia": 0.4}``; lists stay values."""
    if not isinstance(tree, Mapping):
        return {prefix.rstrip("."): tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def resumable(key: str) -> bool:
    return any(key == r or key.startswith(r + ".") for r in RESUMABLE)


def differences(stored: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, stored value, new value) of every setting outside `RESUMABLE` that differs, sorted by key."""
    old, now = flat(stored), flat(new)
    missing = object()
    return [(k, old.get(k, missing), now.get(k, missing)) for k in sorted(old.keys() | now.keys())
            if not resumable(k) and old.get(k, missing) != now.get(k, missing)]


def has_checkpoint(run_dir: Path) -> bool:
    return any((Path(run_dir) / rel).is_file() for rel in CHECKPOINTS)


def _shown(value: Any) -> str:
    return "(absent)" if type(value) is object else repr(value)


def check_resume(run_dir: Path, cfg: DictConfig, cwd: Path) -> None:
    """Refuse to resume ``run_dir`` with settings that change what its checkpoint computed (one line, exit 2).

    Call with the run dir's lock held and before anything in it is written. A
    run dir without a checkpoint is a fresh start: nothing to compare.
    """
    if not has_checkpoint(run_dir):
        return
    path = Path(run_dir) / RECORD_DIR / "config.yaml"
    if not path.is_file():
        raise ConfigError(
            f"hydra.run.dir: {run_dir} holds a checkpoint but not its settings ({RECORD_DIR}/config.yaml), so a resume "
            "cannot be checked; restore that file, or move the checkpoint away to start fresh"
        )
    try:
        stored = OmegaConf.load(path)
        absolute_paths(stored, cwd)  # a record Hydra wrote before the run anchored its paths
        old = OmegaConf.to_container(stored, resolve=True)
    except Exception as err:  # noqa: BLE001 (any unreadable record: one line)
        raise ConfigError(f"hydra.run.dir: {path} is unreadable ({type(err).__name__}); cannot check the resume") from None
    diff = differences(old, OmegaConf.to_container(cfg, resolve=True))
    if diff:
        key, was, now = diff[0]
        also = f" (also differ: {', '.join(k for k, _, _ in diff[1:6])}{', ...' if len(diff) > 6 else ''})" if len(diff) > 1 else ""
        raise ConfigError(
            f"{key}: {run_dir} holds a run computed with {_shown(was)}, not {_shown(now)}{also}; a resume may change "
            f"only {', '.join(RESUMABLE)}: rerun with the run's own settings or give this run another hydra.run.dir"
        )


def write_record(run_dir: Path, cfg: DictConfig, hydra_node: DictConfig, overrides: list[str]) -> None:
    """``.hydra/config.yaml`` (resolved), ``hydra.yaml`` and ``overrides.yaml``, each written atomically."""
    folder = Path(run_dir) / RECORD_DIR
    atomic_write_text(folder / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))))
    atomic_write_text(folder / "hydra.yaml", OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra_node})))
    atomic_write_text(folder / "overrides.yaml", OmegaConf.to_yaml(OmegaConf.create(list(overrides))))
