"""Usage: python benchmarks/step_profile.py [--threads 1] [--reps 3] [--baseline DIR] [--search-only] [dswarm overrides ...]

Where a swarm step's time goes, and the peak memory of a default run.

One child process runs the real `dswarm` CLI with the `make run` config (the
default zoo, objective=difficulty, 10 steps, W&B offline) plus any overrides
given here, with timers wrapped around the model's generation (every decoded
batch of the generators and the takers: `Decoding.run`, and the tokenizing of
their prompts: `LoraModel._encode`) and the judge's `score`. Everything else
inside the search loop is the swarm's own bookkeeping: adapter swaps, item
parsing, realism (BM25), objectives, PSO, metrics and the hand-off to W&B's process, data files,
the checkpoint, progress bars. Target: <= 2 % of a step. The share without
counting tokenizing as generation is printed too. The step's data file,
metrics line, W&B hand-off and checkpoint are written on a background thread
while the next step generates (the step itself builds their contents and
copies the checkpoint's tensors: "record" and "checkpoint" above);
that thread's time is printed apart (it overlaps the step, so it is not part
of the share, but it is not hidden either). So is what it costs the step:
the writer's Python (and W&B's feeder thread's) holds the GIL the decode loop
needs between its ops, and the main thread waits inside `generate`; that
wait (wall minus the main thread's CPU time, which also counts the core being
given to another process) is printed, not moved out of `generate`.

--threads sets OMP_NUM_THREADS for the run (0: torch's default, one per
core). The default, 1, is the fastest setting for the zoo's small model on a
busy 2-core machine, so generate is at its fastest and the overhead's share
at its largest: the strict measurement.

--baseline DIR runs the same profile, alternating with this checkout's
(--reps times each), on the code in DIR (e.g. `git archive main | tar -x -C DIR`),
so a before/after pair shares the machine's load; each figure is printed
with the 1-minute load average at its end. --search-only stops each run after
the search (the step's figures, without the final held-out evaluation and
its memory peak).

The same child's peak RSS (os.wait4) and the peak summed RSS of its process
tree (W&B's process and service included, sampled every 0.1 s) are printed against the
2 GiB target. The zoo is built first, outside the measured process.
The last line is `overhead: X.Y%` (this checkout's median over --reps, 3 by
default: on the 2-core VM one run's share moves by about 0.1 point from run to
run, and by as much again from one batch of runs to the next with the host's
load, the same code measuring 1.99 % or 2.12 %; compare codes with --baseline).
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from process_memory import tree_rss  # benchmarks/, this script's folder

REPO = Path(__file__).resolve().parents[1]
TARGET_OVERHEAD = 2.0
TARGET_RSS_MIB = 2048


# ----------------------------------------------------------------------------- child: the timed run

def _child(out: Path, overrides: list[str], search_only: bool) -> None:
    """Run `dswarm overrides` in this process with timers on; write the totals to ``out``."""
    from generators.models.decoding import Decoding
    from generators.models.lora_model import LoraModel
    from objectives.realism import Realism
    from swarm import build as build_mod
    from swarm import run as run_mod
    from swarm.runtime.files import OrderedWriter
    from swarm.search.evaluate import Evaluator
    from swarm.search.methods import data_swarms as method_mod
    from swarm.search.pso import PSO

    totals: dict[str, float] = defaultdict(float)
    background = [0.0]  # seconds the writer thread spent writing
    waiting = [0.0]  # seconds the main thread spent inside generate without running (wall - its CPU time)
    active = [False]  # inside the search loop

    def timed(name, fn):
        @functools.wraps(fn)  # the model's forward keeps its signature: decoding reads it (logits_to_keep)
        def wrapper(*args, **kwargs):
            if not active[0]:
                return fn(*args, **kwargs)
            t, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                wall = time.perf_counter() - t
                totals[name] += wall
                if name == "generate":
                    waiting[0] += wall - (time.thread_time() - cpu)
        return wrapper

    for cls, attr, name in [
        (Decoding, "run", "generate"),  # every batch of either path (one adapter or multi-LoRA)
        (LoraModel, "_encode", "tokenize prompts"),
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

    def in_background(fn):
        def job(*a):
            t = time.perf_counter()
            try:
                return fn(*a)
            finally:
                background[0] += time.perf_counter() - t
        return job

    for name in ("submit", "defer"):  # the checkpoint, and the step's files, metrics line and W&B hand-off
        queue = getattr(OrderedWriter, name)
        setattr(OrderedWriter, name, lambda self, fn, *args, queue=queue: queue(self, in_background(fn), *args))

    build_judge = build_mod.build_judge
    build_mod.build_judge = lambda *a, **k: TimedJudge(build_judge(*a, **k))

    search = method_mod.data_swarms  # method._target_ is looked up when the run starts
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

    method_mod.data_swarms = timed_search
    if search_only:  # the summary keys the CLI's last log line reads; no export, no held-out evaluation
        run_mod.finalize = lambda ctx, result, *_: {
            "best_utility": result.best_utility, "initial_best": result.initial_best, "steps": result.steps,
            "stop_reason": result.stop_reason, "heldout": {"utility": float("nan")}}
    from swarm import cli

    sys.argv = ["dswarm", *overrides]
    try:
        cli.main()
    finally:
        out.write_text(json.dumps({"totals": totals, "steps": steps[0], "background": background[0], "waiting": waiting[0]}))


# ----------------------------------------------------------------------------- parent

def profile(code: Path, overrides: list[str], threads: int, search_only: bool) -> dict:
    """One timed `dswarm` run with the code in ``code``: its step totals, wall time, peak RSS and load average."""
    import subprocess

    tmp = Path(tempfile.mkdtemp(prefix="step_profile-"))
    out = tmp / "timings.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"),
           "PYTHONPATH": os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")])}  # its packages first
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    only = ["--search-only", "sweep.metric=best_utility"] if search_only else []  # no held-out figures to return
    cmd = [sys.executable, __file__, "--child", str(out), *only, *overrides, f"hydra.run.dir={tmp / 'run'}"]
    started = time.perf_counter()
    with open(tmp / "dswarm.out", "w") as log:
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
        peak_tree = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak_tree[0] = max(peak_tree[0], tree_rss(proc.pid))
                done.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
        sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"dswarm ({code}) exited {os.waitstatus_to_exitcode(status)}; see {tmp / 'dswarm.out'}")
    data = json.loads(out.read_text())
    shutil.rmtree(tmp, ignore_errors=True)
    return {**data, "wall": time.perf_counter() - started, "rss_mib": usage.ru_maxrss / 1024,  # KiB on Linux
            "tree_mib": peak_tree[0] / 2**20, "load": os.getloadavg()[0]}


def report(label: str, run: dict, search_only: bool) -> tuple[float, float]:
    """Print one run's breakdown; return its overhead share and the share without tokenizing counted as generation."""
    t, steps = dict(run["totals"]), run["steps"]
    total = t.pop("step total")
    forward = t.pop("  model forward", None)
    model = t.get("generate", 0.0) + t.get("tokenize prompts", 0.0)
    print(f"{label}: {steps} steps, {total:.1f} s ({total / max(steps, 1):.2f} s/step); whole run {run['wall']:.1f} s; "
          f"load average {run['load']:.1f}")
    print(f"  {'part of the step':36s} {'seconds':>8s} {'share':>7s}")
    for name, secs in sorted(t.items(), key=lambda kv: -kv[1]):
        print(f"  {name:36s} {secs:8.2f} {100 * secs / total:6.2f}%")
        if name == "generate" and forward is not None:
            print(f"  {'  of which model forward':36s} {forward:8.2f} {100 * forward / total:6.2f}%")
    other = total - sum(t.values())
    print(f"  {'other (prompts, parsing, gather, ...)':36s} {other:8.2f} {100 * other / total:6.2f}%")
    print(f"  {'(writer thread, overlapping the step)':36s} {run['background']:8.2f} "
          f"({1e3 * run['background'] / max(steps, 1):.1f} ms a step, not in the share)")
    print(f"  {'(generate: the main thread waiting)':36s} {run['waiting']:8.2f} "
          f"({1e3 * run['waiting'] / max(steps, 1):.1f} ms a step of generate's wall time off the CPU: the GIL "
          f"held by the writer's or W&B's thread, or the core lent to another process)")
    overhead = 100 * (total - model - t.get("judge", 0.0)) / total
    strict = overhead + 100 * t.get("tokenize prompts", 0.0) / total
    per_step_ms = 1e3 * total * overhead / 100 / max(steps, 1)  # the share moves with generate's speed; this does not
    print(f"  overhead outside generation (tokenize + decode) and judge: {overhead:.1f}% of the step, "
          f"{per_step_ms:.1f} ms a step (target <= {TARGET_OVERHEAD:.0f}%); counting tokenizing as overhead: {strict:.1f}%")
    if not search_only:
        verdict = "OK" if max(run["rss_mib"], run["tree_mib"]) <= TARGET_RSS_MIB else "OVER"
        print(f"  peak RSS: dswarm {run['rss_mib']:.0f} MiB, process tree (W&B's processes included) {run['tree_mib']:.0f} MiB; "
              f"target {TARGET_RSS_MIB} MiB: {verdict}")
    return overhead, strict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS for the run (0: torch's default)")
    parser.add_argument("--reps", type=int, default=3, help="runs of each code, alternating (the median is the figure: one "
                        "run's share moves by about 0.1 point from run to run on a 2-core VM)")
    parser.add_argument("--baseline", type=Path, help="another checkout's code, profiled alternately with this one")
    parser.add_argument("--search-only", action="store_true", help="stop each run after the search")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args, overrides = parser.parse_known_args()
    if args.child:
        return _child(args.child, overrides, args.search_only)
    if args.baseline is not None and not (args.baseline / "swarm" / "run.py").is_file():
        sys.exit(f"--baseline: {args.baseline} holds no checkout of this project (no swarm/run.py)")
    if args.reps < 1:
        sys.exit(f"--reps: must be >= 1, got {args.reps}")

    from omegaconf import OmegaConf

    from generators.zoo import build_zoo

    size = next((o.split("=", 1)[1] for o in overrides if o.startswith("zoo.size=")), "default")
    zoo_cfg = OmegaConf.load(REPO / "conf" / "config.yaml").zoo
    build_zoo(size, seed=zoo_cfg.seed)  # cached; built here so the measured run only loads it

    codes = [("this checkout", REPO)] + ([(f"baseline {args.baseline}", args.baseline.resolve())] if args.baseline else [])
    print(f"run: dswarm {' '.join(overrides)} (threads: {args.threads or 'torch default'}; "
          f"{args.reps} run(s) of each, alternating{'; search only' if args.search_only else ''})", flush=True)
    shares: dict[str, list[tuple[float, float, float]]] = {label: [] for label, _ in codes}
    for rep in range(args.reps):
        for label, code in codes:
            run = profile(code, overrides, args.threads, args.search_only)
            shares[label].append((*report(f"[{rep + 1}] {label}", run, args.search_only), run["load"]))
    print("overhead share of a step, each run (load average at its end):")
    for label, got in shares.items():
        runs = ", ".join(f"{o:.1f}% ({strict:.1f}% with tokenizing; load {load:.1f})" for o, strict, load in got)
        print(f"  {label}: {runs}; median {statistics.median(o for o, _, _ in got):.1f}%")
    print(f"overhead: {statistics.median(o for o, _, _ in shares['this checkout']):.1f}%")


if __name__ == "__main__":
    main()
