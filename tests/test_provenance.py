"""What a run records about itself: provenance, the initial best expert's held-out yardstick, and progress
that reads well in a log that is no terminal."""
from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import pytest

from swarm.runtime.progress import phase
from tests.cli import REPO, read_jsonl
from tests.inprocess import run


@pytest.fixture(scope="module")
def runs(tiny_zoo, tmp_path_factory):
    """data_swarms (2 steps) and best_expert with the same seed: both pick the best expert of step 1."""
    root = tmp_path_factory.mktemp("provenance")
    return {m: (run(f"method={m}", "pso.max_steps=2", run_dir=root / m), root / m) for m in ("data_swarms", "best_expert")}


@pytest.mark.slow
def test_summary_records_the_code_libraries_device_and_time(runs):
    summary, run_dir = runs["data_swarms"]
    p = summary["provenance"]
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert p["code"]["git_commit"] == head and isinstance(p["code"]["git_dirty"], bool)
    assert p["code"]["version"] == "0.1.0"
    import peft
    import torch
    import transformers

    assert p["libraries"]["torch"] == torch.__version__.split("+")[0] or p["libraries"]["torch"] == torch.__version__
    assert (p["libraries"]["transformers"], p["libraries"]["peft"]) == (transformers.__version__, peft.__version__)
    assert (p["device"], p["dtype"], p["world_size"]) == ("cpu", "float32", 1)
    steps = sum(r["seconds"] for r in read_jsonl(run_dir / "metrics.jsonl"))
    assert p["step_seconds"] == pytest.approx(steps, abs=0.1) and p["wall_seconds"] >= p["step_seconds"] > 0
    assert json.loads((run_dir / "summary.json").read_text())["provenance"] == p


@pytest.mark.slow
def test_the_initial_best_experts_held_out_utility_is_the_yardstick(runs):
    """data_swarms' initial_heldout is the best expert of step 1 on held-out takers: exactly what the best_expert
    baseline, which picks that expert with the same step-1 items, exports and scores."""
    swarm, _ = runs["data_swarms"]
    expert, _ = runs["best_expert"]
    assert swarm["initial_best"] == expert["best_utility"]
    assert swarm["initial_heldout"] == expert["heldout"] == expert["initial_heldout"]
    assert set(swarm["initial_heldout"]) >= {"utility", "objective", "takers", "valid_fraction"}


def test_progress_in_a_log_is_one_line_per_long_phase(caplog, monkeypatch):
    from swarm.runtime import progress

    err = io.StringIO()  # not a terminal, as under Slurm or a pipe
    monkeypatch.setattr(sys, "stderr", err)
    clock: dict[str, float] = {}
    with caplog.at_level(logging.INFO, logger="dswarm"):
        with phase("answer", 64, "answer", True, clock) as tick:  # shorter than LINE_AFTER_S (1 s): no line
            tick(64)
        assert caplog.records == [] and clock["answer"] > 0
        monkeypatch.setattr(progress, "LINE_AFTER_S", 0.0)
        with phase("generate", 640, "item", True, clock) as tick:
            for _ in range(10):
                tick(64)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("generate: 640/640 item in ") and lines[0].endswith(" item/s)")
    assert err.getvalue() == "" and clock["generate"] > 0  # no bar redraws
    with caplog.at_level(logging.INFO, logger="dswarm"), phase("judge", 5, "item", False, clock) as tick:
        tick(5)
    assert len(caplog.records) == 1  # progress=false: silent
