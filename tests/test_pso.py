"""swarm.search.pso: hand-computed updates, bests, restarts, stopping, resume, optimization."""

import io
import math

import pytest
import torch

from swarm.search import velocity
from swarm.search.pso import PSO

X0 = torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, -1.0]])


def make(x0: torch.Tensor = X0, **kw) -> PSO:
    args = dict(inertia=0.4, cognitive=0.3, social=0.3, repel=0.3, step_length=1.0, decay=1.0, floor=0.0,
                patience=100, max_steps=100, restart_patience=0, restart_cooldown=0, fused="auto", seed=0)
    args.update(kw)
    return PSO(x0, **args)


def only(term: str, **kw) -> PSO:
    """A swarm where one weight is 1 and the others 0: its normalized coefficient is exactly 1."""
    w = dict(inertia=0.0, cognitive=0.0, social=0.0, repel=0.0)
    w[term] = 1.0
    return make(**w, **kw)


def test_bad_positions_and_a_step_before_tell_are_errors():
    """The settings' rules are the schema's (tests/test_config.py); the PSO checks what it is given to move."""
    with pytest.raises(ValueError, match="n >= 2"):
        make(x0=torch.zeros(1, 3))
    for bad in (math.nan, math.inf, -math.inf):  # the check reads x0's min and max: each must catch its own
        with pytest.raises(ValueError, match="NaN or inf"):
            make(x0=torch.tensor([[0.0, 1.0], [bad, 2.0], [3.0, 4.0]]))
    with pytest.raises(RuntimeError, match="tell"):
        make().step()


def test_owns_a_fp32_copy_of_x0():
    x0 = X0.double()
    pso = make(x0=x0)
    x0.add_(1.0)
    assert pso.x.dtype == torch.float32 and torch.equal(pso.x, X0) and pso.x.is_contiguous()


def test_initial_velocity_points_to_another_particle():
    pso = make(x0=torch.tensor([[0.0, 0.0], [1.0, 2.0]]))
    assert torch.equal(pso.v, torch.tensor([[1.0, 2.0], [-1.0, -2.0]]))
    x0 = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    pso = make(x0=x0, seed=3)
    for i in range(6):
        j = int((x0 - x0[i] - pso.v[i]).abs().sum(1).argmin())
        assert j != i and torch.equal(pso.v[i], x0[j] - x0[i])


def test_tell_tracks_bests_worst_and_stalls():
    pso = make()
    assert pso.g_index == -1 and pso.initial_best is None
    pso.tell(torch.tensor([1.0, 3.0, 2.0]))
    assert (pso.g_util, pso.g_index, pso.initial_best, pso.worst_util) == (3.0, 1, 3.0, 1.0)
    assert torch.equal(pso.g, X0[1]) and torch.equal(pso.g_worst, X0[0]) and torch.equal(pso.p, X0)
    pso.x.copy_(X0 + 10)  # pretend the swarm moved
    pso.tell(torch.tensor([0.5, 2.0, 5.0]))
    assert torch.equal(pso.p, torch.stack([X0[0], X0[1], X0[2] + 10]))
    assert pso.p_util.tolist() == [1.0, 3.0, 5.0] and pso.stall.tolist() == [1, 1, 0]
    assert (pso.g_util, pso.g_index, pso.worst_util, pso.g_stall) == (5.0, 2, 0.5, 0)
    assert torch.equal(pso.g, X0[2] + 10) and torch.equal(pso.g_worst, X0[0] + 10)
    pso.x.copy_(X0 + 20)
    pso.tell(torch.tensor([5.0, 0.0, 1.0]))  # ties do not count as improvement
    assert pso.g_index == 2 and pso.g_stall == 1 and pso.steps_done == 3


def test_a_point_told_again_is_averaged_and_g_follows_the_values_told_now():
    pso = make()
    pso.tell(torch.tensor([1.0, 3.0, 2.0]))  # g = particle 1
    pso.x[0].add_(10.0)  # only particle 0 moves: 1 and 2 measure their personal bests again
    pso.tell(torch.tensor([0.5, 1.0, 4.0]))
    assert pso.p_util.tolist() == [1.0, 2.0, 3.0] and pso.p_count.tolist() == [1, 2, 2]
    assert torch.equal(pso.p, X0)  # a re-measurement moves no personal best
    assert pso.stall.tolist() == [1, 1, 1]  # and is no improvement, even when it raises the mean
    assert (pso.g_index, pso.g_util, pso.g_stall) == (2, 3.0, 0)  # 2's new mean beats g's (now 2.0)
    pso.tell(torch.tensor([0.5, 2.0, 0.0]))  # g measured a third time, lower: g's value drops, g stays
    assert (pso.g_index, pso.g_util, pso.g_stall) == (2, 2.0, 1) and pso.p_util.tolist() == [1.0, 2.0, 2.0]
    pso.tell(torch.tensor([2.5, 2.0, 2.0]))  # particle 0 (moved: a new point) beats g's value now
    assert (pso.g_index, pso.g_util) == (0, 2.5) and torch.equal(pso.g, X0[0] + 10) and pso.p_count[0] == 1


