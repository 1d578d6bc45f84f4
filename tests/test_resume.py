"""Resume that checks: another config is refused before anything in the run dir changes; two checkpoints kept.

- a run dir with a checkpoint resumes only with the settings it was computed
  with, up to `swarm.runtime.record.RESUMABLE` (pso.max_steps, logging, ...);
- a refused command (another config, or a second live run) leaves every byte
  of the run dir as it was: Hydra no longer writes .hydra/ before the app;
- the newest checkpoint unreadable: the previous one resumes the run, to the
  same result as an uninterrupted run;
- a metrics.jsonl that is not a run's is refused, never overwritten.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch
from filelock import FileLock

from swarm.config import compose
from swarm.runtime import checkpoint
from swarm.runtime.errors import ConfigError
from swarm.runtime.record import RESUMABLE, check_resume, differences, write_record
from swarm.runtime.tracking import read_metrics
from tests.cli import SMALL, dswarm, result
from tests.inprocess import run


def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished(tiny_zoo, tmp_path_factory):
    """A finished 2-step objective=difficulty run, through the real CLI."""
    run_dir = tmp_path_factory.mktemp("resume") / "difficulty"
    dswarm("objective=difficulty", "pso.max_steps=2", "logger=none", run_dir=run_dir)
    return run_dir


@pytest.mark.slow
@pytest.mark.parametrize("changed, named", [
    (["objective=novelty"], "objective.name"),
    (["seed=5", "task.n_dev=50"], "seed"),
])
@pytest.mark.slow
def test_resume_with_other_settings_exits_2_and_leaves_the_run_dir_byte_identical(finished, tmp_path, changed, named):
    run_dir = tmp_path / "copy"
    shutil.copytree(finished, run_dir)
    before = snapshot(run_dir)
    proc = dswarm("pso.max_steps=3", "logger=none", *changed, run_dir=run_dir, check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"dswarm: error: {named}: {run_dir} holds a run computed with"), lines
    assert "Traceback" not in proc.stdout + proc.stderr
    assert snapshot(run_dir) == before


@pytest.mark.slow
def test_a_refused_second_run_does_not_touch_the_live_runs_record(finished, tmp_path):
    """The lock is held (a live run): the second command stops, and .hydra/ is still the live run's."""
    run_dir = tmp_path / "live"
    shutil.copytree(finished, run_dir)
    before = snapshot(run_dir)
    with FileLock(run_dir / ".lock", timeout=0):
        proc = dswarm("pso.max_steps=3", "logger=none", "objective=mixed", run_dir=run_dir, check=False)
    assert proc.returncode == 2 and "is in use by another live run" in proc.stderr
    assert snapshot(run_dir) == before


def _record(tmp_path: Path, *overrides: str) -> Path:
    """A run dir holding a record of ``overrides`` and a checkpoint (its content is never read by the check)."""
    write_record(tmp_path, compose([*SMALL, *overrides]), compose([], return_hydra_config=True).hydra, list(overrides))
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "state.safetensors").write_bytes(b"a checkpoint")
    return tmp_path


@pytest.mark.slow
def test_settings_in_the_allow_list_may_change_on_resume(tmp_path):
    run_dir = _record(tmp_path, "pso.max_steps=2", "logger=wandb")
    resumed = compose([*SMALL, "pso.max_steps=5", "logger=none", "progress=true", "threads=2", "data.save_steps=false",
                       "judge.max_missing_fraction=0.9", "batching.max_batch_tokens=1024", "slurm.mem_gb=8"])
    check_resume(run_dir, resumed, tmp_path)  # no error
    assert {"pso.max_steps", "logger", "progress", "threads"} <= set(RESUMABLE)


@pytest.mark.parametrize("override, named", [
    ("method=random_search", "method._target_"),
    ("objective=mixed", "objective.name"),
    ("objective.weights.difficulty=2", "objective.weights.difficulty"),
    ("pso.inertia=0.3", "pso.inertia"),
    ("task.n_dev=41", "task.n_dev"),
    ("taker.models=[t1]", "taker.models"),
    ("pso.n_particles=8", "pso.n_particles"),  # the swarm's starting points are what it computes
    ("pso.include_base=true", "pso.include_base"),
    ("select.n_items=7", "select.n_items"),  # the fresh selection picks the exported generator
    ("select.candidates=2", "select.candidates"),
    ("objective.validity=none", "objective.validity"),
])
@pytest.mark.slow
def test_every_other_difference_is_refused_naming_the_setting(tmp_path, override, named):
    run_dir = _record(tmp_path, "pso.max_steps=2")
    with pytest.raises(ConfigError, match=rf"^{named}: {tmp_path} holds a run computed with") as err:
        check_resume(run_dir, compose([*SMALL, "pso.max_steps=3", override]), tmp_path)
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_no_checkpoint_is_a_fresh_start_and_a_checkpoint_without_record_is_refused(tmp_path):
    fresh = tmp_path / "fresh"
    write_record(fresh, compose([*SMALL, "objective=mixed"]), compose([], return_hydra_config=True).hydra, [])
    check_resume(fresh, compose(SMALL), tmp_path)  # killed before its first checkpoint: nothing to compare
    bare = tmp_path / "bare"
    (bare / "checkpoint").mkdir(parents=True)
    (bare / "checkpoint" / "state.safetensors").write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"^hydra.run.dir: .* holds a checkpoint but not its settings"):
        check_resume(bare, compose(SMALL), tmp_path)


