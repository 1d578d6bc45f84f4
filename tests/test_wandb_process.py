"""W&B in a process of its own (swarm/runtime/wandb_process.py): what reaches the run file, and what
happens when either side goes away. Each test starts a real offline W&B run in a child process."""
from __future__ import annotations

import logging

import pytest

from swarm.runtime.errors import ConfigError
from swarm.runtime.wandb_process import Table, WandbProcess
from tests.wandb_records import read_run, table

pytestmark = pytest.mark.slow


def _start(run_dir) -> WandbProcess:
    return WandbProcess({"project": "p", "dir": str(run_dir), "mode": "offline", "id": "abc123",
                         "settings": {"console": "off", "x_disable_stats": True}})


def test_steps_tables_and_summary_reach_the_offline_run(tmp_path):
    w = _start(tmp_path)
    w.log({"swarm/best": 0.5}, step=1)
    w.log({"swarm/best": 0.75, "items": Table(["input", "score/t"], [["1+1", 1.0], ["2*3", 0.0]])}, step=2)
    w.update_summary({"heldout/utility": 0.625})
    w.finish(0)
    run = read_run(tmp_path)
    assert [(h["_step"], h["swarm/best"]) for h in run.history] == [(1, 0.5), (2, 0.75)]
    logged = run.history[1]
    assert table(tmp_path, {"_type": logged["items._type"], "path": logged["items.path"]})["data"] == [["1+1", 1.0], ["2*3", 0.0]]
    assert run.summary["heldout/utility"] == 0.625 and run.exit_code == 0


def test_when_the_run_s_process_vanishes_its_w_b_run_ends_as_failed(tmp_path):
    w = _start(tmp_path)
    w.log({"swarm/best": 0.5}, step=1)
    w._queue.put(None)  # what a killed run leaves: its end of the pipe closes, no "finish" was sent
    w._feeder.join()
    w.proc.stdin.close()
    assert w.proc.wait(timeout=120) == 0
    run = read_run(tmp_path)
    assert [h["swarm/best"] for h in run.history] == [0.5] and run.exit_code == 1


def test_a_dead_w_b_process_is_one_warning_and_the_run_goes_on(tmp_path, caplog):
    w = _start(tmp_path)
    w.proc.kill()
    w.proc.wait()
    with caplog.at_level(logging.WARNING, logger="dswarm"):
        w.log({"swarm/best": 0.5}, step=1)
        w.log({"swarm/best": 0.6}, step=2)
        w.finish(0)
    gone = [r.getMessage() for r in caplog.records if "its process ended" in r.getMessage()]
    assert len(gone) == 1, caplog.text
    assert any("exited with" in r.getMessage() for r in caplog.records)


def test_a_run_w_b_refuses_to_start_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^W&B: the run did not start \(error: .*mode.*\); logger=none runs without W&B$"):
        WandbProcess({"dir": str(tmp_path), "mode": "sideways"})
