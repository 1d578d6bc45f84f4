"""Particle swarm optimization over flat fp32 vectors (utility: higher is better).

The swarm state lives in tensors of shape [n, d] (positions, velocities,
personal bests) and [d] (global worst), allocated once; the global best is
not a copy but a row of the personal bests (the best utility ever seen is some
particle's personal best), so the update reads one vector less. The update
runs in place: for big particles on CPU as one compiled pass over memory
(`torch.compile` fuses it into a single loop), otherwise as six in-place
passes over cache-sized column blocks; either way a step over gemma-2-9b-sized
LoRA particles is tens of milliseconds, not the reference's safetensors round
trips.

Typical loop::

    pso = PSO(x0, inertia=.4, cognitive=.3, social=.3, repel=.3, step_length=1.,
              decay=.95, floor=.1, patience=10, max_steps=50,
              restart_patience=5, restart_cooldown=3, seed=0)
    while True:
        pso.tell(evaluate(pso.x))        # utilities of the current positions
        if pso.should_stop():
            break
        pso.step()

Differences from the reference Model/Data Swarms code, on purpose: the step
length decays once per step (not once per particle), a restarted particle
cannot restart again for `restart_cooldown` steps (the reference pins a stuck
particle to its personal best forever), and NaN/inf utilities count as -inf.
The inertia weight is not randomized (the reference also multiplies it by a
U(0, 1) draw); the three attraction/repulsion weights are, per particle.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Mapping
from typing import Any, Callable

import torch

from swarm.config.rules import check_pso  # the settings' rules, shared with the config schema

__all__ = ["PSO"]

log = logging.getLogger(__name__)

_BLOCK = 1 << 16  # columns per block of the CPU update: 4 particles x 64 Ki fp32 = 1 MiB per tensor
_FUSE_MIN = 1 << 22  # elements of x from which `fused="auto"` compiles the update (16 MiB fp32)


def _update(x: torch.Tensor, v: torch.Tensor, p: torch.Tensor, g: torch.Tensor, g_worst: torch.Tensor,
            a: torch.Tensor, step_length: torch.Tensor) -> None:
    """The velocity and position update in the differences form, for `torch.compile` to fuse."""
    a_i, a_c, a_s, a_r = a[:, 0:1], a[:, 1:2], a[:, 2:3], a[:, 3:4]
    new_v = a_i * v + a_c * (p - x) + a_s * (g - x) + a_r * (x - g_worst)
    v.copy_(new_v)
    x.add_(step_length * new_v)


def _compiler_available() -> bool:
    return any(shutil.which(cc) for cc in ("c++", "g++", "clang++"))


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
        seed: int,
        fused: bool | str = "auto",
    ) -> None:
        if x0.dim() != 2 or x0.shape[0] < 2 or x0.shape[1] < 1:
            raise ValueError(f"pso: x0 must have shape [n >= 2, d >= 1], got {list(x0.shape)}")
        check_pso(inertia=inertia, cognitive=cognitive, social=social, repel=repel, step_length=step_length,
                  decay=decay, floor=floor, patience=patience, max_steps=max_steps,
                  restart_patience=restart_patience, restart_cooldown=restart_cooldown, fused=fused)
        if not torch.isfinite(x0).all():
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
        self._v = self._x[other] - self._x

        self._p_util = torch.full((n,), -math.inf, dtype=torch.float64, device=dev)
        self._stall = torch.zeros(n, dtype=torch.int64, device=dev)  # tells since p_i improved
        self._cooldown = torch.zeros(n, dtype=torch.int64, device=dev)  # steps before i may restart
        self._restarted = torch.zeros(n, dtype=torch.bool, device=dev)
        self.g_util, self.g_index = -math.inf, -1
        self.worst_util = math.inf
        self.initial_best: float | None = None
        self.step_length = float(step_length)
        self.steps_done = 0  # number of tells
        self.g_stall = 0  # tells since g improved
        if fused == "auto":  # compiling pays off only where six passes over memory cost milliseconds
            fused = dev.type == "cpu" and n * d >= _FUSE_MIN and _compiler_available()
        self._fused: Callable[..., None] | None = None
        if fused:
            log.info("pso: compiled one-pass update on (compiles at the first step; pso.fused=false turns it off)")
            self._fused = torch.compile(_update, dynamic=False, fullgraph=True)

    @classmethod
    def from_config(cls, x0: torch.Tensor, settings: Mapping[str, Any], seed: int) -> "PSO":
        """A swarm from the `pso` config group's keys."""
        keys = ("inertia", "cognitive", "social", "repel", "step_length", "decay", "floor", "patience",
                "max_steps", "restart_patience", "restart_cooldown", "fused")
        return cls(x0, seed=seed, **{k: settings[k] for k in keys if k in settings})

    # Read-only access to the live state, for the run loop and logging.
    @property
    def fused(self) -> bool:
        """Whether step() runs the compiled one-pass update."""
        return self._fused is not None

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
        """Personal best utilities [n], float64; -inf until told."""
        return self._p_util

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
        """Record the utilities of the current positions `x` and update the bests."""
        u = torch.as_tensor(utilities, dtype=torch.float64).detach().to(self._x.device)  # lists: no fp32 detour
        if u.shape != (self.n,):
            raise ValueError(f"pso.tell: expected {self.n} utilities, got shape {list(u.shape)}")
        u = torch.where(torch.isfinite(u), u, -math.inf)  # garbage is never best
        first = self.steps_done == 0
        best, worst = int(u.argmax()), int(u.argmin())
        new_g = first or u[best].item() > self.g_util
        improved = torch.ones_like(self._restarted) if first else u > self._p_util
        if new_g:  # g is the row p[best], so p[best] takes x[best] even below a stale remembered p_util
            improved[best] = True
        for i in improved.nonzero().flatten().tolist():
            self._p[i].copy_(self._x[i])
        self._p_util = torch.where(improved, u, self._p_util)
        self._stall = torch.where(improved, 0, self._stall + 1)

        if new_g:
            self.g_util, self.g_index, self.g_stall = u[best].item(), best, 0
        else:
            self.g_stall += 1
        if first or u[worst].item() < self.worst_util:
            self._g_worst.copy_(self._x[worst])
            self.worst_util = u[worst].item()
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

    def _coefficients(self) -> torch.Tensor:
        """[n, 4] normalized (inertia, r_c*cognitive, r_s*social, r_r*repel).

        Draws one `torch.rand((n, 3))` from the swarm's generator, columns
        (r_c, r_s, r_r). Rows whose weights sum to 0 get (1, 0, 0, 0): the
        velocity is left unchanged.
        """
        r = torch.rand((self.n, 3), generator=self._gen, device=self._x.device, dtype=torch.float32)
        w = torch.cat([torch.full((self.n, 1), self.inertia, dtype=torch.float32, device=r.device),
                       r * r.new_tensor([self.cognitive, self.social, self.repel])], dim=1)
        total = w.sum(dim=1, keepdim=True)
        keep = r.new_tensor([1.0, 0.0, 0.0, 0.0]).expand_as(w)
        return torch.where(total > 0, w / total.clamp_min(torch.finfo(torch.float32).tiny), keep)

    def step(self) -> None:
        """Move every particle once, in place; then restart stuck ones and decay λ.

        v ← a_i·v + a_c·(p − x) + a_s·(g − x) + a_r·(x − g_worst);  x ← x + λ·v

        Compiled (`fused`), this is one loop over memory that reads x, v, p,
        g_worst and writes x, v. Eager, it is computed regrouped as
        a_i·v + a_c·p + (a_r − a_c − a_s)·x + a_s·g − a_r·g_worst: six in-place
        passes and no scratch buffer, on CPU run over column blocks that fit in
        cache so memory is streamed about once (the update is memory-bound; the
        differences form would need eight passes and a scratch). The regrouping
        costs a few ulps of |x| per step, far below any step the search takes;
        with a single nonzero weight each term is still exact.
        """
        if self.steps_done == 0:
            raise RuntimeError("pso.step: call tell() with the utilities of x before the first step")
        a = self._coefficients()
        if self._fused is not None:
            self._fused(self._x, self._v, self._p, self.g, self._g_worst, a, torch.tensor(self.step_length, device=a.device))
        else:
            self._eager_update(a)
        self._restart()
        self.step_length = max(self.floor, self.step_length * self.decay)  # once per step

    def _eager_update(self, a: torch.Tensor) -> None:
        a_i, a_c, a_s, a_r = (a[:, k : k + 1] for k in range(4))
        a_x = a_r - a_c - a_s
        g = self.g
        block = _BLOCK if self._x.device.type == "cpu" else self.d  # a GPU streams whole rows faster
        for start in range(0, self.d, block):  # column blocks stay in cache across the six passes
            cols = slice(start, start + block)
            x, v, p = self._x[:, cols], self._v[:, cols], self._p[:, cols]
            v.mul_(a_i)
            v.addcmul_(p, a_c)
            v.addcmul_(x, a_x)
            v.addcmul_(a_s, g[cols])  # [n, 1] * [d] broadcasts without a temporary; g[cols] is in p's block
            v.addcmul_(a_r, self._g_worst[cols], value=-1.0)
            x.add_(v, alpha=self.step_length)

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
    _TENSORS = ("x", "v", "p", "p_util", "g_worst", "stall", "cooldown", "restarted")
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
