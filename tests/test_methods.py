"""The baselines share the run's evaluation code and write the same run directory."""
from __future__ import annotations

import json

import pytest

from tests.cli import dswarm, read_jsonl

BASELINES = ["base_model", "best_expert", "uniform_soup", "random_search"]


@pytest.fixture(scope="module")
def baseline_runs(tiny_zoo, tmp_path_factory):
    sweep = tmp_path_factory.mktemp("baselines")
    dswarm("-m", f"method={','.join(BASELINES)}", "pso.max_steps=2", "logger=none", f"hydra.sweep.dir={sweep}")
    runs = {}
    for path in sweep.rglob("summary.json"):
        summary = json.loads(path.read_text())
        runs[summary["method"]] = (path.parent, summary)
    return runs


def test_every_baseline_writes_the_contract(baseline_runs):
    assert sorted(baseline_runs) == sorted(BASELINES)
    for method, (run_dir, summary) in baseline_runs.items():
        assert summary["heldout"]["n_items"] >= 20, method
        assert (run_dir / "best" / "generator" / "adapter_model.safetensors").exists(), method
        assert (run_dir / "best" / "data.jsonl").exists(), method


def test_best_expert_picks_the_best_initial_expert(baseline_runs):
    run_dir, summary = baseline_runs["best_expert"]
    first = read_jsonl(run_dir / "metrics.jsonl")[0]
    assert len(first["utility"]) == 4
    assert summary["best_utility"] == pytest.approx(max(first["utility"]))


def test_random_search_has_the_swarm_budget(baseline_runs):
    run_dir, summary = baseline_runs["random_search"]
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert [len(r["utility"]) for r in rows] == [4, 4]
    assert summary["steps"] == 2
    assert summary["best_utility"] == pytest.approx(max(max(r["utility"]) for r in rows))
    assert summary["initial_best"] == pytest.approx(max(rows[0]["utility"]))


def test_base_model_and_soup_evaluate_one_candidate(baseline_runs):
    for method in ("base_model", "uniform_soup"):
        rows = read_jsonl(baseline_runs[method][0] / "metrics.jsonl")
        assert len(rows) == 1 and len(rows[0]["utility"]) == 1
