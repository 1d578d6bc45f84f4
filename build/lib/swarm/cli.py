"""`dswarm`: the Hydra command line of data-swarms.

    dswarm                                   # the embedded default (zoo, arith, difficulty)
    dswarm objective=mixed pso.max_steps=20  # compose config groups, override any key
    dswarm -m objective=difficulty,novelty   # a sweep: one run dir and W&B run per job
    dswarm -m hydra/sweeper=pso_search       # an Optuna study (extra [optuna]) of sweep.metric
    dswarm --help                            # the config groups and their options

Errors in the settings print one line and exit 2 (HYDRA_FULL_ERROR=1 shows the traceback).
In a sweep a failed job records its line in its run dir and the sweep goes on
(swarm/runtime/sweep.py); the app returns ``sweep.metric`` for sweepers.
"""
from __future__ import annotations

import copy
import logging
import os
import shlex
import signal
import sys
import warnings
from contextlib import nullcontext
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from swarm.config import check, check_components  # also registers the schema that conf/*.yaml start from
from swarm.runtime import sweep
from swarm.runtime.errors import Interrupted, exit_on_error, on_signals, one_line_hydra_errors
from swarm.runtime.record import check_resume, write_record
from swarm.runtime.rundir import absolute_paths, register_resolvers, run_dir_lock
from swarm.runtime.sweep import job_failures, metric_value

log = logging.getLogger("dswarm")
register_resolvers()  # at import: a submitit job unpickles _app, and so this module, before its config resolves


@hydra.main(config_path="pkg://data_swarms_conf", config_name="config", version_base="1.3")  # conf/, installed
def _app(cfg: DictConfig) -> float | None:
    hc = HydraConfig.get()
    one_line_hydra_errors.job_started()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    value = None
    try:
        with job_failures(run_dir) if multirun else exit_on_error():
            given = copy.deepcopy(cfg)  # the record keeps the paths as the user gave them
            absolute_paths(cfg, Path(hc.runtime.cwd))  # hydra.job.chdir=true leaves the settings' meaning alone
            if cfg.logger.kind == "wandb":
                with open_dict(cfg):
                    cfg.logger.name = cfg.logger.get("name") or hc.job.override_dirname or "defaults"
                    if cfg.logger.group is None and multirun:
                        cfg.logger.group = Path(hc.sweep.dir).name
            value = _run(cfg, given, run_dir, hc)
    except Interrupted as err:
        err.where = ("hydra.sweep.dir", str(Path(hc.sweep.dir).absolute())) if multirun else ("hydra.run.dir", str(run_dir))
        raise
    return value


def _run(cfg: DictConfig, given: DictConfig, run_dir: Path, hc: DictConfig) -> float:
    """Check, lock the run dir, check a resume, record the settings, run; the number sweepers optimize (``sweep.metric``)."""
    from swarm.runtime.dist import launched_rank

    check(cfg, components=False)  # the typed schema first: a bad setting (or a run dir in use) fails before torch loads
    if hc.mode == RunMode.MULTIRUN and str(cfg.sweep.metric).startswith("heldout"):
        log.warning("sweep.metric=%s: the sweep tunes on the held-out takers, whose score then no longer measures "
                    "models the search never saw; search_takers.* is a validation score", cfg.sweep.metric)
    main = launched_rank() == 0
    with run_dir_lock(run_dir) if main else nullcontext():  # rank 0 owns the run dir
        check_components(cfg)  # the components' own settings (their modules import torch): still before any model
        if main:  # nothing in the run dir is written before this passes (conf/config.yaml: hydra.output_subdir null)
            check_resume(run_dir, cfg, Path(hc.runtime.cwd))
            write_record(run_dir, given, hc, list(hc.overrides.task))
            log.info("run dir: %s (the same command with hydra.run.dir=<it> resumes it)", run_dir)
        _quiet_libraries()
        from swarm.run import run

        summary = run(cfg, run_dir)
    log.info(
        "done: best utility %.4f (initial %.4f) after %d steps [%s]; held-out utility %.4f; run dir %s",
        summary["best_utility"], summary["initial_best"], summary["steps"], summary["stop_reason"],
        summary["heldout"]["utility"], run_dir,
    )
    return metric_value(summary, cfg.sweep.metric)


def _quiet_libraries() -> None:
    """Keep the console to the run's own progress: no weight-loading bars or library chatter."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    warnings.filterwarnings("ignore", message=".*Could not find a config file.*")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import bm25s  # noqa: F401  (it sets its own logger to DEBUG at import; quiet it after)

    for name in ("bm25s", "matplotlib", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _interrupted(err: Interrupted, argv: list[str]) -> int:
    """One line: where the run stopped and the command that resumes it; exit 128 + the signal."""
    from swarm.runtime.dist import launched_rank

    if launched_rank() != 0:
        return err.code
    name = signal.Signals(err.signum).name
    if err.where is None:
        sys.stderr.write(f"dswarm: interrupted ({name}) before the run started\n")
        return err.code
    key, where = err.where
    step = _checkpoint_step(Path(where)) if key == "hydra.run.dir" else None
    done = f"at step {step} (its checkpoint is kept)" if step else "before its first checkpoint" if key == "hydra.run.dir" else ""
    args = [a for a in argv if not a.startswith((f"{key}=", f"++{key}="))]
    command = shlex.join(["dswarm", *args, f"{key}={where}"])
    sys.stderr.write(f"dswarm: interrupted ({name}) {done}{'; ' if done else ''}resume: {command}\n")
    return err.code


def _checkpoint_step(run_dir: Path) -> int | None:
    """The step the run dir's checkpoint holds (what a resume starts from), or None."""
    from swarm.runtime import checkpoint
    from swarm.runtime.errors import ConfigError

    try:
        state = checkpoint.load(run_dir)
    except ConfigError:
        return None
    return None if state is None else int(state["step"])


def main() -> int:
    from swarm.runtime.dist import follower_overrides, shutdown

    argv = sys.argv[1:]
    sys.argv += follower_overrides()  # under `accelerate launch`: only rank 0 has a run dir and logs
    on_signals()
    try:
        with one_line_hydra_errors():
            _app()
        return sweep.FAILED_SWEEP if sweep.failed_jobs else 0
    except Interrupted as err:
        return _interrupted(err, argv)
    finally:
        if "torch.distributed" in sys.modules:  # else no process group exists (and a bad setting exits without importing torch)
            shutdown()


if __name__ == "__main__":
    sys.exit(main())
