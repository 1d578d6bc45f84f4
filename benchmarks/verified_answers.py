"""Usage: python benchmarks/verified_answers.py [--task ../shared/data/truthfulqa.json] [--steps 3] [overrides ...]

What answer verification does to a real-model run: the same SmolLM2 miniature
(conf/experiment/mini_gsm8k.yaml on TruthfulQA: judge=reference, so a taker is right when it
matches the item's own answer) with verifier=none, verifier=openai against the loopback
stand-in of tools/judge_server.py (it knows no answers: its verdicts are a hash of the
prompt, so it shows the mechanics, not a real endpoint's rate), and verifier=model
(3 SmolLM2 samples per item). Prints per step and particle valid/format, valid/answer
and difficulty, from each run's metrics.jsonl.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tools.judge_server import JudgeServer, verifier_overrides  # noqa: E402

KEY_ENV = "DSWARM_BENCH_VERIFIER_KEY"


def run(name: str, overrides: list[str], out: Path) -> list[dict]:
    cmd = [str(Path(sys.executable).parent / "dswarm"), *overrides, f"hydra.run.dir={out / name}"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    return [json.loads(line) for line in (out / name / "metrics.jsonl").read_text().splitlines()]


def fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default=str(REPO.parent / "shared" / "data" / "truthfulqa.json"))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--out", default=None, help="run dirs (default: a temp dir)")
    parser.add_argument("overrides", nargs="*", help="extra dswarm overrides for every run")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="verified-"))
    common = ["+experiment=mini_gsm8k", f"task.path={Path(args.task).resolve()}",
              f"pso.max_steps={args.steps}", *args.overrides]
    os.environ[KEY_ENV] = "sk-loopback"
    with JudgeServer(key="sk-loopback") as server:
        variants = {
            "none": ["verifier=none"],
            "openai-stand-in": verifier_overrides(server, KEY_ENV),
            "model": ["verifier=model"],
        }
        print(f"dswarm {' '.join(common)} verifier=...   (run dirs under {out})")
        for name, extra in variants.items():
            for row in run(name, [*common, *extra], out):
                print(f"verifier={name:16s} step {row['step']}  valid/format {fmt(row['valid/format'])}  "
                      f"valid/answer {fmt(row['valid/answer'])}  difficulty {fmt(row['objective/difficulty'])}  "
                      f"defeat_all {fmt(row['items/defeat_all'])}", flush=True)


if __name__ == "__main__":
    main()
