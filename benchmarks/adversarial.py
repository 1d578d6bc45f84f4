"""Adversarial Swarms on the embedded task: does co-evolution give a stronger taker and harder data?

Usage: python benchmarks/adversarial.py [--seeds 0 1 2] [--steps 30] [--threads 1] [--out DIR] [OVERRIDE ...]

One Hydra sweep (`dswarm -m seed=...  adversarial=on`) on the default zoo,
one run dir per seed under --out (rerunning resumes). For each seed it prints
  - the test-set score of the initial best taker vs the adversarially trained taker (best/taker/),
  - both takers' scores on the final generated data (best/data.jsonl),
  - the difficulty (1 - best held-out taker's mean; held-out takers take part in
    neither swarm) of the initial best generator's data vs the final data,
then the means over seeds; the table also goes to DIR/table.md. Extra
OVERRIDEs (e.g. adversarial.pool_size=32) are passed to every run.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DSWARM = Path(sys.executable).parent / "dswarm"

COLUMNS = [
    ("seed", "seed"),
    ("steps", "steps"),
    ("taker", "initial taker"),
    ("test_init", "test: initial taker"),
    ("test_adv", "test: adversarial taker"),
    ("gen_init", "final data: initial taker"),
    ("gen_adv", "final data: adversarial taker"),
    ("diff_init", "difficulty: initial generator"),
    ("diff_adv", "difficulty: final data"),
]


def row_of(summary: dict) -> dict:
    adv = summary["adversarial"]
    return {
        "seed": summary["seed"], "steps": f"{summary['steps']} ({summary['stop_reason']})", "taker": adv["initial_taker"],
        "test_init": adv["test"]["initial_taker"], "test_adv": adv["test"]["best_taker"],
        "gen_init": adv["generated"]["initial_taker"], "gen_adv": adv["generated"]["best_taker"],
        "diff_init": adv["difficulty"]["initial_generator"], "diff_adv": adv["difficulty"]["best_generator"],
    }


def fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else ("n/a" if value is None else str(value))


def table(rows: list[dict]) -> str:
    numeric = [k for k, _ in COLUMNS if all(isinstance(r[k], float) for r in rows)]
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in numeric}
    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in [*rows, {"seed": "**mean**", **mean}]:
        lines.append("| " + " | ".join(fmt(r.get(k, "")) for k, _ in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=30, help="pso.max_steps (both swarms)")
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS: the zoo's tiny models run best on one")
    ap.add_argument("--out", type=Path, default=REPO / "outputs" / "benchmarks" / "adversarial")
    ap.add_argument("overrides", nargs="*", help="extra dswarm overrides for every run")
    args = ap.parse_args(argv)
    settings = [f"pso.max_steps={args.steps}", *args.overrides]
    sweep = args.out / re.sub(r"[^A-Za-z0-9_.-]+", "_", "_".join(settings).replace("=", "-"))  # Hydra-safe name
    cmd = [
        str(DSWARM), "-m", f"seed={','.join(map(str, args.seeds))}", "adversarial=on", "logger=none", "progress=false",
        *settings, f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=seed_${seed}",
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    print("$", " ".join(cmd), flush=True)
    started = time.time()
    subprocess.run(cmd, cwd=REPO, env=env, check=True)
    seconds = time.time() - started
    rows = [row_of(json.loads((sweep / f"seed_{s}" / "summary.json").read_text())) for s in args.seeds]
    text = table(rows)
    (sweep / "table.md").write_text(text + "\n")
    print(f"\nAdversarial Swarms, default zoo, {len(rows)} seeds, {' '.join(settings)} ({seconds:.0f} s)")
    print("test: mean judged score on the task's test set; final data: on best/data.jsonl;")
    print("difficulty: 1 - the best held-out taker's mean (held-out takers are in neither swarm)\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
