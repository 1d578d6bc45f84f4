"""Usage: python benchmarks/scaling.py [--steps 4] [--reps 3] [--procs 2] [dswarm overrides ...]

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="swarm steps per run (the first is warm-up)")
    parser.add_argument("--reps", type=int, default=3, help="runs of each configuration, interleaved")
    parser.add_argument("--procs", type=int, default=2)
    args, overrides = parser.parse_known_args()

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
