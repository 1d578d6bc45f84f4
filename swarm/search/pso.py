"""Particle swarm optimization over flat fp32 vectors (utility: higher is better).

The swarm state lives in tensors of shape [n, d] (positions, velocities,
personal bests) and [d] (global worst), allocated once; the global best is
not a copy but a row of the personal bests (the best utility ever seen is some
particle's personal best), so the update reads one vector less. The update
runs in place (swarm/search/velocity.py).

Typical loop (the settings come checked from the `pso` config group's schema,
swarm/config/schema.py:PSOConf, the one list of them; this module imports no
repo module)::

    pso = PSO(x0, inertia=.2, cognitive=.3, social=.4, repel=.05, step_length=1., decay=.95, floor=.1,
              patience=10, max_steps=50, restart_patience=4, restart_cooldown=2, fused="auto", seed=0)
    while True:
        pso.tell(evaluate(pso.x))        # utilities of the current positions
        if pso.should_stop():
            break
        pso.step()

As the reference (Model/Data Swarms) does, all four weights (inertia too) are
multiplied by U(0, 1) draws per particle per step and normalized to sum 1.
Differences from it, on purpose: the step length decays once per step (not
once per particle), a restarted particle cannot restart again for
`restart_cooldown` steps, NaN/inf utilities count as -inf, and a point told
again (a particle at its personal best: after a restart, or standing still)
has its recorded utility *averaged* over its measurements, never replaced by
the larger one: with noisy utilities a maximum of re-measurements of one
point would ratchet upwards on noise alone.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch

from swarm.search import velocity

__all__ = ["PSO"]

log = logging.getLogger(__name__)


class PSO:
    """Swarm state and update; see the module docstring for the loop."""

    def __init__(
        self,
        x0: torch.Tensor,
        *,
        inertia: float,
        cognitive: float,
        social: float,
        repel: float,
        step_length: float,
        decay: float,
        floor: float,
        patience: int,
        max_steps: int,
        restart_patience: int,
        restart_cooldown: int,
        fused: bool | str,
        seed: int,
    ) -> None:
        """The settings are taken as checked (the `pso` schema's rules); only ``x0`` is checked here."""
        if x0.dim() != 2 or x0.shape[0] < 2 or x0.shape[1] < 1:
            raise ValueError(f"pso: x0 must have shape [n >= 2, d >= 1], got {list(x0.shape)}")
        lo, hi = torch.aminmax(x0)  # one pass, no copy (NaN propagates); isfinite(x0) made four passes and copies
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError("pso: x0 contains NaN or inf")

        self.inertia, self.cognitive, self.social, self.repel = inertia, cognitive, social, repel
        self.decay, self.floor = decay, floor
        self.patience, self.max_steps = patience, max_steps
        self.restart_patience, self.restart_cooldown = restart_patience, restart_cooldown

        n, d = x0.shape
        dev = x0.device
        self.n, self.d = n, d
        self._gen = torch.Generator(device=dev)
        self._gen.manual_seed(seed)
        f32 = dict(dtype=torch.float32, device=dev)
        self._x = x0.detach().to(**f32, copy=True).contiguous()
        self._p = self._x.clone()
        self._g_worst = torch.zeros(d, **f32)
        # Reference initial velocity: towards a uniformly random other particle.
        other = (torch.arange(n, device=dev) + torch.randint(1, n, (n,), generator=self._gen, device=dev)) % n
        self._v = self._x.index_select(0, other).sub_(self._x)

        self._p_util = torch.full((n,), -math.inf, dtype=torch.float64, device=dev)
        self._p_count = torch.zeros(n, dtype=torch.int64, device=dev)  # measurements averaged into p_util
        self._stall = torch.zeros(n, dtype=torch.int64, device=dev)  # tells since p_i improved
        self._cooldown = torch.zeros(n, dtype=torch.int64, device=dev)  # steps before i may restart
        self._restarted = torch.zeros(n, dtype=torch.bool, device=dev)
        self.g_util, self.g_index = -math.inf, -1
        self.worst_util = math.inf
        self.initial_best: float | None = None
        self.step_length = float(step_length)
        self.steps_done = 0  # number of tells
        self.g_stall = 0  # tells since g improved
        self._update, self._compiled = velocity.choose(fused, self._x)
        if self._compiled:
            log.info("pso: compiled one-pass update on (compiles at the first step; pso.fused=false turns it off)")

    # Read-only access to the live state, for the run loop and logging.
    @property
    def fused(self) -> bool:
        """Whether step() runs the compiled one-pass update."""
        return self._compiled

    @property
    def x(self) -> torch.Tensor:
        """Positions [n, d] (live buffer, updated in place by step)."""
        return self._x

    @property
    def v(self) -> torch.Tensor:
        """Velocities [n, d] (live buffer)."""
        return self._v

    @property
    def p(self) -> torch.Tensor:
        """Personal best positions [n, d]."""
        return self._p

    @property
    def p_util(self) -> torch.Tensor:
        """Personal best utilities [n], float64; -inf until told: the mean of p's measurements."""
        return self._p_util

    @property
    def p_count(self) -> torch.Tensor:
        """How many measurements of each personal best p_util averages [n]."""
        return self._p_count

    @property
    def g(self) -> torch.Tensor:
        """Global best position ever seen [d]: a view of p[g_index], which always holds it."""
        if self.g_index < 0:
            raise RuntimeError("pso.g: no utilities told yet")
        return self._p[self.g_index]

    @property
    def g_worst(self) -> torch.Tensor:
        """Global worst position ever seen [d] (the repel term pushes away from it)."""
        return self._g_worst

    @property
    def stall(self) -> torch.Tensor:
        """Tells since each particle's personal best last improved [n]."""
        return self._stall

    @property
    def restarted(self) -> torch.Tensor:
        """Mask of the particles the last step() restarted [n]."""
        return self._restarted

    def tell(self, utilities: torch.Tensor) -> None:
        """Record the utilities of the current positions `x` and update the bests.

        A particle whose x is bit-for-bit its personal best p (after a restart,
        or one that did not move) measured p again: p_util becomes the mean of
        all p's measurements, up or down, and that is no improvement. Any other
        particle's p moves to x when x scored higher. g moves to the point with
        the highest value told now (a new measurement or a new mean) when that
        beats g's own current value; otherwise g stays, its value being its row's
        p_util (which a re-measurement of g may have lowered).
        """
        u_t = torch.as_tensor(utilities, dtype=torch.float64).detach()  # lists: no fp32 detour
        if u_t.shape != (self.n,):
            raise ValueError(f"pso.tell: expected {self.n} utilities, got shape {list(u_t.shape)}")
        # The [n] bookkeeping in Python floats (the same IEEE doubles): n is a handful of particles, and as
        # tensor ops it was ~20 dispatches of ~3 us each for a few numbers.
        u = [v if math.isfinite(v) else -math.inf for v in u_t.tolist()]  # garbage is never best
        first = self.steps_done == 0
        again = [not first and torch.equal(self._x[i], self._p[i]) for i in range(self.n)]
        count = self._p_count.tolist()
        p_util = [(p * c + v) / (c + 1) if a else p  # -inf stays -inf: a point that gave garbage stays garbage
                  for p, c, v, a in zip(self._p_util.tolist(), count, u, again)]
        told = [p if a else v for p, v, a in zip(p_util, u, again)]  # this tell's value of each particle's point
        best = max(range(self.n), key=told.__getitem__)  # the first of the highest, as argmax
        worst = min(range(self.n), key=u.__getitem__)
        incumbent = -math.inf if first else p_util[self.g_index]
        new_g = first or told[best] > incumbent
        improved = [not a and (first or v > p) for v, p, a in zip(u, p_util, again)]
        if new_g and not again[best]:  # g is the row p[best], so p[best] takes x[best] even below a stale p_util
            improved[best] = True
        for i in (i for i, yes in enumerate(improved) if yes):
            self._p[i].copy_(self._x[i])
        device = self._x.device
        self._p_util = torch.tensor([v if yes else p for v, p, yes in zip(u, p_util, improved)], dtype=torch.float64, device=device)
        self._p_count = torch.tensor([1 if yes else c + 1 if a else c for c, a, yes in zip(count, again, improved)], device=device)
        self._stall = torch.tensor([0 if yes else s + 1 for s, yes in zip(self._stall.tolist(), improved)], device=device)

        if new_g:
            self.g_util, self.g_index, self.g_stall = told[best], best, 0
        else:
            self.g_util = incumbent
            self.g_stall += 1
        if first or u[worst] < self.worst_util:
            self._g_worst.copy_(self._x[worst])
            self.worst_util = u[worst]
        if first:
            self.initial_best = self.g_util
        self.steps_done += 1

    def rescore_incumbent(self, utility: float) -> None:
        """Replace g's remembered utility by its score on the objective as it is now.

        For objectives that move between tells (Adversarial Swarms): the next
        tell() then makes g any particle that beats the incumbent *now*. g is the
        row p[g_index], so that row's personal-best utility takes the new value
        too, and (g, g_util) stays one measured pair. NaN/inf count as -inf.
        """
        if self.g_index < 0:
            raise RuntimeError("pso.rescore_incumbent: no utilities told yet, so there is no incumbent")
        value = float(utility) if math.isfinite(float(utility)) else -math.inf
        self.g_util = value
        self._p_util[self.g_index] = value
        self._p_count[self.g_index] = 1  # a measurement on another objective: nothing to average with

    def _coefficients(self) -> torch.Tensor:
        """[n, 4] normalized (r_i*inertia, r_c*cognitive, r_s*social, r_r*repel), as the reference.

        Draws one `torch.rand((n, 4))` from the swarm's generator, columns
        (r_i, r_c, r_s, r_r). Rows whose weights sum to 0 get (1, 0, 0, 0): the
        velocity is left unchanged.
        """
        r = torch.rand((self.n, 4), generator=self._gen, device=self._x.device, dtype=torch.float32)
        w = r * r.new_tensor([self.inertia, self.cognitive, self.social, self.repel])
        total = w.sum(dim=1, keepdim=True)
        keep = r.new_tensor([1.0, 0.0, 0.0, 0.0]).expand_as(w)
        return torch.where(total > 0, w / total.clamp_min(torch.finfo(torch.float32).tiny), keep)

    def step(self) -> None:
        """Move every particle once, in place; then restart stuck ones and decay λ.

        v ← a_i·v + a_c·(p − x) + a_s·(g − x) + a_r·(x − g_worst);  x ← x + λ·v
        """
        if self.steps_done == 0:
            raise RuntimeError("pso.step: call tell() with the utilities of x before the first step")
        self._update(self._x, self._v, self._p, self.g, self._g_worst, self._coefficients(), self.step_length)
        self._restart()
        self.step_length = max(self.floor, self.step_length * self.decay)  # once per step

    def _restart(self) -> None:
        """Stuck particles go back to p_i with zero velocity, then `restart_cooldown` steps of immunity."""
        x, v, p = self._x, self._v, self._p
        eligible = self._cooldown == 0
        self._cooldown.sub_(1).clamp_(min=0)
        if self.restart_patience > 0:
            torch.logical_and(eligible, self._stall >= self.restart_patience, out=self._restarted)
        else:
            self._restarted.zero_()
        for i in self._restarted.nonzero().flatten().tolist():
            x[i].copy_(p[i])
            v[i].zero_()
            self._cooldown[i] = self.restart_cooldown

    def should_stop(self) -> str | None:
        """"patience" if g has not improved for `patience` tells, "max_steps" after `max_steps` tells."""
        if self.steps_done > 0 and self.g_stall >= self.patience:
            return "patience"
        if self.steps_done >= self.max_steps:
            return "max_steps"
        return None

    # Tensors are the live buffers (like nn.Module.state_dict): serialize or
    # clone before the next step. Hyperparameters come from the constructor.
    _TENSORS = ("x", "v", "p", "p_util", "p_count", "g_worst", "stall", "cooldown", "restarted")
    _SCALARS = ("g_util", "g_index", "worst_util", "step_length", "steps_done", "g_stall")

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-exactly, including the RNG state."""
        sd: dict[str, Any] = {k: getattr(self, "_" + k) for k in self._TENSORS}
        sd.update({k: getattr(self, k) for k in self._SCALARS})
        sd["initial_best"] = math.nan if self.initial_best is None else self.initial_best
        if self.g_index >= 0:
            sd["g"] = self.g  # for readers of a checkpoint; derived from p on load
        sd["rng_state"] = self._gen.get_state()
        return sd

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Restore a `state_dict()` (copied into this swarm's own buffers)."""
        missing = [k for k in (*self._TENSORS, *self._SCALARS, "initial_best", "rng_state") if k not in sd]
        if missing:
            raise KeyError(f"pso.load_state_dict: missing keys {missing}")
        for k in self._TENSORS:
            buf, src = getattr(self, "_" + k), torch.as_tensor(sd[k])
            if src.shape != buf.shape:
                raise ValueError(f"pso.load_state_dict: {k} has shape {list(src.shape)}, swarm has {list(buf.shape)}")
            buf.copy_(src)
        for k in self._SCALARS:
            setattr(self, k, type(getattr(self, k))(sd[k]))
        self.initial_best = None if math.isnan(float(sd["initial_best"])) else float(sd["initial_best"])
        self._gen.set_state(sd["rng_state"])
