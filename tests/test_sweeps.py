"""Sweeps that survive failed jobs, Optuna studies of sweep.metric, run dirs that cannot collide."""
from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml

from swarm.runtime.errors import ConfigError
from swarm.runtime.sweep import metric_value
from tests.cli import DSWARM, REPO, SMALL, dswarm, env


@pytest.mark.slow
def test_a_failed_job_is_recorded_and_the_sweep_goes_on(tiny_zoo, tmp_path):
    sweep = tmp_path / "sweep"
    out = dswarm("-m", "pso.inertia=2,0.4", "pso.max_steps=1", "logger=none", f"hydra.sweep.dir={sweep}", check=False)
    assert out.returncode == 1, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("dswarm: error:")]
    assert len(errors) == 1 and errors[0].startswith("dswarm: error: 1 of 2 sweep jobs failed"), out.stderr
    assert "Traceback" not in out.stderr
    (failed,) = sweep.glob("0_*")
    (done,) = sweep.glob("1_*")
    assert (failed / "error.txt").read_text() == "exit 2: pso.inertia: must be in [0, 1], got 2\n"
    assert "pso.inertia: must be in [0, 1], got 2" in (failed / "dswarm.log").read_text()
    assert (done / "summary.json").is_file() and not (done / "error.txt").exists()


@pytest.mark.slow
def test_optuna_study_of_three_trials(tiny_zoo, tmp_path):
    """hydra/sweeper=pso_search: 3 trials; the study's best value is the best trial's validation utility
    (search_takers.utility, the default sweep.metric: never the held-out takers)."""
    study = tmp_path / "study"
    dswarm("-m", "hydra/sweeper=pso_search", "hydra.sweeper.n_trials=3", "pso.max_steps=1", "logger=none",
           f"hydra.sweep.dir={study}")
    trials = sorted(p.parent for p in study.glob("*/summary.json"))
    assert len(trials) == 3
    utilities = [json.loads((t / "summary.json").read_text())["search_takers"]["utility"] for t in trials]
    inertias = [yaml.safe_load((t / ".hydra" / "config.yaml").read_text())["pso"]["inertia"] for t in trials]
    assert len(set(inertias)) == 3 and all(0.1 <= i <= 0.9 for i in inertias)  # sampled from the search space
    results = yaml.safe_load((study / "optimization_results.yaml").read_text())
    assert results["best_value"] == max(utilities)
    assert set(results["best_params"]) == {"pso.inertia", "pso.cognitive", "pso.social", "pso.repel", "pso.step_length"}


def test_metric_value_by_hand():
    summary = {"heldout": {"utility": 0.25, "objective": {"difficulty": 0.5}}, "best_utility": 1, "method": "x"}
    assert metric_value(summary, "heldout.utility") == 0.25
    assert metric_value(summary, "heldout.objective.difficulty") == 0.5
    assert metric_value(summary, "best_utility") == 1.0
    with pytest.raises(ConfigError, match="sweep.metric: 'heldout.nope' is not in the run's summary"):
        metric_value(summary, "heldout.nope")
    with pytest.raises(ConfigError, match="not a number"):
        metric_value(summary, "method")


@pytest.mark.slow
def test_two_identical_commands_in_the_same_second_get_two_run_dirs():
    cmd = [str(DSWARM), "--cfg", "hydra", "-p", "hydra.run.dir"]
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.PIPE, text=True) for _ in range(2)]
    dirs = [p.communicate()[0].strip() for p in procs]
    assert dirs[0].startswith("outputs/runs/") and dirs[1].startswith("outputs/runs/")
    assert dirs[0] != dirs[1]


@pytest.mark.slow
def test_a_second_live_run_in_the_same_dir_is_refused(tiny_zoo, tmp_path):
    run_dir = tmp_path / "run"
    cmd = [str(DSWARM), *SMALL, "pso.max_steps=10", "logger=none", f"hydra.run.dir={run_dir}"]
    first = subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not (run_dir / ".lock").exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.1)  # the first run has taken the lock (it is then still loading its models)
        assert first.poll() is None, "the first run ended before the second one started"
        second = dswarm("pso.max_steps=3", "logger=none", run_dir=run_dir, check=False)
        assert first.poll() is None, "the test needs the first run still live"
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 2
    assert second.stderr.strip().splitlines() == [
        f"dswarm: error: hydra.run.dir: {run_dir} is in use by another live run (its .lock is held); "
        "wait for it to end or give this run another hydra.run.dir"
    ]
