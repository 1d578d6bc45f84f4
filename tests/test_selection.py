"""swarm.search.selection: the exported generator is chosen on fresh items, not by the noisy in-sample maximum."""
from __future__ import annotations

import json
import math
import statistics

import pytest
import torch

from swarm.config import compose, settings
from swarm.config.search import MAX_STEPS
from swarm.runtime.errors import RunStopped
from swarm.search import selection
from swarm.search.evaluate import RESERVED_STEPS, step_seed
from swarm.search.pso import PSO
from swarm.search.selection import keep_best, pick, swarm_candidates
from tests.cli import read_jsonl, result
from tests.inprocess import run

NOISE = 0.06  # the standard error of one utility on ~50 items (issue 33)


def _true(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 0.8 - 0.02 * ((x - target) ** 2).sum(-1)


def test_on_a_noisy_planted_objective_fresh_selection_is_within_noise_where_the_in_sample_argmax_is_not():
    """PSO with the repo's defaults (10 steps, 4 particles) on a planted objective measured with noise sd 0.06.
    g's recorded utility, the maximum of ~40 noisy measurements, overstates its true value by about two sd;
    the candidate picked on fresh measurements overstates its own by at most the maximum of 4 draws (1.03 sd)."""
    pso_settings = settings(compose([]).pso)
    in_sample, fresh, gain = [], [], []
    for seed in range(60):
        gen = torch.Generator().manual_seed(1000 + seed)
        x0, target = torch.randn(4, 5, generator=gen), torch.randn(5, generator=gen)
        pso = PSO(x0, seed=seed, **pso_settings)
        while True:
            pso.tell(_true(pso.x, target).double() + NOISE * torch.randn(4, generator=gen, dtype=torch.float64))
            if pso.should_stop():
                break
            pso.step()
        candidates = swarm_candidates(pso, 4)
        assert candidates[0].source == "g" and candidates[0].in_sample == pso.g_util
        truth = [_true(c.vector, target).item() for c in candidates]
        measured = [t + NOISE * torch.randn(1, generator=gen).item() for t in truth]
        w = pick(measured)
        in_sample.append(pso.g_util - truth[0])
        fresh.append(measured[w] - truth[w])
        gain.append(truth[w] - truth[0])
    assert statistics.mean(in_sample) > 1.5 * NOISE  # the winner's curse
    assert statistics.mean(fresh) < 1.05 * NOISE and max(abs(f) for f in fresh) < 3 * NOISE  # within noise
    assert statistics.mean(in_sample) - statistics.mean(fresh) > 5 * statistics.stdev(fresh) / math.sqrt(60)
    assert statistics.mean(gain) >= 0.0  # and the exported point is no worse in truth than g


def test_candidates_are_g_then_personal_bests_by_utility_each_point_once():
    pso = PSO(torch.tensor([[0.0], [1.0], [1.0], [3.0]]), inertia=0.2, cognitive=0.3, social=0.4, repel=0.01,
              step_length=1.0, decay=1.0, floor=0.0, patience=10, max_steps=10, restart_patience=0,
              restart_cooldown=0, fused=False, seed=0)
    pso.tell([0.5, 0.7, 0.9, 0.6])
    got = swarm_candidates(pso, 4)
    assert [c.source for c in got] == ["g", "p/3", "p/0"]  # p/1 is the same point as g (p/2): left out
    assert [c.in_sample for c in got] == [0.9, 0.6, 0.5] and got[0].vector.tolist() == [1.0]
    assert [c.source for c in swarm_candidates(pso, 2)] == ["g", "p/3"]


def test_a_baseline_keeps_its_best_distinct_points():
    v = torch.tensor([[0.0], [1.0], [2.0]])
    pool = keep_best([], v, [0.5, math.nan, 0.7], step=1, k=2)
    assert [(e["source"], e["utility"]) for e in pool] == [("step 1/2", 0.7), ("step 1/0", 0.5)]
    pool = keep_best(pool, torch.tensor([[2.0], [3.0]]), [0.9, 0.5], step=2, k=3)  # [2.0] again: kept once
    assert [(e["source"], e["utility"]) for e in pool] == [("step 2/0", 0.9), ("step 1/0", 0.5), ("step 2/1", 0.5)]
    prompts = keep_best([], torch.zeros(2, 1), [0.3, 0.4], step=1, k=2, prompts=[{"examples": [1]}, {"examples": [2]}])
    assert [e["prompt"] for e in prompts] == [{"examples": [2]}, {"examples": [1]}]  # one vector, two prompts


def test_pick_prefers_the_earlier_candidate_on_ties_and_never_nan():
    assert pick([0.5, 0.7, 0.7]) == 1 and pick([math.nan, 0.1]) == 1 and pick([0.2, math.inf * 0]) == 0


def test_selection_and_export_seeds_are_no_search_steps_seed():
    assert min(RESERVED_STEPS) > MAX_STEPS and len(set(RESERVED_STEPS)) == len(RESERVED_STEPS)
    for seed in (0, 11, 12345):
        searched = {step_seed(seed, s) for s in range(1, 200_001)}
        assert not searched & {step_seed(seed, r) for r in RESERVED_STEPS}


@pytest.fixture(scope="module")
def selected(tiny_zoo, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("selection") / "run"
    return run_dir, run("pso.max_steps=2", run_dir=run_dir)


@pytest.mark.slow
def test_the_summary_records_every_candidates_in_sample_and_fresh_utility(selected):
    run_dir, summary = selected
    block, rows = summary["selection"], read_jsonl(run_dir / "metrics.jsonl")
    candidates = block["candidates"]
    assert len(candidates) == 4 and [c["exported"] for c in candidates].count(True) == 1
    assert candidates[0]["source"] == "g" and candidates[0]["in_sample"] == summary["best_utility"] == rows[-1]["best"]
    told = {u for r in rows for u in r["utility"]}
    assert all(c["in_sample"] in told for c in candidates)  # each a utility some step recorded
    assert block["exported"] == pick([c["fresh"] for c in candidates]) and candidates[block["exported"]]["exported"]
    items = read_jsonl(run_dir / "data" / "selection.jsonl")
    assert sorted({r["particle"] for r in items}) == [0, 1, 2, 3]
    assert sum(r["particle"] == 0 for r in items) == block["n_items"] == 10  # tests/cli.py: select.n_items=10
    exported = [r["input"] for r in items if r["particle"] == block["exported"]]
    final = [r["input"] for r in read_jsonl(run_dir / "best" / "data.jsonl")]
    assert exported != final[: len(exported)]  # the same generator on another seed: the export's items are new again


@pytest.mark.slow
def test_a_run_stopped_during_the_selection_resumes_to_the_same_result(selected, tmp_path, monkeypatch):
    ref_dir, reference = selected
    real = selection.evaluate_candidates
    monkeypatch.setattr(selection, "evaluate_candidates", lambda *a: (_ for _ in ()).throw(RunStopped("killed")))
    with pytest.raises(RunStopped):
        run("pso.max_steps=2", run_dir=tmp_path)
    assert not (tmp_path / "summary.json").exists() and (tmp_path / "checkpoint" / "state.safetensors").exists()
    monkeypatch.setattr(selection, "evaluate_candidates", real)
    run("pso.max_steps=2", run_dir=tmp_path)
    assert result(tmp_path) == result(ref_dir)  # less provenance (wall time)
    for rel in ("data/selection.jsonl", "best/data.jsonl", "data/step_002.jsonl"):
        assert (tmp_path / rel).read_bytes() == (ref_dir / rel).read_bytes(), rel
    # Run again in the finished dir: the stored selection is used, the candidates are not scored again.
    monkeypatch.setattr(selection, "evaluate_candidates", lambda *a: pytest.fail("the candidates were scored again"))
    run("pso.max_steps=2", run_dir=tmp_path)
    assert result(tmp_path) == result(ref_dir)
    stored = json.loads((tmp_path / selection.STORED).read_text())
    assert stored["steps"] == 2 and stored["block"] == reference["selection"]