def test_differences_by_hand():
    stored = {"seed": 0, "pso": {"inertia": 0.4, "max_steps": 2}, "logger": {"kind": "wandb", "project": "p"}}
    new = {"seed": 0, "pso": {"inertia": 0.5, "max_steps": 9}, "logger": {"kind": "none"}, "select": {"k": 3}}
    assert [(k, a, b) for k, a, b in differences(stored, new) if type(a) is not object] == [("pso.inertia", 0.4, 0.5)]
    assert [k for k, _, _ in differences(stored, new)] == ["pso.inertia", "select.k"]


# ------------------------------------------------------------------ the last two checkpoints


def test_the_last_two_checkpoints_are_kept_and_the_older_serves_when_the_newer_is_unreadable(tmp_path, caplog):
    for step in (1, 2, 3):
        checkpoint.write(tmp_path, checkpoint.serialize({"step": step, "x": torch.full((2,), float(step))}))
    folder = tmp_path / "checkpoint"
    assert sorted(p.name for p in folder.iterdir()) == ["state.prev.safetensors", "state.safetensors"]
    assert checkpoint.load(tmp_path)["step"] == 3
    (folder / "state.safetensors").write_bytes((folder / "state.safetensors").read_bytes()[:50])  # lost its tail
    with caplog.at_level(logging.WARNING, logger="dswarm"):
        state = checkpoint.load(tmp_path)
    assert state["step"] == 2 and torch.equal(state["x"], torch.full((2,), 2.0))
    assert "resuming from the previous checkpoint (step 2)" in caplog.text
    checkpoint.write(tmp_path, checkpoint.serialize({"step": 3, "x": torch.zeros(2)}))  # the resumed step 3
    assert sorted(p.name for p in folder.iterdir()) == ["state.prev.safetensors", "state.safetensors", "state.unreadable.safetensors"]
    assert checkpoint.read(folder / "state.prev.safetensors")["step"] == 2  # not the unreadable one
    (folder / "state.safetensors").unlink()  # a kill between write's two renames
    assert checkpoint.load(tmp_path)["step"] == 2


def test_both_checkpoints_unreadable_is_a_one_line_error(tmp_path):
    for step in (1, 2):
        checkpoint.write(tmp_path, checkpoint.serialize({"step": step}))
    for name in ("state.safetensors", "state.prev.safetensors"):
        (tmp_path / "checkpoint" / name).write_bytes(b"\x80\x02garbage")
    with pytest.raises(ConfigError, match=r"^checkpoint: .*state.prev.safetensors is unreadable"):
        checkpoint.load(tmp_path)


@pytest.mark.slow
def test_an_unreadable_newest_checkpoint_resumes_from_the_previous_to_the_uninterrupted_result(tiny_zoo, tmp_path, caplog):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    run("pso.max_steps=3", run_dir=whole)
    run("pso.max_steps=2", run_dir=resumed)
    (resumed / "checkpoint" / "state.safetensors").write_bytes(b"torn")
    with caplog.at_level(logging.INFO, logger="dswarm"):
        run("pso.max_steps=3", run_dir=resumed)
    assert f"resuming {resumed} from step 1" in caplog.text
    assert result(whole) == result(resumed)
    for rel in ("best/data.jsonl", "data/step_002.jsonl", "data/step_003.jsonl"):
        assert (whole / rel).read_bytes() == (resumed / rel).read_bytes(), rel
    assert [r["utility"] for r in read_metrics(whole)] == [r["utility"] for r in read_metrics(resumed)]


# ------------------------------------------------------------------ metrics.jsonl


def test_a_metrics_file_that_is_not_a_runs_is_refused(tmp_path):
    path = tmp_path / "metrics.jsonl"
    for foreign in ('{"loss": 0.1}\n{"loss": 0.2}\n', "epoch,loss\n1,0.5\n", '[1, 2]\n{"step": 1}\n'):
        path.write_text(foreign)
        with pytest.raises(ConfigError, match=r"^hydra.run.dir: .*metrics.jsonl is not a dswarm metrics file"):
            read_metrics(tmp_path)
    path.write_text('{"step": 1, "utility": [0.5]}\n{"step": 2, "util')  # a torn last line is a kill, not a stranger
    assert read_metrics(tmp_path) == [{"step": 1, "utility": [0.5]}]
