"""Usage: python benchmarks/long_inputs.py [--chars 1500] [--out DIR] [dswarm overrides ...]

Peak memory of the SmolLM2 CPU miniature on a task of long inputs, phase by phase.

TruthfulQA's questions are short (at most ~300 characters); real evaluation
tasks (reading comprehension, long word problems) are not. This builds such a
task from /work/shared/data/truthfulqa.json (or --source): each question is
prefixed with other questions of the file as "Context:" until it is about
``--chars`` characters long, its answer kept. It then runs the real `dswarm`
on it, ``+experiment=mini_truthfulqa task.path=<that task> threads=1``, with a
fresh cache for the trained experts (the converted SmolLM2 base is reused), so
the experts' training is measured too.

The run's process is sampled every 0.2 s (RSS of the process tree) and each
sample is tagged with the phase the run's log says it is in: loading, training
the generator / taker / held-out experts, step N, export. Printed: the peak
RSS of every phase, the whole run's peak (also os.wait4's ru_maxrss), the
wall time, and the run's exit status and last stderr line. Target: <= 4 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from process_memory import tree_rss  # benchmarks/, this script's folder

from generators.models.cache import default_cache_dir

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "data" / "truthfulqa.json"  # ../shared beside the repo
TARGET_GB = 4.0

PHASES = [  # (pattern in the log, phase name); the last match so far is the current phase
    (re.compile(r"training \d+ generator experts"), "train generator experts"),
    (re.compile(r"training \d+ taker experts"), "train taker experts"),
    (re.compile(r"training \d+ heldout experts"), "train held-out experts"),
    (re.compile(r"\] - step (\d+) "), "after step {0}"),
    (re.compile(r"run dir: "), "load models"),
]


def long_task(source: Path, out: Path, chars: int, seed: int = 0) -> dict:
    """``source``'s items, each question behind a context of other questions: about ``chars`` characters."""
    data = json.loads(source.read_text(encoding="utf-8-sig"))
    pool = [row["input"] for split in ("dev", "test") for row in data[split]]
    rng = random.Random(seed)

    def padded(question: str) -> str:
        context = []
        while len(question) + sum(len(c) + 1 for c in context) + 20 < chars:
            context.append(rng.choice(pool))
        return f"Context: {' '.join(context)} Question: {question}"

    task = {"name": f"{data.get('name', source.stem)}_long{chars}"}
    for split in ("dev", "test"):
        task[split] = [{"input": padded(row["input"]), "output": row.get("output")} for row in data[split]]
    out.write_text(json.dumps(task))
    return task


def phase_of(console: Path) -> str:
    """The run's phase from its console output so far (the last phase line in it)."""
    current = "start"
    for line in console.read_text(errors="replace").splitlines():
        for pattern, name in PHASES:
            if m := pattern.search(line):
                current = name.format(*m.groups())
    return current


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[2])
    parser.add_argument("--chars", type=int, default=1500, help="characters of each padded input")
    parser.add_argument("--source", type=Path, default=SOURCE, help="a task file in the reference JSON format")
    parser.add_argument("--out", type=Path, default=None, help="keep the task, run dir and log here (default: a temp dir)")
    parser.add_argument("--kill-above", type=float, default=16.0, help="GB of RSS at which the run is killed (a shared machine)")
    parser.add_argument("overrides", nargs="*", help="extra dswarm overrides")
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="dswarm-long-"))
    work.mkdir(parents=True, exist_ok=True)
    task_path = work / "long_task.json"
    task = long_task(args.source, task_path, args.chars)
    lengths = sorted(len(r["input"]) for r in task["dev"])
    print(f"task: {task_path}: {len(task['dev'])} dev items, input chars median {lengths[len(lengths) // 2]}, max {lengths[-1]}")

    shared = default_cache_dir()
    cache = work / "cache"  # fresh experts; the converted base is shared
    (cache / "smollm2").mkdir(parents=True, exist_ok=True)
    base = shared / "smollm2" / "base-v1"
    if base.is_dir() and not (cache / "smollm2" / "base-v1").exists():
        (cache / "smollm2" / "base-v1").symlink_to(base)
    run_dir = work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [str(Path(sys.executable).parent / "dswarm"), "+experiment=mini_truthfulqa", f"task.path={task_path}",
           "threads=1", f"hydra.run.dir={run_dir}", *args.overrides]
    env = {**os.environ, "DSWARM_CACHE": str(cache), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    print("$", " ".join(cmd))
    peaks: dict[str, int] = {}
    started = time.monotonic()
    stdout, stderr = work / "stdout.txt", work / "stderr.txt"
    with open(stdout, "w") as out, open(stderr, "w") as err:  # the console: print()s and the run's log lines
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=err, text=True)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            phase = phase_of(stdout)
            rss = tree_rss(proc.pid)
            peaks[phase] = max(peaks.get(phase, 0), rss)
            if rss > args.kill_above * 1e9:
                print(f"killed: {rss / 1e9:.1f} GB RSS in phase {phase!r} (above --kill-above {args.kill_above:g})")
                proc.kill()
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    stop.set()
    sampler.join()
    wall = time.monotonic() - started
    print(f"{'phase':<28} peak RSS")
    for phase, rss in peaks.items():
        print(f"{phase:<28} {rss / 2**30:6.2f} GiB")
    peak = max(peaks.values(), default=0)
    last = (stderr.read_text().strip().splitlines() or ["(no stderr)"])[-1]
    code = os.waitstatus_to_exitcode(status)
    print(f"ru_maxrss of the run's process: {usage.ru_maxrss / 2**20:.2f} GiB")
    print(f"exit {code}; wall {wall / 60:.1f} min; peak RSS {peak / 2**30:.2f} GiB "
          f"({peak / 1e9:.2f} GB; target <= {TARGET_GB:g} GB); last stderr line: {last}")
    print(f"run dir: {run_dir}")
    return code


if __name__ == "__main__":
    sys.exit(main())
