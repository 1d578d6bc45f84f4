"""The pre-registered reproduction (docs/claim.md): every method x objective x seed, then both tables.

    make reproduce                                   # = python benchmarks/reproduce.py: the protocol
    python benchmarks/reproduce.py --smoke           # the same code path at a tiny scale (tiny zoo, 2 seeds, 1 step)
    DSWARM_REPRO_SMOKE=1 make reproduce              # the same
    python benchmarks/reproduce.py --reuse           # only rebuild the tables from the run dirs

Re-running it with your own seeds, a subset of the methods and held-out takers that are not
in this repository (any extra argument is a dswarm override passed to every run):

    python benchmarks/reproduce.py --seeds 21,22,23,24,25 --methods base_model,ties \
        'taker.heldout=[/models/my-llm,smollm2]' --out outputs/reproduce-mine

One `dswarm -m` sweep per group of objectives (``--jobs`` side by side), then
every run's summary.json is read once. Each run scored its final dataset on
the search takers and on the held-out takers, split into column groups
(held-out models, off-the-shelf SmolLM2) by slicing the same score tensor,
so every table row comes from the same final datasets. Writes
``<out>/tables.md`` (utilities, and paired differences Data Swarms - baseline
with bootstrap 95 % CIs; bold where the CI excludes 0 in Data Swarms' favour),
``<out>/results.csv`` and ``<out>/differences.png`` (CIs as error bars).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from swarm.config import choices  # noqa: E402
from swarm.report.stats import paired_difference  # noqa: E402

# Protocol v3 of docs/claim.md. Changing it is a protocol change: log it there with its reason.
PROTOCOL = {
    "zoo": "default",
    "seeds": [301, 302, 303, 304, 305],
    "objectives": ["difficulty", "mixed"],
    "steps": 10,            # with patience 10 no search stops early: every searcher evaluates the same generators
    "patience": 10,
    "prompts": 40,          # prompts per particle per step: 40 x 5 items = 200 items per generator per step
    "items": 100,           # export.n_items: the final dataset scored on every taker group
    "select": {"candidates": 4, "n_items": 200},  # fresh selection for every method that searches
}
SMOKE = {"zoo": "tiny", "seeds": [101, 102], "objectives": ["difficulty"], "steps": 1, "patience": 10, "prompts": 1, "items": 10,
         "select": {"candidates": 2, "n_items": 10}}
GROUPS = (("search", "search takers"), ("models", "held-out models"), ("off_the_shelf", "off-the-shelf (SmolLM2)"))
REFERENCE = "data_swarms"
# Adversarial Swarms changes its takers as it goes: its data is compared with its controls in
# benchmarks/adversarial.py, not with methods that face fixed takers.
NOT_COMPARED = ("adversarial",)


def registered_methods() -> list[str]:
    """Every method config on this checkout (conf/method/*.yaml), Data Swarms first: new baselines join by name."""
    names = choices("method")
    return [REFERENCE] + [n for n in names if n != REFERENCE and n not in NOT_COMPARED]


def chosen_methods(names: str | None) -> list[str]:
    """--methods: Data Swarms (the reference of every difference) plus the named baselines; all when None."""
    every = registered_methods()
    if names is None:
        return every
    asked = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in asked if n not in every]
    if unknown:
        raise SystemExit(f"reproduce: --methods: not a compared method: {', '.join(unknown)} (compared: {', '.join(every)}; "
                         f"{', '.join(NOT_COMPARED)}: benchmarks/adversarial.py)")
    return [REFERENCE] + [n for n in every if n in asked and n != REFERENCE]


def chosen_seeds(text: str | None, protocol: list[int]) -> list[int]:
    """--seeds: distinct integers, at least as many as the protocol has (a bootstrap over fewer
    pairs is not a CI worth reporting); the protocol's when None."""
    if text is None:
        return protocol
    try:
        seeds = [int(x) for x in text.split(",")]
    except ValueError:
        raise SystemExit(f"reproduce: --seeds: expected comma-separated integers, got {text!r}") from None
    if len(set(seeds)) != len(seeds) or len(seeds) < len(protocol):
        raise SystemExit(f"reproduce: --seeds: need at least {len(protocol)} distinct seeds, got {text!r}")
    return seeds


def sweep(out: Path, methods: list[str], p: dict, jobs: int, overrides: list[str]) -> None:
    """Hydra multiruns, one per group of objectives, ``jobs`` at a time (one thread each), same budget for all."""
    dswarm = Path(sys.executable).parent / "dswarm"
    objectives = p["objectives"]
    groups = [objectives[i::jobs] for i in range(jobs) if objectives[i::jobs]]
    sizes = [f"zoo.size={p['zoo']}", f"pso.max_steps={p['steps']}", f"pso.patience={p['patience']}",
             f"generator.prompts_per_step={p['prompts']}", f"export.n_items={p['items']}",
             *(f"select.{k}={v}" for k, v in p["select"].items()), "logger=none", "progress=false", "threads=1"]
    procs = []
    for group in groups:
        cmd = [str(dswarm), "-m", f"method={','.join(methods)}", f"objective={','.join(group)}",
               f"seed={','.join(map(str, p['seeds']))}", f"hydra.sweep.dir={out}/{'_'.join(group)}", *sizes, *overrides]
        print("$", " ".join(cmd), flush=True)
        procs.append(subprocess.Popen(cmd, env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.DEVNULL))
    if any(proc.wait() != 0 for proc in procs):
        raise SystemExit("reproduce: a sweep failed; see its run dirs' dswarm.log")


def collect(out: Path) -> dict[tuple[str, str, str], dict[int, float]]:
    """(objective, group, method) -> {seed: utility of the final dataset on that taker group}."""
    cells: dict[tuple[str, str, str], dict[int, float]] = {}
    for path in sorted(out.rglob("summary.json")):
        s = json.loads(path.read_text())
        by_group = {"search": s["search_takers"], **s.get("heldout_groups", {})}
        for group, summary in by_group.items():
            cells.setdefault((s["objective"], group, s["method"]), {})[int(s["seed"])] = summary["utility"]
    return cells


def rows(cells: dict, methods: list[str], objectives: list[str], seeds: list[int]) -> list[dict]:
    """One row per (objective, group, method): mean, sd, n; for baselines the paired difference and its CI.

    A difference is computed only where both methods finished every protocol seed: an
    incomplete cell (an interrupted sweep) would otherwise bootstrap a handful of pairs."""
    out = []
    for o in objectives:
        for g, _ in GROUPS:
            ref = cells.get((o, g, REFERENCE))
            for m in methods:
                values = cells.get((o, g, m))
                if not values:
                    continue
                v = list(values.values())
                row = {"objective": o, "group": g, "method": m, "mean": statistics.fmean(v),
                       "sd": statistics.stdev(v) if len(v) > 1 else 0.0, "n": len(v)}
                if m != REFERENCE and ref and set(seeds) <= set(ref) & set(values):
                    d = paired_difference(ref, values)
                    row.update(diff=d.mean, ci_low=d.low, ci_high=d.high, win=d.low > 0, loss=d.high < 0)
                out.append(row)
    return out


def _utility(r: dict, full: int) -> str:
    """mean ± sd; the seed count too where a cell has fewer seeds than the others (an interrupted sweep)."""
    text = f"{r['mean']:.3f} ± {r['sd']:.3f}"
    return text if r["n"] == full else f"{text} (n={r['n']})"


def markdown(table: list[dict], methods: list[str], objectives: list[str]) -> str:
    """Table 1: utilities (mean ± sd over seeds). Table 2: Data Swarms − baseline, mean [95 % CI]."""
    groups = [(g, label) for g, label in GROUPS if any(r["group"] == g for r in table)]
    index = {(r["objective"], r["group"], r["method"]): r for r in table}
    full = max((r["n"] for r in table), default=0)
    head = "| objective | method | " + " | ".join(label for _, label in groups) + " |\n" + "|---" * (len(groups) + 2) + "|\n"
    one, two = head, head
    for o in objectives:
        for m in methods:
            cells = [index.get((o, g, m)) for g, _ in groups]
            if not any(cells):
                continue
            one += f"| {o} | {m} | " + " | ".join(_utility(r, full) if r else "" for r in cells) + " |\n"
            if m == REFERENCE:
                continue
            texts = []
            for r in cells:
                if not r or "diff" not in r:
                    texts.append("")
                    continue
                t = f"{r['diff']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]"
                texts.append(f"**{t}**" if r["win"] else t)
            if any(texts):
                two += f"| {o} | {m} | " + " | ".join(texts) + " |\n"
    return ("Utility of each method's final dataset, mean ± sd over seeds:\n\n" + one
            + "\nData Swarms − baseline, per-seed paired difference: mean [bootstrap 95 % CI]; "
            "bold: the CI excludes 0 in Data Swarms' favour:\n\n" + two)


def plot(table: list[dict], objectives: list[str], path: Path) -> None:
    """Paired differences with their CIs as error bars, one panel per objective, one colour per taker group."""
    fig, axes = plt.subplots(1, len(objectives), figsize=(5 * len(objectives), 4), squeeze=False)
    for ax, o in zip(axes[0], objectives):
        diffs = [r for r in table if r["objective"] == o and "diff" in r]
        baselines = sorted({r["method"] for r in diffs})
        for k, (g, label) in enumerate(GROUPS):
            rs = {r["method"]: r for r in diffs if r["group"] == g}
            xs = [i + 0.25 * (k - 1) for i, m in enumerate(baselines) if m in rs]
            ys = [rs[m]["diff"] for m in baselines if m in rs]
            err = [[rs[m]["diff"] - rs[m]["ci_low"] for m in baselines if m in rs],
                   [rs[m]["ci_high"] - rs[m]["diff"] for m in baselines if m in rs]]
            if xs:
                ax.errorbar(xs, ys, yerr=err, fmt="o", capsize=3, label=label)
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_xticks(range(len(baselines)), baselines, rotation=30, ha="right", fontsize=8)
        ax.set_title(o)
        ax.set_ylabel("Data Swarms − baseline (95 % CI)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", default=os.environ.get("DSWARM_REPRO_SMOKE") == "1",
                        help="tiny zoo, 2 seeds, 1 step: checks the code path, proves nothing (env DSWARM_REPRO_SMOKE=1)")
    parser.add_argument("--out", type=Path, default=None, help="default: outputs/reproduce (outputs/reproduce-smoke)")
    parser.add_argument("--jobs", type=int, default=2, help="sweeps run side by side (split by objective)")
    parser.add_argument("--reuse", action="store_true", help="only rebuild the tables from an existing sweep")
    parser.add_argument("--seeds", help="comma-separated seeds instead of the protocol's (e.g. ones not in this repo)")
    parser.add_argument("--methods", help="comma-separated baselines to compare (data_swarms is always run); default all")
    args, overrides = parser.parse_known_args()
    if bad := [o for o in overrides if "=" not in o or o.startswith("-")]:
        raise SystemExit(f"reproduce: unknown argument {bad[0]!r} (extra arguments are dswarm overrides key=value)")
    base = SMOKE if args.smoke else PROTOCOL
    p = {**base, "seeds": chosen_seeds(args.seeds, base["seeds"])}
    out = args.out or REPO / "outputs" / ("reproduce-smoke" if args.smoke else "reproduce")
    methods = chosen_methods(args.methods)
    started = time.time()
    if not args.reuse:
        sweep(out / "sweep", methods, p, args.jobs, overrides)
    table = rows(collect(out / "sweep"), methods, p["objectives"], p["seeds"])
    if not table:
        raise SystemExit(f"reproduce: no summary.json under {out / 'sweep'}")
    text = markdown(table, methods, p["objectives"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "tables.md").write_text(text)
    with open(out / "results.csv", "w", newline="") as f:
        fields = ["objective", "group", "method", "mean", "sd", "n", "diff", "ci_low", "ci_high", "win", "loss"]
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(table)
    plot(table, p["objectives"], out / "differences.png")
    print(f"\nprotocol: {json.dumps(p)}; methods: {', '.join(methods)}"
          + (f"; overrides: {' '.join(overrides)}" if overrides else "") + "\n")
    print(text, end="")
    print(f"wrote {out}/tables.md, results.csv, differences.png in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