@pytest.mark.parametrize("restart_patience", [0, 2])
def test_on_a_flat_noisy_objective_a_recorded_utility_is_the_mean_not_the_running_max(restart_patience):
    """Identical particles at the origin never move (every term of the update is exactly 0), so every tell
    measures the same point again: its recorded utility must stay an unbiased estimate of the true 0.5,
    not climb with the maximum of the noise."""
    n, tells, noise = 200, 20, 0.06
    pso = make(x0=torch.zeros(n, 3), restart_patience=restart_patience, restart_cooldown=1)
    gen = torch.Generator().manual_seed(0)
    told = []
    for _ in range(tells):
        u = 0.5 + noise * torch.randn(n, generator=gen, dtype=torch.float64)
        told.append(u)
        pso.tell(u)
        pso.step()
    told = torch.stack(told)
    assert torch.equal(pso.x, torch.zeros(n, 3)) and pso.p_count.tolist() == [tells] * n
    torch.testing.assert_close(pso.p_util, told.mean(0), rtol=0, atol=1e-12)
    se = noise / math.sqrt(n * tells)
    assert abs(pso.p_util.mean().item() - 0.5) < 4 * se  # unbiased: within 4 standard errors of the truth
    assert told.cummax(0).values[-1].mean().item() > 0.5 + 1.5 * noise  # what a running maximum would record


def test_after_restarts_every_recorded_utility_is_the_mean_of_its_points_measurements():
    """A moving swarm whose stuck particles restart at their personal bests (and so measure them again):
    after every tell, each p_util is the mean of every utility told for that exact point."""
    gen = torch.Generator().manual_seed(3)
    pso = make(x0=torch.randn(6, 4, generator=gen), restart_patience=1, restart_cooldown=0)
    seen: dict[bytes, list[float]] = {}
    for _ in range(30):
        u = 0.5 + 0.06 * torch.randn(6, generator=gen, dtype=torch.float64)
        for i in range(6):
            seen.setdefault(pso.x[i].numpy().tobytes(), []).append(u[i].item())
        pso.tell(u)
        for i in range(6):
            values = seen[pso.p[i].numpy().tobytes()]
            assert pso.p_count[i].item() == len(values)
            assert pso.p_util[i].item() == pytest.approx(sum(values) / len(values), abs=1e-12)
        pso.step()
    assert pso.p_count.max().item() > 2  # restarts did measure personal bests again


def test_tell_accepts_python_floats_at_full_precision():
    pso = make()
    pso.tell([0.1, 1.0 + 1e-12, 1.0])
    assert pso.g_index == 1 and pso.g_util == 1.0 + 1e-12
    with pytest.raises(ValueError, match="expected 3 utilities"):
        pso.tell([1.0, 2.0])


def test_nan_and_inf_utilities_are_minus_inf():
    pso = make()
    pso.tell(torch.tensor([math.nan, 1.0, math.inf]))
    assert (pso.g_index, pso.g_util, pso.worst_util) == (1, 1.0, -math.inf)
    assert pso.p_util.tolist() == [-math.inf, 1.0, -math.inf]
    pso.step()
    pso.tell(torch.tensor([2.0, math.nan, math.nan]))
    assert pso.g_index == 0 and pso.p_util.tolist() == [2.0, 1.0, -math.inf]
    allbad = make()
    allbad.tell(torch.full((3,), math.nan))
    allbad.step()
    assert allbad.g_util == -math.inf and torch.isfinite(allbad.x).all()


