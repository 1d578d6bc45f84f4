"""Usage: python benchmarks/step_profile.py [--threads 1] [dswarm overrides ...]

Where a swarm step's time goes, and the peak memory of a default run.

One child process runs the real `dswarm` CLI with the `make run` config (the
default zoo, objective=difficulty, 10 steps, W&B offline) plus any overrides
given here, with timers wrapped around the model's `generate` (every forward
pass of the generators and the takers, with tokenizing and decoding) and the
judge's `score`. Everything else inside the search loop is the swarm's own
overhead: adapter swaps, item parsing, realism (BM25), objectives, PSO,
metrics/W&B logging, data files, the checkpoint. Target: <= 2 % of a step.
The step's data file and checkpoint are written on a background thread while
the next step generates; that thread's time is printed apart (it overlaps the
step, so it is not part of the share, but it is not hidden either).

--threads sets OMP_NUM_THREADS for the run (0: torch's default, one per
core). The default, 1, is the fastest setting for the zoo's small model on a
busy 2-core machine, so generate is at its fastest and the overhead's share
at its largest: the strict measurement.

The same child's peak RSS (os.wait4) and the peak summed RSS of its process
tree (W&B's service included, sampled every 0.1 s) are printed against the
2 GiB target. The zoo is built first, outside the measured process.
The last line is `overhead: X.Y%`.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_OVERHEAD = 2.0
TARGET_RSS_MIB = 2048


# ----------------------------------------------------------------------------- child: the timed run

def _child(out: Path, overrides: list[str]) -> None:
    """Run `dswarm overrides` in this process with timers on; write the totals to ``out``."""
    from generators.models.decoding import Decoding
    from generators.models.lora_model import LoraModel
    from objectives.realism import Realism
    from swarm import build as build_mod
    from swarm import run as run_mod
    from swarm.runtime.files import OrderedWriter
    from swarm.search.evaluate import Evaluator
    from swarm.search.pso import PSO

    totals: dict[str, float] = defaultdict(float)
    background = [0.0]  # seconds the writer thread spent writing
    active = [False]  # inside the search loop

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            if not active[0]:
                return fn(*args, **kwargs)
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[name] += time.perf_counter() - t
        return wrapper

    for cls, attr, name in [
        (Decoding, "run", "generate"),  # every batch of either path (one adapter or multi-LoRA)
        (LoraModel, "load", "adapter load"),
        (Realism, "score", "realism (BM25)"),
        (Evaluator, "combine", "objectives"),
        (PSO, "tell", "PSO"),
        (PSO, "step", "PSO"),
        (run_mod.RunContext, "record", "record (metrics, W&B, data files)"),
        (run_mod.RunContext, "save", "checkpoint"),
    ]:
        setattr(cls, attr, timed(name, getattr(cls, attr)))
    try:
        from transformers.models.llama.modeling_llama import LlamaForCausalLM

        LlamaForCausalLM.forward = timed("  model forward", LlamaForCausalLM.forward)
    except ImportError:
        pass

    class TimedJudge:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def score(self, items, answers):
            return timed("judge", self.inner.score)(items, answers)

    submit = OrderedWriter.submit

    def timed_submit(self, fn, *args):
        def job(*a):
            t = time.perf_counter()
            try:
                return fn(*a)
            finally:
                background[0] += time.perf_counter() - t
        return submit(self, job, *args)

    OrderedWriter.submit = timed_submit

    build_judge = build_mod.build_judge
    build_mod.build_judge = lambda *a, **k: TimedJudge(build_judge(*a, **k))

    search = run_mod.data_swarms
    steps = [0]

    def timed_search(ctx):
        active[0] = True
        t = time.perf_counter()
        try:
            result = search(ctx)
            steps[0] = result.steps
            return result
        finally:
            totals["step total"] += time.perf_counter() - t
            active[0] = False

    run_mod.data_swarms = timed_search
    from swarm import cli

    sys.argv = ["dswarm", *overrides]
    try:
        cli.main()
    finally:
        out.write_text(json.dumps({"totals": totals, "steps": steps[0], "background": background[0]}))


# ----------------------------------------------------------------------------- parent

def _tree_rss(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for the run (0: torch's default)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args, overrides = parser.parse_known_args()
    if args.child:
        return _child(args.child, overrides)

    from omegaconf import OmegaConf

    from generators.zoo import build_zoo

    size = next((o.split("=", 1)[1] for o in overrides if o.startswith("zoo.size=")), "default")
    zoo_cfg = OmegaConf.load(REPO / "conf" / "config.yaml").zoo
    build_zoo(size, seed=zoo_cfg.seed)  # cached; built here so the measured run only loads it

    tmp = Path(tempfile.mkdtemp(prefix="step_profile-"))
    out = tmp / "timings.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    cmd = [sys.executable, __file__, "--child", str(out), *overrides, f"hydra.run.dir={tmp / 'run'}"]
    threads = args.threads or "torch default"
    print(f"run: dswarm {' '.join(overrides)} (threads: {threads}; run dir {tmp / 'run'}, removed after)", flush=True)
    started = time.perf_counter()
    with open(tmp / "dswarm.out", "w") as log:
        import subprocess

        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
        peak_tree = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak_tree[0] = max(peak_tree[0], _tree_rss(proc.pid))
                done.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"dswarm exited {proc.returncode}; see {tmp / 'dswarm.out'}")

    data = json.loads(out.read_text())
    shutil.rmtree(tmp, ignore_errors=True)
    t, steps = data["totals"], data["steps"]
    total = t.pop("step total")
    forward = t.pop("  model forward", None)
    inside = t.get("generate", 0.0) + t.get("judge", 0.0)
    print(f"search: {steps} steps, {total:.1f} s ({total / max(steps, 1):.2f} s/step); whole run {wall:.1f} s")
    print(f"  {'part of the step':36s} {'seconds':>8s} {'share':>7s}")
    for name, secs in sorted(t.items(), key=lambda kv: -kv[1]):
        print(f"  {name:36s} {secs:8.2f} {100 * secs / total:6.2f}%")
        if name == "generate" and forward is not None:
            print(f"  {'  of which model forward':36s} {forward:8.2f} {100 * forward / total:6.2f}%")
    other = total - sum(t.values())
    print(f"  {'other (prompts, parsing, gather, ...)':36s} {other:8.2f} {100 * other / total:6.2f}%")
    print(f"  {'(writer thread, overlapping the step)':36s} {data['background']:8.2f} "
          f"({1e3 * data['background'] / max(steps, 1):.1f} ms a step, not in the share)")
    overhead = 100 * (total - inside) / total
    print(f"overhead outside generate+judge: {overhead:.1f}% of the step (target <= {TARGET_OVERHEAD:.0f}%)")
    rss = usage.ru_maxrss / 1024  # KiB on Linux
    verdict = "OK" if max(rss, peak_tree[0] / 2**20) <= TARGET_RSS_MIB else "OVER"
    print(f"peak RSS: dswarm {rss:.0f} MiB, process tree (W&B service included) {peak_tree[0] / 2**20:.0f} MiB; "
          f"target {TARGET_RSS_MIB} MiB: {verdict}")
    print(f"overhead: {overhead:.1f}%")


if __name__ == "__main__":
    main()
