"""One PSO step over gemma-2-9b-sized LoRA particles: reference (disk) vs in-memory.

Usage: python benchmarks/pso_update.py [--particles 4] [--rank 16] [--reps 5]

(a) reference: like the public Model/Data Swarms `particle_update`, every
    particle, velocity, personal best, global best and global worst is an
    adapter safetensors file, and a particle's update is five `lora_merge`s
    (p−x, g−x, x−w, velocity, position), each loading its inputs, summing per
    key and saving its output (temp dir, warm page cache: a lower bound).
(b) this project: swarm.search.pso.PSO.step() as a run uses it (pso.fused=auto): on CPU
    with particles this big, one torch.compile'd pass over the [n, d] tensors,
    in place. Its one-time compile is timed and printed apart.
(c) the same step with pso.fused=false: six in-place passes over cache-sized
    blocks (what runs without a C++ compiler), printed for comparison.
The last line printed is `speedup: X.Yx` (median (a) / median (b)).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from generators.models.particles import flatten, spec_of
from swarm.search.pso import PSO

# gemma-2-9b attention: hidden 3584, 42 layers, q out 16×256, k/v out 8×256, o in 16×256.
HIDDEN, LAYERS, Q_OUT, KV_OUT = 3584, 42, 4096, 2048
PROJ = {"q_proj": (HIDDEN, Q_OUT), "k_proj": (HIDDEN, KV_OUT), "v_proj": (HIDDEN, KV_OUT), "o_proj": (Q_OUT, HIDDEN)}
W = dict(inertia=0.4, cognitive=0.3, social=0.3, repel=0.3)


def lora_shapes(rank: int) -> dict[str, tuple[int, int]]:
    """PEFT key -> shape: lora_A is [r, in], lora_B is [out, r]."""
    shapes = {}
    for layer in range(LAYERS):
        for proj, (fan_in, fan_out) in PROJ.items():
            key = f"base_model.model.model.layers.{layer}.self_attn.{proj}"
            shapes[f"{key}.lora_A.weight"] = (rank, fan_in)
            shapes[f"{key}.lora_B.weight"] = (fan_out, rank)
    return shapes


def random_adapter(shapes: dict[str, tuple[int, int]], gen: torch.Generator) -> dict[str, torch.Tensor]:
    return {k: 0.01 * torch.randn(s, generator=gen) for k, s in shapes.items()}


def lora_merge(weights: list[float], inputs: list[Path], output: Path) -> None:
    """The reference's merge with fast_merge=1: load each adapter file, weighted sum per key, save."""
    adapters = [load_file(path) for path in inputs]
    merged = {k: sum(w * ad[k] for w, ad in zip(weights, adapters)) for k in adapters[0]}
    save_file(merged, output)


def reference_step(root: Path, n: int, step_length: float, rng: random.Random) -> None:
    """The reference's particle_update: five adapter merges through disk per particle."""
    g_best, g_worst = root / "global_best.safetensors", root / "global_worst.safetensors"
    for i in range(n):
        now, best, vel = (root / f"{kind}_{i}.safetensors" for kind in ("now", "personal_best", "velocity"))
        p_x, g_x, x_w = (root / f"{kind}_{i}.safetensors" for kind in ("p_x", "g_x", "x_w"))
        r_c, r_s, r_r = rng.random(), rng.random(), rng.random()
        a = [W["inertia"], r_c * W["cognitive"], r_s * W["social"], r_r * W["repel"]]
        a = [w / sum(a) for w in a]
        lora_merge([1, -1], [best, now], p_x)
        lora_merge([1, -1], [g_best, now], g_x)
        lora_merge([-1, 1], [g_worst, now], x_w)
        lora_merge(a, [vel, p_x, g_x, x_w], vel)
        lora_merge([1, step_length], [now, vel], now)


def interleaved_medians(fns: dict[str, Callable[[], None]], reps: int) -> dict[str, float]:
    """Median seconds of each fn, alternating them so both see the same machine load."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--particles", type=int, default=4)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    n = args.particles
    gen = torch.Generator().manual_seed(0)
    shapes = lora_shapes(args.rank)
    adapters = [random_adapter(shapes, gen) for _ in range(n)]
    spec = spec_of(adapters[0])
    print(f"gemma-2-9b attention LoRA r={args.rank}: {len(spec.names)} tensors, "
          f"{spec.numel:,} params per particle ({spec.numel * 4 / 2**20:.1f} MiB fp32), {n} particles, "
          f"{torch.get_num_threads()} threads")

    x0 = torch.stack([flatten(ad, spec) for ad in adapters])
    swarms = {}
    for fused in ("auto", False):
        swarms[fused] = PSO(x0, **W, step_length=1.0, decay=0.95, floor=0.1, patience=10, max_steps=100,
                            restart_patience=0, restart_cooldown=0, seed=0, fused=fused)
        swarms[fused].tell(torch.arange(n, dtype=torch.float32))
    del x0
    pso, eager = swarms["auto"], swarms[False]
    t0 = time.perf_counter()
    pso.step()  # compiles, when fused
    compile_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i, ad in enumerate(adapters):
            save_file(ad, root / f"now_{i}.safetensors")
            save_file(random_adapter(shapes, gen), root / f"velocity_{i}.safetensors")
            save_file(ad, root / f"personal_best_{i}.safetensors")
        save_file(adapters[0], root / "global_best.safetensors")
        save_file(adapters[-1], root / "global_worst.safetensors")
        del adapters
        rng = random.Random(0)
        fns = {"reference": lambda: reference_step(root, n, 1.0, rng), "pso": pso.step, "eager": eager.step}
        for fn in fns.values():
            fn()  # warm-up
        t = interleaved_medians(fns, args.reps)

    print(f"(a) reference, 5 safetensors merges per particle: {t['reference'] * 1e3:9.1f} ms/step")
    how = "one compiled pass" if pso.fused else "eager: no C++ compiler found"
    print(f"(b) PSO.step in place, {how + ':':28s} {t['pso'] * 1e3:9.1f} ms/step "
          f"(first step, with its compile: {compile_s:.1f} s, once per run)")
    print(f"(c) PSO.step, pso.fused=false, six blocked passes: {t['eager'] * 1e3:9.1f} ms/step "
          f"({t['reference'] / t['eager']:.1f}x the reference)")
    print(f"(medians of {args.reps} interleaved repetitions)")
    print(f"speedup: {t['reference'] / t['pso']:.1f}x")


if __name__ == "__main__":
    main()
