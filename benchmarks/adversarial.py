"""Adversarial Swarms against its controls: does training on the hardest generated data help the takers?

Usage: python benchmarks/adversarial.py [--seeds 0 1 2 3 4] [--steps 10] [--jobs 2] [--out DIR] [OVERRIDE ...]
       python benchmarks/adversarial.py --feeds reference --out DIR   # one adversarial arm only
       python benchmarks/adversarial.py --reuse     # only rebuild the table from the run dirs

One adversarial arm per feed (--feeds, default both) and two controls, the same seeds, steps, pool and
evaluation budget (one `dswarm -m seed=...` sweep each, `method=adversarial`, the default zoo):
  adversarial_hardest    the takers' pool gets the hardest confirmed generated items in a fixed
                         replace_fraction of its slots (method.feed=hardest)
  adversarial_reference  as the authors' code: every slot replaced with probability replace_fraction by a
                         random confirmed generated item, so the pool drifts (method.feed=reference)
  random_feed            control (b): random confirmed generated items instead of the hardest (method.feed=random)
  no_generated           control (a): the takers never see generated data (method.replace_fraction=0)
Each arm's best taker (best/taker/) is scored on
  - test: the task's held-out test set (the same 200 items in every arm);
  - generated: for each seed, the union of every arm's final dataset (best/data.jsonl),
    less every item any arm generated during its search (data/step_*.jsonl) or that is a dev
    item: generated data no taker of any arm was ever scored on; answers verified.
It prints each arm's mean and the paired per-seed differences adversarial arm − control with
a bootstrap 95% CI (swarm/report/stats.py); a win counts only where the CI excludes 0. The table
also goes to DIR/table.md; the time taken is printed. Protocol v3's settings: docs/claim.md (PROTOCOL below).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from swarm.build import build_task, taker_specs
from swarm.config import compose_run
from swarm.report.stats import paired_difference

REPO = Path(__file__).resolve().parents[1]

DSWARM = Path(sys.executable).parent / "dswarm"
FEEDS = ("hardest", "reference")  # the adversarial arms, one per feed
CONTROLS = {"random_feed": ["method.feed=random"], "no_generated": ["method.replace_fraction=0"]}
# Protocol v3 (docs/claim.md): fresh seeds, the steps and generator budget the whole protocol fits in.
PROTOCOL = {"seeds": [301, 302, 303, 304, 305], "steps": 10, "prompts": 40, "items": 100}
FIXED = ["pso.patience=10", "select.candidates=4", "select.n_items=200"]  # as benchmarks/reproduce.py's PROTOCOL


def arms(feeds: list[str]) -> dict[str, list[str]]:
    """arm -> its own dswarm overrides: the adversarial arms of ``feeds``, then both controls."""
    return {**{f"adversarial_{f}": [f"method.feed={f}"] for f in feeds}, **CONTROLS}


def sweep(out: Path, seeds: list[int], settings: list[str], jobs: int, threads: int, feeds: list[str]) -> None:
    """One `dswarm -m` sweep per arm, ``jobs`` at a time."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    pending, running = list(arms(feeds).items()), []
    while pending or running:
        while pending and len(running) < jobs:
            arm, extra = pending.pop(0)
            cmd = [str(DSWARM), "-m", f"seed={','.join(map(str, seeds))}", "method=adversarial", "logger=none", "progress=false",
                   *settings, *extra, f"hydra.sweep.dir={out / arm}", "hydra.sweep.subdir=seed_${seed}"]
            print("$", " ".join(cmd), flush=True)
            running.append((arm, subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL)))
        arm, proc = running.pop(0)
        if proc.wait() != 0:
            raise SystemExit(f"adversarial benchmark: the {arm} sweep failed; see {out / arm}/seed_*/dswarm.log")


def heldout_generated(runs: dict[str, Path], dev: set[str]) -> list:
    """The union of the arms' final datasets, less anything generated during any search and the dev items."""
    from objectives.tasks.item import Item

    seen = set(dev)
    for run in runs.values():
        for path in (run / "data").glob("step_*.jsonl"):
            seen.update(json.loads(line)["input"] for line in path.read_text().splitlines())
    items: dict[str, Item] = {}
    for run in runs.values():
        for line in (run / "best" / "data.jsonl").read_text().splitlines():
            row = json.loads(line)
            if row["valid"] and row["output"] is not None and row["input"] not in seen:
                items.setdefault(row["input"], Item(row["input"], row["output"], True))
    return list(items.values())


