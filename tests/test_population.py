"""swarm.search.population: the experts, the base model and seeded pairwise mixes as the swarm's start."""
from __future__ import annotations

import json

import pytest
import torch

from swarm.runtime.errors import ConfigError
from swarm.search.population import mixing_coefficients, populate, swarm_size
from tests.cli import dswarm, read_jsonl, result
from tests.inprocess import run

E = torch.randn(4, 7, generator=torch.Generator().manual_seed(0))


def test_the_default_swarm_is_the_experts_alone():
    c, x = populate(E, None, False, seed=0)
    assert torch.equal(c, torch.eye(4, dtype=torch.float64)) and torch.equal(x, E)


def test_mixes_of_two_experts_with_a_weight_in_0_2_after_the_experts_and_the_base():
    c, x = populate(E, 10, True, seed=3)
    assert c.shape == (10, 4) and x.shape == (10, 7)
    assert torch.equal(x[:4], E) and torch.equal(x[4], torch.zeros(7))  # experts exact, then the base (zero adapter)
    for row in c[5:]:
        nonzero = row.nonzero().flatten().tolist()
        assert len(nonzero) in (1, 2) and row.sum().item() == pytest.approx(1.0)  # w*E_a + (1-w)*E_b (w=1: E_a)
        w = row[nonzero[0]].item()
        assert 0.0 <= w < 2.0 or 0.0 <= 1.0 - w < 2.0
    torch.testing.assert_close(x[5:], c[5:].float() @ E)


def test_the_mix_weights_cover_0_to_2_over_every_pair():
    """w ~ U[0, 2): half the mixes interpolate (both weights in [0, 1]), half extrapolate (one weight w > 1,
    the other 1 - w < 0); the weights reach towards 2 and -1."""
    c = mixing_coefficients(4, 4 + 2000, False, seed=1)[4:]
    pairs = {tuple(row.nonzero().flatten().tolist()) for row in c}
    assert pairs == {(a, b) for a in range(4) for b in range(a + 1, 4)}  # every pair of distinct experts
    assert (c.sum(dim=1) - 1.0).abs().max() < 1e-12 and ((c != 0).sum(dim=1) == 2).all()
    extrapolating = (c < 0).any(dim=1).float().mean().item()
    assert abs(extrapolating - 0.5) < 0.05  # P(w > 1) = 1/2; standard error 0.011
    assert 1.95 < c.max().item() < 2.0 and -1.0 < c.min().item() < -0.95


def test_seeded_the_same_swarm_every_time_and_another_with_another_seed():
    a, b, other = (populate(E, 8, False, seed=s)[1] for s in (5, 5, 6))
    assert torch.equal(a, b) and not torch.equal(a, other)
    assert torch.equal(a[:4], other[:4])


def test_too_few_particles_is_a_one_line_setting_error():
    assert swarm_size(4, None, True) == 5
    with pytest.raises(ConfigError, match=r"pso.n_particles: must be >= 5 \(the 4 generator experts and the base model"):
        swarm_size(4, 4, True)
    with pytest.raises(ConfigError, match="mixes need at least 2 generator experts"):
        mixing_coefficients(1, 3, False, seed=0)


@pytest.mark.slow
def test_a_populated_swarm_with_the_base_runs_ten_particles_a_step(tiny_zoo, tmp_path):
    """`dswarm pso.n_particles=10 pso.include_base=true`: 10 utilities a step, the base among the candidates' sources."""
    run_dir = tmp_path / "populated"
    dswarm("pso.n_particles=10", "pso.include_base=true", "pso.max_steps=2", "logger=none", run_dir=run_dir)
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert [len(r["utility"]) for r in rows] == [10, 10]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert len(summary["selection"]["candidates"]) == 4


@pytest.mark.slow
def test_a_populated_run_resumed_ends_as_the_uninterrupted_one(tiny_zoo, tmp_path):
    args = ("pso.n_particles=7", "pso.include_base=true")
    run(*args, "pso.max_steps=3", run_dir=tmp_path / "whole")
    run(*args, "pso.max_steps=1", run_dir=tmp_path / "resumed")  # stopped after one step ...
    run(*args, "pso.max_steps=3", run_dir=tmp_path / "resumed")  # ... then continued from its checkpoint
    assert result(tmp_path / "resumed") == result(tmp_path / "whole")  # less provenance (wall time)
    for rel in ("data/step_001.jsonl", "data/step_003.jsonl", "data/selection.jsonl", "best/data.jsonl"):
        assert (tmp_path / "resumed" / rel).read_bytes() == (tmp_path / "whole" / rel).read_bytes(), rel
