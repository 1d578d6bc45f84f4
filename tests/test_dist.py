"""`accelerate launch` of the real CLI: 2 CPU processes (gloo) give the 1-process result, in one run dir.

Both runs use one torch thread per process, so every particle's float math is
the same whichever process evaluates it.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import REPO, SMALL, dswarm, env, read_jsonl, result

ACCELERATE = Path(sys.executable).parent / "accelerate"
LAUNCH = ["launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"]
ARGS = ["objective=mixed", "pso.max_steps=2"]


@pytest.fixture(scope="module")
def runs(tiny_zoo, tmp_path_factory):
    """(1-process run dir, 2-process cwd, its temp dir): the 2-process run picks its own ${now:} run dir."""
    root = tmp_path_factory.mktemp("dist")
    one = root / "one"
    dswarm(*ARGS, "logger=none", run_dir=one)
    e = env()  # one thread a process, like every CLI test
    cwd, scratch = root / "cwd", root / "tmp"
    cwd.mkdir()
    scratch.mkdir()
    cmd = [str(ACCELERATE), *LAUNCH, "-m", "swarm.cli", *SMALL, *ARGS, "logger=wandb"]
    proc = subprocess.run(cmd, cwd=cwd, env={**e, "TMPDIR": str(scratch), "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)}\nSTDOUT\n{proc.stdout}\nSTDERR\n{proc.stderr}"
    return one, cwd, scratch, proc


@pytest.mark.slow
def test_two_processes_write_one_run_dir(runs):
    _, cwd, scratch, proc = runs
    run_dirs = [p for p in (cwd / "outputs" / "runs").iterdir()]
    assert len(run_dirs) == 1, run_dirs
    assert [p.name for p in cwd.iterdir()] == ["outputs"]
    assert not list(scratch.glob("dswarm-rank*")), "rank 1's Hydra scratch dir was not removed"
    run = run_dirs[0]
    for rel in (".hydra/config.yaml", "metrics.jsonl", "summary.json", "best/data.jsonl", "plots/utility.png",
                "checkpoint/state.safetensors", "best/generator/adapter_model.safetensors", "wandb_run_id"):
        assert (run / rel).is_file(), rel
    assert len([p for p in (run / "wandb").iterdir() if p.name.startswith("offline-run")]) == 1
    log = (run / "dswarm.log").read_text()
    assert log.count("done: best utility") == 1 and log.count("step 1 ") == 1, log
    assert proc.stdout.count("done: best utility") + proc.stderr.count("done: best utility") == 1


@pytest.mark.slow
def test_two_processes_same_result_as_one(runs):
    one, cwd, _, _ = runs
    two = next((cwd / "outputs" / "runs").iterdir())
    assert result(two) == result(one)
    for rel in ("best/data.jsonl", "data/step_001.jsonl", "data/step_002.jsonl", "data/reference.json"):
        assert (two / rel).read_text() == (one / rel).read_text(), rel
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds" and not k.startswith("time/")} for r in rows]  # noqa: E731
    assert strip(read_jsonl(two / "metrics.jsonl")) == strip(read_jsonl(one / "metrics.jsonl"))
