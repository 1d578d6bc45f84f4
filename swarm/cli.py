"""`dswarm`: the Hydra command line of data-swarms.

    dswarm                                   # the embedded default (zoo, arith, difficulty)
    dswarm objective=mixed pso.max_steps=20  # compose config groups, override any key
    dswarm -m objective=difficulty,novelty   # a sweep: one run dir and W&B run per job
    dswarm --help                            # the config groups and their options

Errors in the settings print one line and exit 2 (HYDRA_FULL_ERROR=1 shows the traceback).
"""
from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from swarm.errors import exit_on_error, one_line_hydra_errors

log = logging.getLogger("dswarm")


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> None:
    hc = HydraConfig.get()
    one_line_hydra_errors.job_started()
    if cfg.logger.kind == "wandb" and cfg.logger.group is None and hc.mode == RunMode.MULTIRUN:
        with open_dict(cfg):
            cfg.logger.group = Path(hc.sweep.dir).name
    with exit_on_error():
        from swarm.validate import validate

        validate(cfg)  # cheap checks first: a bad setting fails before torch and the models load
        _quiet_libraries()
        from swarm.run import run

        summary = run(cfg, Path(hc.runtime.output_dir))
        log.info(
            "done: best utility %.4f (initial %.4f) after %d steps [%s]; held-out utility %.4f; run dir %s",
            summary["best_utility"], summary["initial_best"], summary["steps"], summary["stop_reason"],
            summary["heldout"]["utility"], hc.runtime.output_dir,
        )


def _quiet_libraries() -> None:
    """Keep the console to the run's own progress: no weight-loading bars or library chatter."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("WANDB_SILENT", "true")
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    warnings.filterwarnings("ignore", message=".*Could not find a config file.*")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import bm25s  # noqa: F401  (it sets its own logger to DEBUG at import; quiet it after)

    for name in ("bm25s", "matplotlib", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main() -> None:
    from swarm.dist import follower_overrides, shutdown

    sys.argv += follower_overrides()  # under `accelerate launch`: only rank 0 has a run dir and logs
    try:
        with one_line_hydra_errors():
            _app()
    finally:
        if "torch.distributed" in sys.modules:  # else no process group exists (and a bad setting exits without importing torch)
            shutdown()


if __name__ == "__main__":
    sys.exit(main())
