"""The search apart from any zoo's data: a planted optimum inside the span of the real generator experts.

The objective is -||x - x*||^2 with x* = sum_i c_i E_i, c = (0.45, 0.30, 0.15, 0.10): a known interior
point of the experts' convex hull that is neither an expert nor their mean. PSO starts from the tiny zoo's
4 trained generator expert vectors (pso defaults, restarts off, 300 steps; docs/zoo.md says why restarts
are off) and must end within 25 % of the nearest expert's distance; best_expert and uniform_soup cannot.
"""
import pytest
import torch

from generators.models.lora_model import LoraModel
from swarm.config import compose, settings
from swarm.search.pso import PSO

WEIGHTS = torch.tensor([0.45, 0.30, 0.15, 0.10])
TOLERANCE = 0.25  # of min_i ||E_i - x*||


def _search(E: torch.Tensor, target: torch.Tensor, seed: int, **overrides) -> torch.Tensor:
    pso_node = compose(["pso.max_steps=300", f"pso.patience={10**6}", *(f"pso.{k}={v}" for k, v in overrides.items())]).pso
    pso = PSO(E, seed=seed, **settings(pso_node))  # the repo's defaults (conf/pso/default.yaml) otherwise
    while True:
        pso.tell(-((pso.x - target) ** 2).sum(dim=1))
        if pso.should_stop():
            return pso.g.clone()
        pso.step()


@pytest.mark.slow
def test_pso_finds_a_planted_interior_optimum(tiny_zoo):
    E = LoraModel(tiny_zoo.base_dir, list(tiny_zoo.generators.values())).expert_vectors
    assert E.shape[0] == len(WEIGHTS)
    target = WEIGHTS @ E
    scale = (E - target).norm(dim=1).min()                  # best_expert's distance
    soup = (E.mean(dim=0) - target).norm() / scale           # uniform_soup's, relative
    assert soup > TOLERANCE                                  # neither baseline is within the tolerance
    for seed in range(3):
        found = (_search(E, target, seed, restart_patience=0) - target).norm() / scale
        assert found <= TOLERANCE, (seed, float(found), float(soup))
