"""The swarm's starting points: the generator experts, optionally the base model and seeded pairwise mixes.

    C, x0 = populate(experts, n_particles=10, include_base=True, seed=0)   # x0 == C @ experts, [10, d]

The Data Swarms paper starts from the experts alone (``n_particles=None``).
Model Swarms fills a bigger swarm with mixes of two distinct experts,
w·E_a + (1 − w)·E_b with w drawn uniformly in [0, 2): half interpolation, half
extrapolation. ``include_base`` adds the base model itself, a zero adapter, which the
swarm could otherwise never reach (a combination of the experts is
not zero unless the mix cancels them). Rows: the experts in order, then the
base, then the mixes. The draws come from a generator seeded with ``seed``
alone, so a resumed run rebuilds the same swarm (its positions then come from
the checkpoint). Every method that searches starts from these rows and
evaluates as many candidates a step as there are rows (the budget rule).
"""
from __future__ import annotations

import torch

from swarm.runtime.errors import ConfigError


def swarm_size(n_experts: int, n_particles: int | None, include_base: bool) -> int:
    """How many particles the swarm has: ``n_particles``, or the experts (and the base) alone."""
    least = n_experts + int(include_base)
    if n_particles is None:
        return least
    if n_particles < least:
        base = " and the base model (pso.include_base)" if include_base else ""
        raise ConfigError(f"pso.n_particles: must be >= {least} (the {n_experts} generator experts{base}), got {n_particles}")
    return n_particles


def mixing_coefficients(n_experts: int, n_particles: int | None, include_base: bool, seed: int) -> torch.Tensor:
    """[n, k] float64: identity rows, a zero row for the base, then one (w, 1 − w) pair a mix (module docstring)."""
    n = swarm_size(n_experts, n_particles, include_base)
    rows = [torch.eye(n_experts, dtype=torch.float64)]
    if include_base:
        rows.append(torch.zeros(1, n_experts, dtype=torch.float64))
    mixes = n - n_experts - int(include_base)
    if mixes:
        if n_experts < 2:
            raise ConfigError(f"pso.n_particles: mixes need at least 2 generator experts, got {n_experts}")
        gen = torch.Generator().manual_seed(seed)
        a = torch.randint(n_experts, (mixes,), generator=gen)
        b = (a + torch.randint(1, n_experts, (mixes,), generator=gen)) % n_experts  # uniform over the others
        w = 2.0 * torch.rand(mixes, generator=gen, dtype=torch.float64)
        c = torch.zeros(mixes, n_experts, dtype=torch.float64)
        c[torch.arange(mixes), a] = w
        c[torch.arange(mixes), b] = 1.0 - w
        rows.append(c)
    return torch.cat(rows)


def populate(experts: torch.Tensor, n_particles: int | None, include_base: bool, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The coefficients [n, k] and the swarm's starting vectors [n, d] (experts and base exact, mixes in fp32)."""
    c = mixing_coefficients(experts.shape[0], n_particles, include_base, seed)
    fixed = experts.shape[0] + int(include_base)
    base = torch.zeros_like(experts[: int(include_base)])
    return c, torch.cat([experts, base, c[fixed:].to(experts) @ experts])
