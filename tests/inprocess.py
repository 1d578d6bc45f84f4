"""Compose a config and run it in this process (hydra.compose + swarm.run.run): the logic tests' fast path.

The CLI contract (exit codes, one-line errors, -m sweeps, what stdout/stderr hold)
is tested through the real `dswarm` (tests/cli.py); what a run computes is
tested here, without a Python, torch and transformers start per run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from swarm.config import check, compose
from tests.cli import SMALL


def config(*overrides: str, small: bool = True) -> DictConfig:
    """The composed and checked config: ``dswarm [SMALL] logger=none threads=1 overrides`` would run it."""
    cfg = compose([*(SMALL if small else []), "logger=none", "threads=1", *overrides])
    check(cfg)
    return cfg


def run(*overrides: str, run_dir: Path, small: bool = True) -> dict[str, Any]:
    """Run (or resume) in ``run_dir``; returns summary.json's content."""
    from swarm.run import run as run_config

    return run_config(config(*overrides, small=small), Path(run_dir))