def score_takers(runs: dict[str, Path], items: list, cfg, task) -> dict[str, float]:
    """Mean verified score of each arm's best taker (and the initial taker) on ``items``."""
    from generators.models.lora_model import LoraModel
    from generators.takers.lora_panel import TakerPanel
    from objectives.judging.judges import VerifierJudge
    from objectives.judging.scores import score_items

    first = next(iter(runs.values()))
    search, _ = taker_specs(cfg, task)  # the model swarm's LoRA takers of one base
    initial_name = json.loads((first / "summary.json").read_text())["adversarial"]["initial_taker"]
    initial = next(spec for spec in search if spec.name == initial_name)
    names = [*runs, "initial_taker"]
    model = LoraModel(initial.base, [runs[a] / "best" / "taker" for a in runs] + [initial.adapter])
    panel = TakerPanel(model, model.expert_vectors, names, initial.settings)
    scores = score_items(items, panel.answer, len(panel), VerifierJudge())
    return {n: scores.values[i].nanmean().item() for i, n in enumerate(names)}


def collect(out: Path, seeds: list[int], feeds: list[str]) -> dict[str, dict[str, dict[int, float]]]:
    """metric -> arm -> seed -> the best taker's mean score."""
    result: dict[str, dict[str, dict[int, float]]] = {"test": {}, "generated": {}, "n_generated": {}}
    for seed in seeds:
        runs = {arm: out / arm / f"seed_{seed}" for arm in arms(feeds)}
        for arm, run in runs.items():
            adv = json.loads((run / "summary.json").read_text())["adversarial"]
            result["test"].setdefault(arm, {})[seed] = adv["test"]["best_taker"]
            result["test"].setdefault("initial_taker", {})[seed] = adv["test"]["initial_taker"]
        cfg = compose_run(runs[f"adversarial_{feeds[0]}"])
        task = build_task(cfg)
        items = heldout_generated(runs, {it.input for it in task.dev})
        for name, value in score_takers(runs, items, cfg, task).items():
            result["generated"].setdefault(name, {})[seed] = value
        result["n_generated"].setdefault("items", {})[seed] = len(items)
    return result


def table(result: dict, seeds: list[int], feeds: list[str]) -> str:
    lines = ["| taker | test (mean over seeds) | held-out generated (mean over seeds) |", "|---|---|---|"]
    mean = lambda d: sum(d.values()) / len(d)  # noqa: E731
    for name in [*arms(feeds), "initial_taker"]:
        lines.append(f"| {name} | {mean(result['test'][name]):.3f} | {mean(result['generated'][name]):.3f} |")
    lines += ["", f"Paired differences over seeds {seeds} (mean [bootstrap 95% CI]); **win**/**loss** only where the CI excludes 0:", "",
              "| comparison | test | held-out generated |", "|---|---|---|"]
    for arm in (f"adversarial_{f}" for f in feeds):
        for control in (*CONTROLS, "initial_taker"):
            cells = []
            for metric in ("test", "generated"):
                d = paired_difference(result[metric][arm], result[metric][control])
                verdict = (" **win**" if d.mean > 0 else " **loss**") if d.significant else " (no difference shown)"
                cells.append(d.format() + verdict)
            lines.append(f"| {arm} − {control} | {cells[0]} | {cells[1]} |")
    sizes = result["n_generated"]["items"]
    lines += ["", f"held-out generated items per seed: {', '.join(str(sizes[s]) for s in seeds)}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=PROTOCOL["seeds"])
    ap.add_argument("--steps", type=int, default=PROTOCOL["steps"], help="pso.max_steps (both swarms, every arm)")
    ap.add_argument("--prompts", type=int, default=PROTOCOL["prompts"],
                    help="generator.prompts_per_step (x 5 items per generator per step)")
    ap.add_argument("--items", type=int, default=PROTOCOL["items"], help="export.n_items: each arm's final dataset")
    ap.add_argument("--jobs", type=int, default=2, help="arms run side by side (one thread each)")
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run")
    ap.add_argument("--out", type=Path, default=REPO / "outputs" / "benchmarks" / "adversarial_controls")
    ap.add_argument("--reuse", action="store_true", help="only rebuild the table from existing run dirs")
    ap.add_argument("--feeds", nargs="+", choices=FEEDS, default=list(FEEDS), help="one adversarial arm per feed")
    ap.add_argument("overrides", nargs="*", help="extra dswarm overrides for every run")
    args = ap.parse_args(argv)
    if len(args.seeds) < 5:
        print("note: fewer than 5 seeds; the CIs will be wide", file=sys.stderr)
    settings = [f"pso.max_steps={args.steps}", f"generator.prompts_per_step={args.prompts}", f"export.n_items={args.items}",
                *FIXED, *args.overrides]
    started = time.time()
    if not args.reuse:
        sweep(args.out, args.seeds, settings, args.jobs, args.threads, args.feeds)
    result = collect(args.out, args.seeds, args.feeds)
    text = table(result, args.seeds, args.feeds)
    seconds = time.time() - started
    header = (f"Adversarial Swarms (feeds {', '.join(args.feeds)}) vs controls, seeds {args.seeds}, {' '.join(settings)}, "
              f"{len(arms(args.feeds))} arms x {len(args.seeds)} seeds, --jobs {args.jobs} ({seconds:.0f} s)")
    (args.out / "table.md").write_text(header + "\n\n" + text + "\n")
    print("\n" + header + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
