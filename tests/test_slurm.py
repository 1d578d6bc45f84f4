"""Slurm through submitit: the sbatch script our launcher config makes, and preemption -> requeue -> resume."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import submitit
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import OmegaConf

from swarm.config import compose
from swarm.runtime.rundir import register_resolvers
from tests.cli import DSWARM, REPO, SMALL, dswarm, env, result


def test_slurm_launcher_config_makes_the_sbatch_script(tmp_path, monkeypatch):
    """hydra/launcher=slurm with the slurm: settings, turned into sbatch lines by submitit's own code."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\n")  # submitit's SlurmExecutor looks for srun on PATH
    (tmp_path / "bin" / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    register_resolvers()
    overrides = ["hydra/launcher=slurm", "slurm.partition=gpu", "slurm.gpus_per_task=2", "slurm.time_min=90", "slurm.max_requeues=5"]
    cfg = compose(overrides, return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert params.pop("_target_").endswith("SlurmLauncher")
    params.pop("submitit_folder")
    executor = submitit.AutoExecutor(cluster="slurm", folder=tmp_path / "jobs", slurm_max_num_timeout=params.pop("max_num_timeout"))
    base = set(OmegaConf.structured(BaseQueueConf).keys())  # the launcher's own split of the parameters
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    script = executor._executor._make_submission_file_text("python -m x", "0")
    for line in ("--partition=gpu", "--gpus-per-task=2", "--time=90", "--signal=USR2@120", "--cpus-per-task=8", "--mem=64GB"):
        assert f"#SBATCH {line}\n" in script, script
    assert executor._executor.max_num_timeout == 5


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.mark.slow
def test_preempted_job_requeues_and_resumes_to_the_same_summary(tiny_zoo, tmp_path):
    """submitit's local executor: start, preempt (USR2, as Slurm does) after step 1, requeue, resume."""
    whole = tmp_path / "whole"
    dswarm("pso.max_steps=3", "logger=none", run_dir=whole)
    sweep = tmp_path / "sweep"
    cmd = [str(DSWARM), "-m", *SMALL, "hydra/launcher=slurm_local", "pso.max_steps=3", "logger=none", f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 300
        while not any(m.read_text().count("\n") >= 1 for m in sweep.glob("*/metrics.jsonl")):
            assert proc.poll() is None and time.time() < deadline, "the job ended before step 1"
            time.sleep(0.1)
        jobs = [p for p in _descendants(proc.pid) if b"submitit.core._submit" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(jobs) == 1
        os.kill(jobs[0], signal.SIGUSR2)  # Slurm's preemption / near-timeout signal
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    (run_dir,) = sweep.glob("0_*")
    log = (run_dir / "dswarm.log").read_text()
    assert "this job is preempted" in log and "Requeued job" in log
    assert "from step 1" in log or "from step 2" in log  # resumed from the checkpoint, not from scratch
    assert result(run_dir) == result(whole)
    for rel in ("best/data.jsonl", "best/generator/adapter_model.safetensors"):
        assert (run_dir / rel).read_bytes() == (whole / rel).read_bytes(), rel
