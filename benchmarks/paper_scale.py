"""Usage: python benchmarks/paper_scale.py [--particles 4,10,20] [--items 200] [--steps 2] [--reps 1]
                                          [--out DIR] [dswarm overrides ...]

The swarm step at the paper's budget (issue 33): the default zoo run (`make
run`'s config, logger=none) with `--items` items per generator a step
(generator.prompts_per_step = items / generator.items_per_prompt) and N
particles (pso.n_particles=N: the 4 experts, then seeded mixes of two), every
N side by side in one invocation. Runs are real `dswarm` processes,
interleaved (rep 1: N=4, 10, 20; rep 2: ...) so load from other users hits
every N alike; the load average at each run's start is printed.

Step time = metrics.jsonl `seconds` (the main process's wall time of a step);
step 1 is warm-up and not counted, so --steps is at least 2. Per N the
median step over every rep, its phases (time/generate, time/answer,
time/judge), seconds per particle, and the ratio to the smallest N; the last
line is the step-time ratio of the largest N to the smallest. The export, the
fresh selection and the novelty reference are shrunk since they are not timed.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
FIXED = ["logger=none", "progress=false", "threads=1", "export.n_items=5", "select.n_items=5",
         "objective.novelty_items=20", "taker.heldout=[h1]", "pso.patience=1000"]
PHASES = ("generate", "answer", "judge")


def _ints(text: str) -> list[int]:
    """'4,10,20' -> [4, 10, 20]."""
    return [int(v) for v in text.split(",") if v]


def run(n: int, prompts: int, steps: int, run_dir: Path, overrides: list[str]) -> list[dict]:
    """One dswarm run with ``n`` particles; its metrics rows after the warm-up step."""
    cmd = [str(BIN / "dswarm"), *FIXED, f"pso.n_particles={n}", f"pso.max_steps={steps}",
           f"generator.prompts_per_step={prompts}", *overrides, f"hydra.run.dir={run_dir}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode != 0:
        sys.exit(f"paper_scale: {' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return rows[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", default="4,10,20", help="the swarm sizes N, side by side")
    parser.add_argument("--items", type=int, default=200, help="items per generator per step (the paper: 200)")
    parser.add_argument("--steps", type=int, default=2, help="steps per run; the first is warm-up")
    parser.add_argument("--reps", type=int, default=1, help="runs of each N, interleaved")
    parser.add_argument("--out", type=Path, help="keep the run dirs here (default: a temporary dir)")
    args, overrides = parser.parse_known_args()
    sizes = _ints(args.particles)
    if args.steps < 2 or not sizes or min(sizes) < 4:
        sys.exit("paper_scale: --steps must be >= 2 and every N >= 4 (the zoo's 4 experts)")
    from swarm.config import compose

    cfg = compose(overrides)
    prompts = math.ceil(args.items / cfg.generator.items_per_prompt)
    rows: dict[int, list[dict]] = {n: [] for n in sizes}
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        print(f"{cfg.zoo.size} zoo, {args.items} items per generator per step, N = {sizes}, {args.steps} steps "
              f"(first one warm-up), {args.reps} rep(s), overrides {overrides or 'none'}")
        for rep in range(args.reps):
            for n in sizes:
                load = os.getloadavg()[0]
                started = time.time()
                got = run(n, prompts, args.steps, out / f"rep{rep}_n{n}", overrides)
                rows[n] += got
                print(f"  rep {rep + 1} N={n:3d}: steps {[round(r['seconds'], 1) for r in got]} s "
                      f"(run {time.time() - started:.0f} s, load {load:.1f} at start)", flush=True)
    base = statistics.median(r["seconds"] for r in rows[sizes[0]])
    print(f"\n| N | step (s) | generate | answer | judge | s per particle | step vs N={sizes[0]} |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n in sizes:
        step = statistics.median(r["seconds"] for r in rows[n])
        phases = [statistics.median(r.get(f"time/{p}", 0.0) for r in rows[n]) for p in PHASES]
        print(f"| {n} | {step:.1f} | " + " | ".join(f"{p:.1f}" for p in phases)
              + f" | {step / n:.2f} | {step / base:.2f}x |")
    last = statistics.median(r["seconds"] for r in rows[sizes[-1]])
    print(f"\nstep time N={sizes[-1]} / N={sizes[0]}: {last / base:.2f}x for {sizes[-1] / sizes[0]:.1f}x the particles")


if __name__ == "__main__":
    main()
