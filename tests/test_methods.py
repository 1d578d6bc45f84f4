"""The baselines share the run's evaluation code and write the same run directory (runs composed in-process)."""
from __future__ import annotations

import pytest
import torch

from swarm.config import choices
from swarm.runtime.errors import ConfigError
from tests.cli import read_jsonl
from tests.inprocess import config, run

# the eight: base_model, best_expert, cma_es, data_merge, prompt_search, random_search, ties, uniform_soup
BASELINES = [m for m in choices("method") if m not in ("data_swarms", "adversarial")]


@pytest.fixture(scope="module")
def baseline_runs(tiny_zoo, tmp_path_factory):
    sweep = tmp_path_factory.mktemp("baselines")
    return {m: (sweep / m, run(f"method={m}", "pso.max_steps=2", run_dir=sweep / m)) for m in BASELINES}


@pytest.mark.slow
@pytest.mark.parametrize("method", BASELINES)
def test_every_baseline_writes_the_contract(baseline_runs, method):
    """`method=X` ran and wrote the run directory with summary.json's heldout."""
    run_dir, summary = baseline_runs[method]
    assert summary["method"] == method and summary["heldout"]["n_items"] >= 20
    assert (run_dir / "best" / "generator" / "adapter_model.safetensors").exists()
    assert (run_dir / "best" / "data.jsonl").exists()


@pytest.mark.slow
def test_best_expert_picks_the_best_initial_expert(baseline_runs):
    run_dir, summary = baseline_runs["best_expert"]
    first = read_jsonl(run_dir / "metrics.jsonl")[0]
    assert len(first["utility"]) == 4
    assert summary["best_utility"] == pytest.approx(max(first["utility"]))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["random_search", "cma_es", "prompt_search"])
def test_searches_have_the_swarm_budget(baseline_runs, method):
    """As many candidates a step as generator experts (the swarm's particles), pso.max_steps steps,
    starting from the experts themselves."""
    run_dir, summary = baseline_runs[method]
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert [len(r["utility"]) for r in rows] == [4, 4]
    assert summary["steps"] == 2
    assert summary["best_utility"] == pytest.approx(max(max(r["utility"]) for r in rows))
    assert summary["initial_best"] == pytest.approx(max(rows[0]["utility"]))


@pytest.mark.slow
def test_searches_start_from_the_experts(baseline_runs):
    experts = read_jsonl(baseline_runs["best_expert"][0] / "metrics.jsonl")[0]["utility"]
    for method in ("random_search", "cma_es", "prompt_search"):
        assert read_jsonl(baseline_runs[method][0] / "metrics.jsonl")[0]["utility"] == experts, method


@pytest.mark.slow
def test_prompt_search_exports_the_prompt_of_the_candidate_chosen_on_fresh_items(baseline_runs):
    run_dir, summary = baseline_runs["prompt_search"]
    exported = summary["selection"]["candidates"][summary["selection"]["exported"]]
    if exported["source"].startswith("step 1/"):  # step 1: the experts with their default prompt
        assert "prompt" not in summary
    else:
        assert len(summary["prompt"]["examples"]) == 2 * 4 and "{examples}" in summary["prompt"]["template"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["random_search", "cma_es", "prompt_search"])
def test_searches_keep_their_best_points_for_the_fresh_selection(baseline_runs, method):
    """The candidates are the best distinct points the search scored, best first, with those utilities."""
    run_dir, summary = baseline_runs[method]
    told = sorted((u for r in read_jsonl(run_dir / "metrics.jsonl") for u in r["utility"]), reverse=True)
    candidates = summary["selection"]["candidates"]
    assert [c["in_sample"] for c in candidates] == pytest.approx(told[: len(candidates)])
    assert candidates[0]["in_sample"] == pytest.approx(summary["best_utility"])
    assert [c["exported"] for c in candidates].count(True) == 1


@pytest.mark.slow
@pytest.mark.parametrize("method", ["base_model", "best_expert", "uniform_soup", "ties", "data_merge"])
def test_methods_that_do_not_search_are_scored_once_without_a_selection(baseline_runs, method):
    run_dir, summary = baseline_runs[method]
    assert "selection" not in summary and not (run_dir / "data" / "selection.jsonl").exists()


@pytest.mark.slow
def test_a_bigger_swarm_gives_every_search_the_same_bigger_budget(tiny_zoo, tmp_path):
    """pso.n_particles=6 with the base: 6 candidates a step for every searcher, step 1 the swarm's own start."""
    args = ("pso.n_particles=6", "pso.include_base=true", "pso.max_steps=2", "select.candidates=1")
    firsts = []
    for method in ("random_search", "cma_es", "prompt_search"):
        run(f"method={method}", *args, run_dir=tmp_path / method)
        rows = read_jsonl(tmp_path / method / "metrics.jsonl")
        assert [len(r["utility"]) for r in rows] == [6, 6], method
        firsts.append(rows[0]["utility"])
    assert firsts[0] == firsts[1] == firsts[2]


@pytest.mark.slow
def test_merges_are_new_generators(baseline_runs):
    """ties and data_merge export an adapter that is neither an expert nor the uniform soup."""
    from generators.models.adapter_files import read_adapter

    def tensors(method):
        return read_adapter(baseline_runs[method][0] / "best" / "generator")[1]

    soup, experts_best = tensors("uniform_soup"), tensors("best_expert")
    for method in ("ties", "data_merge"):
        merged = tensors(method)
        assert set(merged) == set(soup), method
        assert any(not torch.equal(merged[k], soup[k]) for k in soup), method
        assert any(not torch.equal(merged[k], experts_best[k]) for k in soup), method
        assert all(torch.isfinite(v).all() for v in merged.values()), method


@pytest.mark.slow
def test_cma_es_resume_equals_uninterrupted(baseline_runs, tmp_path):
    resumed = tmp_path / "cma"
    run("method=cma_es", "pso.max_steps=1", run_dir=resumed)
    run("method=cma_es", "pso.max_steps=2", run_dir=resumed)
    whole = read_jsonl(baseline_runs["cma_es"][0] / "metrics.jsonl")
    assert [r["utility"] for r in read_jsonl(resumed / "metrics.jsonl")] == [r["utility"] for r in whole]


@pytest.mark.slow
def test_base_model_and_soup_evaluate_one_candidate(baseline_runs):
    for method in ("base_model", "uniform_soup"):
        rows = read_jsonl(baseline_runs[method][0] / "metrics.jsonl")
        assert len(rows) == 1 and len(rows[0]["utility"]) == 1


@pytest.mark.slow
def test_ties_weights_must_match_the_experts(tmp_path, tiny_zoo):
    """Only the loaded experts say how many weights are needed: checked when the run starts."""
    with pytest.raises(ConfigError, match=r"^method\.weights: one weight per generator expert \(4\), got 2$"):
        run("method=ties", "method.weights=[1.0,2.0]", run_dir=tmp_path / "bad")


@pytest.mark.parametrize("overrides, message", [
    (["method=ties", "method.combination=svd"], "method.combination: input should be 'ties' or 'dare_ties', got 'svd'"),
    (["method=prompt_search", "method.instructions=evol", "method.evol=[no placeholders]"],
     "method.evol: every instruction needs {n} and {examples}, got 'no placeholders'"),
    (["method=cma_es", "method.sigma=0"], "method.sigma: input should be greater than 0, got 0"),
])
@pytest.mark.slow
def test_method_settings_are_checked_by_the_methods_signature(overrides, message):
    with pytest.raises(ConfigError) as err:
        config(*overrides)
    assert str(err.value) == message
