"""Runs a researcher can share and stop: results readable under the umask, clean interrupts, strict JSON.

- every file and folder of a run dir gets the mode the umask gives (022: a
  colleague can read the adapter and the data), never mkstemp's 0600;
- the run dir is printed at start; SIGINT/SIGTERM end with one line naming the
  step and the command that resumes, exit 130/143, and the checkpoint resumes
  to the uninterrupted result;
- what the run writes is strict JSON: NaN and infinities become null.
"""
from __future__ import annotations

import json
import math
import os
import shlex
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from swarm.runtime.files import atomic_dir, atomic_write_bytes, atomic_write_json, dumps, jsonl
from tests.cli import DSWARM, REPO, SMALL, dswarm, env, result

STEPS = ["pso.max_steps=4", "logger=none"]


def with_umask(mask: int):
    return lambda: os.umask(mask)


@pytest.fixture(scope="module")
def uninterrupted(tiny_zoo, tmp_path_factory):
    """A 4-step run started under umask 022."""
    run_dir = tmp_path_factory.mktemp("interrupts") / "whole"
    dswarm(*STEPS, run_dir=run_dir, preexec_fn=with_umask(0o022))
    return run_dir


@pytest.mark.slow
def test_a_run_dir_is_readable_by_others_under_umask_022(uninterrupted):
    modes = {str(p.relative_to(uninterrupted)): stat.S_IMODE(p.stat().st_mode) for p in uninterrupted.rglob("*")}
    for rel in ("summary.json", "metrics.jsonl", "best/data.jsonl", "best/generator/adapter_model.safetensors",
                "best/dataset/train.parquet", "plots/utility.png", "checkpoint/state.safetensors", ".hydra/config.yaml"):
        assert modes[rel] == 0o644, (rel, oct(modes[rel]))
    for rel in ("best", "best/generator", "best/dataset", "checkpoint", ".hydra"):
        assert modes[rel] == 0o755, (rel, oct(modes[rel]))
    unreadable = {rel: oct(m) for rel, m in modes.items() if not m & stat.S_IROTH}
    assert unreadable == {}


def test_atomic_writes_take_the_umask_both_ways(tmp_path):
    for mask, file_mode, dir_mode in ((0o022, 0o644, 0o755), (0o077, 0o600, 0o700), (0o002, 0o664, 0o775)):
        old = os.umask(mask)
        try:
            atomic_write_bytes(tmp_path / f"f{mask}", b"x")
            with atomic_dir(tmp_path / f"d{mask}") as d:
                (d / "adapter").write_bytes(b"y")
        finally:
            os.umask(old)
        assert stat.S_IMODE((tmp_path / f"f{mask}").stat().st_mode) == file_mode
        assert stat.S_IMODE((tmp_path / f"d{mask}").stat().st_mode) == dir_mode
        assert stat.S_IMODE((tmp_path / f"d{mask}" / "adapter").stat().st_mode) == file_mode


def _start(run_dir: Path, out: Path) -> subprocess.Popen:
    cmd = [str(DSWARM), *SMALL, *STEPS, f"hydra.run.dir={run_dir}"]
    return subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=open(out, "w"), stderr=subprocess.PIPE, text=True,
                            preexec_fn=with_umask(0o022))


def _wait_for_step(proc: subprocess.Popen, run_dir: Path, step: int) -> None:
    deadline = time.monotonic() + 300
    while not ((run_dir / "dswarm.log").exists() and f"- step {step} " in (run_dir / "dswarm.log").read_text()):
        assert proc.poll() is None, "the run ended before the signal"
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_with_one_line_and_the_command_that_resumes(uninterrupted, tmp_path, sig, code):
    run_dir, out = tmp_path / "stopped", tmp_path / "stdout.txt"
    proc = _start(run_dir, out)
    _wait_for_step(proc, run_dir, 2)  # step 1's checkpoint was handed to the writer before step 2 began
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    lines = err.strip().splitlines()
    assert proc.returncode == code, err[-3000:]
    assert len(lines) == 1, err
    assert "Traceback" not in err + out.read_text()
    name = signal.Signals(sig).name
    assert lines[0].startswith(f"dswarm: interrupted ({name}) at step "), lines[0]
    step = int(lines[0].split(" at step ")[1].split()[0])
    assert step >= 1 and (run_dir / "checkpoint" / "state.safetensors").is_file()
    console = out.read_text()
    assert console.index(f"run dir: {run_dir}") < console.index("- step 1 ")  # printed at start, before step 1
    command = shlex.split(lines[0].split("; resume: ", 1)[1])
    assert command[0] == "dswarm" and command[-1] == f"hydra.run.dir={run_dir}"
    if sig == signal.SIGINT:  # the printed command resumes it, to the uninterrupted result
        resumed = subprocess.run([str(DSWARM), *command[1:]], cwd=REPO, env=env(), capture_output=True, text=True)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert f"resuming {run_dir} from step {step}" in resumed.stdout
        assert result(run_dir) == result(uninterrupted)
        for rel in ("best/data.jsonl", "best/generator/adapter_model.safetensors"):
            assert (run_dir / rel).read_bytes() == (uninterrupted / rel).read_bytes(), rel


def test_strict_json_everywhere(tmp_path):
    row = {"step": 1, "utility": [0.5, math.nan, math.inf], "best": -math.inf, "nested": {"x": (math.nan, 1.0)}}
    text = dumps(row)
    assert json.loads(text) == {"step": 1, "utility": [0.5, None, None], "best": None, "nested": {"x": [None, 1.0]}}
    assert "NaN" not in jsonl([row]) and "Infinity" not in jsonl([row])
    atomic_write_json(tmp_path / "summary.json", {"best_utility": math.inf})
    json.loads((tmp_path / "summary.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-strict {c}"))