def _setup(pso: PSO) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tell, then place p, x, v by hand; returns (x, v, p) before the step.

    p[1] stays X0[1]: particle 1 holds the best utility, so its personal best is g.
    """
    pso.tell(torch.tensor([1.0, 3.0, 0.0]))  # g = X0[1], g_worst = X0[2]
    x = torch.tensor([[0.5, 0.5], [1.0, 1.0], [-2.0, 4.0]])
    v = torch.tensor([[1.0, -1.0], [0.25, 0.5], [2.0, 2.0]])
    p = torch.tensor([[1.0, 0.0], X0[1].tolist(), [2.0, 2.0]])
    pso.x.copy_(x), pso.v.copy_(v), pso.p.copy_(p)
    return x, v, p


@pytest.mark.parametrize(
    "term, expected_v",
    [
        ("inertia", lambda x, v, p: v),
        ("cognitive", lambda x, v, p: p - x),
        ("social", lambda x, v, p: X0[1] - x),
        ("repel", lambda x, v, p: x - X0[2]),
    ],
)
def test_each_velocity_term_in_isolation(term, expected_v):
    pso = only(term, step_length=0.5)
    x, v, p = _setup(pso)
    pso.step()
    want = expected_v(x, v, p)
    assert torch.equal(pso.v, want)  # a lone coefficient normalizes to exactly 1
    assert torch.equal(pso.x, x + 0.5 * want)


def test_a_randomized_step_equals_the_hand_computed_one():
    """All four weights, inertia too, times U(0, 1) draws per particle, normalized to sum 1 (the reference's rule)."""
    w = dict(inertia=0.2, cognitive=0.3, social=0.4, repel=0.05)
    pso = make(**w, step_length=0.7, seed=11)
    x, v, p = _setup(pso)
    pso.step()
    gen = torch.Generator().manual_seed(11)  # replay the swarm's draws: the initial velocities' j, then r
    torch.randint(1, 3, (3,), generator=gen)
    r = torch.rand((3, 4), generator=gen).double()  # columns r_i, r_c, r_s, r_r; one row per particle
    coef = r * torch.tensor([w["inertia"], w["cognitive"], w["social"], w["repel"]], dtype=torch.float64)
    a = coef / coef.sum(1, keepdim=True)
    assert len({round(float(a[i, 0] / a[i, 1]), 9) for i in range(3)}) == 3  # inertia's share differs by particle
    x, v, p, g, gw = (t.double() for t in (x, v, p, X0[1], X0[2]))
    want_v = a[:, :1] * v + a[:, 1:2] * (p - x) + a[:, 2:3] * (g - x) + a[:, 3:] * (x - gw)
    torch.testing.assert_close(pso.v.double(), want_v, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(pso.x.double(), x + 0.7 * want_v, rtol=1e-6, atol=1e-6)


def test_step_length_decays_once_per_step_to_floor():
    x0 = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    pso = only("inertia", x0=x0, step_length=1.0, decay=0.5, floor=0.2)
    pso.tell(torch.arange(5.0))
    v = pso.v.clone()
    lengths, lam = [], 1.0
    for _ in range(4):
        before = pso.x.clone()
        pso.step()  # moves with the current λ, then decays it once
        torch.testing.assert_close(pso.x, before + lam * v)
        lam = pso.step_length
        lengths.append(lam)
        pso.tell(torch.zeros(5))
    assert lengths == [0.5, 0.25, 0.2, 0.2]


def test_restart_after_patience_with_cooldown():
    pso = make(restart_patience=2, restart_cooldown=1)
    pso.tell(torch.tensor([1.0, 1.0, 1.0]))
    restarts = []
    for k in range(1, 8):
        pso.step()
        restarts.append(pso.restarted.tolist())
        if pso.restarted[2]:
            assert torch.equal(pso.x[2], pso.p[2]) and torch.equal(pso.v[2], torch.zeros(2))
        pso.tell(torch.tensor([1.0 + k, 1.0 + k, 0.0]))  # particle 2 never improves
    # stall of particle 2 before step k is k-1: eligible from stall 2, then 1 step of cooldown.
    assert [r[2] for r in restarts] == [False, False, True, False, True, False, True]
    assert not any(r[0] or r[1] for r in restarts)

    no_cooldown = make(restart_patience=2, restart_cooldown=0)
    off = make(restart_patience=0)
    for pso in (no_cooldown, off):
        pso.tell(torch.ones(3))
        seen = []
        for k in range(1, 6):
            pso.step()
            seen.append(bool(pso.restarted[2]))
            pso.tell(torch.tensor([1.0 + k, 1.0 + k, 0.0]))
        assert seen == ([False, False, True, True, True] if pso is no_cooldown else [False] * 5)


def test_should_stop():
    pso = make(patience=2, max_steps=5)
    pso.tell(torch.tensor([1.0, 2.0, 0.0]))
    pso.tell(torch.tensor([0.0, 0.0, 0.0]))
    assert pso.should_stop() is None
    pso.tell(torch.tensor([0.0, 0.0, 3.0]))  # improvement resets patience
    pso.tell(torch.tensor([0.0, 0.0, 0.0]))
    assert pso.should_stop() is None
    pso.tell(torch.tensor([0.0, 0.0, 0.0]))
    assert pso.should_stop() == "patience"
    pso = make(max_steps=3)
    for k in range(3):
        assert pso.should_stop() is None
        pso.tell(torch.full((3,), float(k)))
    assert pso.should_stop() == "max_steps"


def _utility(x: torch.Tensor) -> torch.Tensor:
    return -(x - 0.3).pow(2).sum(1)


def _run(pso: PSO, steps: int) -> list[torch.Tensor]:
    traj = []
    for _ in range(steps):
        pso.step()
        pso.tell(_utility(pso.x))
        traj.append(pso.x.clone())
    return traj


def test_same_seed_same_trajectory():
    x0 = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    a, b, c = (make(x0=x0, seed=s, restart_patience=2, restart_cooldown=1) for s in (5, 5, 6))
    for pso in (a, b, c):
        pso.tell(_utility(pso.x))
    ta, tb, tc = _run(a, 10), _run(b, 10), _run(c, 10)
    assert all(torch.equal(u, w) for u, w in zip(ta, tb))
    assert not torch.equal(ta[-1], tc[-1])


def test_state_dict_resume_is_bit_exact():
    x0 = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    kw = dict(x0=x0, seed=7, decay=0.9, floor=0.3, restart_patience=2, restart_cooldown=1)
    orig = make(**kw)
    orig.tell(_utility(orig.x))
    _run(orig, 4)
    buf = io.BytesIO()
    torch.save(orig.state_dict(), buf)  # what a checkpoint does
    buf.seek(0)
    resumed = make(**{**kw, "x0": torch.zeros(6, 4), "seed": 99})
    resumed.load_state_dict(torch.load(buf))
    assert torch.equal(resumed.x, orig.x)
    for u, w in zip(_run(orig, 8), _run(resumed, 8)):
        assert torch.equal(u, w)
    for k in ("v", "p", "p_util", "g", "g_worst", "stall", "restarted"):
        assert torch.equal(getattr(orig, k), getattr(resumed, k)), k
    for k in ("g_util", "g_index", "worst_util", "initial_best", "step_length", "steps_done", "g_stall"):
        assert getattr(orig, k) == getattr(resumed, k), k


def test_global_best_is_the_best_personal_best():
    """g is never stored apart: after any sequence of tells it equals the best position ever told
    (no point is told twice here: restarts off, every particle moves)."""
    gen = torch.Generator().manual_seed(5)
    pso = make(x0=torch.randn(5, 3, generator=gen))
    best_u, best_x = -math.inf, None
    for _ in range(12):
        u = torch.randint(0, 4, (5,), generator=gen).double()  # many ties
        if u.max() > best_u:
            best_u, best_x = u.max().item(), pso.x[int(u.argmax())].clone()
        pso.tell(u)
        assert pso.g_util == best_u and torch.equal(pso.g, best_x)
        assert pso.p_util[pso.g_index].item() == best_u  # ties: the first particle to reach it
        pso.step()


_FUSED = [False, pytest.param(True, marks=pytest.mark.skipif(not velocity.compiler_available(), reason="no C++ compiler"))]


@pytest.mark.slow
@pytest.mark.parametrize("fused", _FUSED)
def test_step_updates_in_place_without_nd_allocations(fused):
    n, d = 4, 50_000
    pso = make(x0=torch.randn(n, d, generator=torch.Generator().manual_seed(0)), restart_patience=1, fused=fused)
    pso.tell(torch.arange(4.0))
    pso.step()  # a compiled update compiles here, outside the profile
    ptrs = [t.data_ptr() for t in (pso.x, pso.v, pso.p, pso.g, pso.g_worst)]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        pso.step()
    assert [t.data_ptr() for t in (pso.x, pso.v, pso.p, pso.g, pso.g_worst)] == ptrs
    biggest = max(e.self_cpu_memory_usage for e in prof.events())
    assert 0 < biggest < d * 4, f"step allocated {biggest} bytes at once"
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        _ = pso.x - pso.v  # positive control: the profiler does see an [n, d] temporary
    assert max(e.self_cpu_memory_usage for e in prof.events()) >= n * d * 4


def _sphere_ratio(n: int, d: int, seed: int, **kw) -> float:
    """Best sphere distance at the end / at the start, optimum inside the hull of x0."""
    gen = torch.Generator().manual_seed(seed)
    x0 = 3 * torch.randn(n, d, generator=gen)
    w = torch.rand(n, generator=gen)
    center = (w / w.sum()) @ x0
    pso = make(x0=x0, inertia=0.4, cognitive=0.3, social=0.3, decay=0.95, floor=0.1, patience=20, max_steps=200,
               restart_patience=5, restart_cooldown=3, seed=seed, **kw)
    while True:
        pso.tell(-(pso.x - center).pow(2).sum(1))
        if pso.should_stop():
            break
        pso.step()
    return pso.g_util / pso.initial_best


def test_optimizes_sphere():
    # Model-Swarms PSO contracts towards p and g with per-particle random
    # factors, so it stays in the affine span of x0 and converges early: it
    # reaches ~1e-2 in 5-D; in 20-D with 20 particles it gets to ~0.1.
    for seed in range(3):
        assert _sphere_ratio(20, 5, seed, repel=0.0) < 3e-2
        assert _sphere_ratio(20, 20, seed, repel=0.0) < 0.2
        assert _sphere_ratio(20, 20, seed, repel=0.3) < 0.5


def test_search_stays_in_affine_span_of_x0():
    x0 = torch.randn(4, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64).float()
    pso = make(x0=x0, restart_patience=2)
    pso.tell(_utility(pso.x))
    _run(pso, 10)
    basis = torch.linalg.qr((x0[1:] - x0[0]).double().T).Q  # [d, n-1]
    off = (pso.x.double() - x0[0].double()).T
    residual = off - basis @ (basis.T @ off)
    assert residual.abs().max() < 1e-4


@pytest.mark.slow
@pytest.mark.skipif(not velocity.compiler_available(), reason="torch.compile on CPU needs a C++ compiler")
def test_fused_update_matches_the_eager_update():
    """The compiled one-pass update and the six eager passes move the swarm the same way (to fp32 rounding)."""
    x0 = torch.randn(5, 300, generator=torch.Generator().manual_seed(2))
    fused, eager = make(x0=x0, fused=True, restart_patience=2), make(x0=x0, fused=False, restart_patience=2)
    for swarm in fused, eager:
        swarm.tell(_utility(swarm.x))
        _run(swarm, 6)
    for k in ("x", "v", "p", "g", "g_worst"):
        torch.testing.assert_close(getattr(fused, k), getattr(eager, k), rtol=1e-5, atol=1e-5, msg=k)
    assert fused.restarted.equal(eager.restarted) and fused.step_length == eager.step_length


def test_fused_auto_compiles_only_big_cpu_swarms():
    assert make(x0=torch.zeros(4, 1000)).fused is False
    assert make(x0=torch.zeros(4, 1000), fused=False).fused is False
    assert make(x0=torch.zeros(4, 1 << 20)).fused is velocity.compiler_available()
    assert make(x0=torch.zeros(4, 1000), fused=True).fused is True


def test_rescored_incumbent_keeps_g_and_g_util_one_pair():
    """Adversarial Swarms re-scores g on a moved objective; a particle that beats it now becomes g
    with *its current position*, not an older personal best that carried another utility."""
    pso = make()
    pso.tell(torch.tensor([1.0, 5.0, 0.0]))  # g = particle 1
    pso.step()
    x_now = pso.x.clone()
    assert not torch.equal(x_now[0], pso.p[0])
    pso.rescore_incumbent(0.2)  # the incumbent re-scored lower on the new objective
    assert pso.g_util == 0.2 and pso.p_util[1].item() == 0.2
    pso.tell(torch.tensor([0.5, 0.1, 0.0]))  # particle 0 beats 0.2 now, yet its personal best (1.0) is older
    assert pso.g_util == 0.5
    assert torch.equal(pso.g, x_now[0]), f"g {pso.g.tolist()} is not the position told 0.5 ({x_now[0].tolist()})"
    assert pso.p_util[pso.g_index].item() == pso.g_util


def test_rescored_incumbent_stays_g_unless_beaten_now():
    pso = make()
    pso.tell(torch.tensor([1.0, 5.0, 0.0]))
    g = pso.g.clone()
    pso.step()
    pso.rescore_incumbent(float("nan"))  # garbage is never best: any finite utility beats it
    assert pso.g_util == -math.inf
    pso.rescore_incumbent(0.7)
    pso.tell(torch.tensor([0.5, 0.6, 0.0]))  # nobody beats 0.7 now
    assert (pso.g_index, pso.g_util, pso.g_stall) == (1, 0.7, 1) and torch.equal(pso.g, g)


def test_rescore_before_any_tell_is_an_error():
    with pytest.raises(RuntimeError, match="no incumbent"):
        make().rescore_incumbent(1.0)
