"""Does Data Swarms beat its baselines? Methods × objectives × seeds on the embedded task.

    python benchmarks/reproduce.py                 # the full table (≈ 60 min on 2 CPU cores)
    python benchmarks/reproduce.py --seeds 0 --objectives difficulty,mixed   # a quick look

Runs one `dswarm -m` sweep (method × objective × seed), then reads every run's
summary.json. Each cell is the utility, under the objective the run optimized,
of the final dataset measured on the **held-out takers** (never seen during
search): mean ± sd over seeds. Writes outputs/report/table.md, table.csv and
bars.png, and prints the table.
"""
from __future__ import annotations

import argparse
import csv
import json
import statistics
import os
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METHODS = ["data_swarms", "random_search", "cma_es", "prompt_search", "best_expert", "data_merge", "ties", "uniform_soup", "base_model"]
OBJECTIVES = ["difficulty", "separation", "novelty", "consistency", "realism", "mixed"]


def sweep(out: Path, methods: list[str], objectives: list[str], seeds: list[int], sizes: list[str], jobs: int) -> None:
    """Hydra multiruns, one per group of objectives, ``jobs`` at a time (one thread each);
    every job shares the sizes, so every method gets the same budget."""
    dswarm = Path(sys.executable).parent / "dswarm"
    groups = [objectives[i::jobs] for i in range(jobs) if objectives[i::jobs]]
    procs = []
    for group in groups:
        cmd = [
            str(dswarm), "-m",
            f"method={','.join(methods)}", f"objective={','.join(group)}", f"seed={','.join(map(str, seeds))}",
            "logger=none", "progress=false", f"hydra.sweep.dir={out}/{'_'.join(group)}", *sizes,
        ]
        print("$", " ".join(cmd), flush=True)
        env = dict(os.environ, OMP_NUM_THREADS="1") if len(groups) > 1 else None
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL))
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("reproduce: a sweep failed; see its run dirs' dswarm.log")


def table(out: Path, takers: str = "heldout") -> tuple[dict, list[str], list[str]]:
    """(method, objective) -> the final data's utilities over seeds, measured by ``takers``."""
    cells: dict[tuple[str, str], list[float]] = {}
    for path in out.rglob("summary.json"):
        s = json.loads(path.read_text())
        cells.setdefault((s["method"], s["objective"]), []).append(s[takers]["utility"])
    methods = [m for m in METHODS if any(k[0] == m for k in cells)]
    objectives = [o for o in OBJECTIVES if any(k[1] == o for k in cells)]
    return cells, methods, objectives


def stats(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def markdown_table(cells: dict, methods: list[str], objectives: list[str]) -> tuple[str, list[dict]]:
    """Mean ± sd per cell, the best method of each column in bold."""
    header = "| method | " + " | ".join(objectives) + " |"
    lines = [header, "|---" * (len(objectives) + 1) + "|"]
    best = {o: max(methods, key=lambda m: stats(cells.get((m, o), [float("-inf")]))[0]) for o in objectives}
    rows = []
    for m in methods:
        row = [m]
        for o in objectives:
            values = cells.get((m, o))
            if not values:
                row.append("")
                continue
            mean, sd = stats(values)
            text = f"{mean:.3f} ± {sd:.3f}"
            row.append(f"**{text}**" if best[o] == m else text)
            rows.append({"method": m, "objective": o, "mean": mean, "sd": sd, "n": len(values)})
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n", rows


def write(cells: dict, search_cells: dict, methods: list[str], objectives: list[str], report: Path) -> str:
    report.mkdir(parents=True, exist_ok=True)
    markdown, rows = markdown_table(cells, methods, objectives)
    search, _ = markdown_table(search_cells, methods, objectives)
    markdown += "\nThe same final datasets measured on the search takers (those the search optimized against):\n\n" + search
    (report / "table.md").write_text(markdown)
    with open(report / "table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["method", "objective", "mean", "sd", "n"])
        writer.writeheader()
        writer.writerows(rows)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(objectives)), 4))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        ms = [stats(cells[(m, o)]) if (m, o) in cells else (0.0, 0.0) for o in objectives]
        xs = [j + i * width for j in range(len(objectives))]
        ax.bar(xs, [a for a, _ in ms], width, yerr=[b for _, b in ms], label=m, capsize=2)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(objectives))], objectives)
    ax.set_ylabel("held-out utility (mean ± sd over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(report / "bars.png", dpi=110)
    return markdown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--objectives", default=",".join(OBJECTIVES))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=5, help="pso.max_steps (random_search gets the same)")
    parser.add_argument("--prompts", type=int, default=4, help="generator.prompts_per_step")
    parser.add_argument("--items", type=int, default=100, help="export.n_items of the final dataset")
    parser.add_argument("--out", type=Path, default=Path("outputs/report"))
    parser.add_argument("--jobs", type=int, default=2, help="sweeps run side by side (split by objective)")
    parser.add_argument("--reuse", action="store_true", help="only rebuild the table from an existing sweep")
    args = parser.parse_args()
    sweep_dir = args.out / "sweep"
    sizes = [f"pso.max_steps={args.steps}", f"generator.prompts_per_step={args.prompts}", f"export.n_items={args.items}"]
    started = time.time()
    if not args.reuse:
        sweep(sweep_dir, args.methods.split(","), args.objectives.split(","), [int(s) for s in args.seeds.split(",")], sizes, args.jobs)
    cells, methods, objectives = table(sweep_dir)
    markdown = write(cells, table(sweep_dir, "search_takers")[0], methods, objectives, args.out)
    print(f"\nheld-out utility, mean ± sd over seeds {args.seeds} ({' '.join(sizes)}); best per column in bold")
    print(markdown, end="")
    print(f"wrote {args.out}/table.md, table.csv, bars.png in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
