"""`dswarm-report`: gather the runs of a sweep into one table (markdown + CSV), and say which runs are missing.

    dswarm-report outputs/sweeps/2026-11-29_10-00-00                 # one row per run, a column per swept override
    dswarm-report outputs/sweeps/... --by objective.weights.novelty  # seeds collapsed: mean ± sd and n per value
    dswarm-report outputs/sweeps/... --by swept                      # every swept override but the seed

Every number comes from a run's summary.json; the held-out columns are the best
generator's final data measured on the held-out takers, ``search_takers/utility``
the same data on the search takers. ``--by`` takes summary fields (method,
objective, ...) and any config key of the runs (``pso.inertia``,
``objective.weights.novelty``: read from each run's .hydra/config.yaml). Runs
that failed (error.txt), did not finish (no summary.json) or whose summary
cannot be read are counted and named below the table, never averaged in
silently; a group's row counts them too.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from objectives.registry import COMPONENTS  # the objective names: one registry
from swarm.runtime.record import flat

COLUMNS = ("best_utility", "initial_best", "search_takers/utility", "heldout/utility", "initial_heldout/utility",
           "heldout/valid_fraction",
           *(f"heldout/{c}" for c in COMPONENTS))
SUMMARY_FIELDS = ("method", "objective", "seed", "steps", "stop_reason")
MARKERS = (".hydra/config.yaml", "summary.json", "error.txt", "checkpoint/state.safetensors")  # what makes a dir a run dir


@dataclass
class Run:
    """One run dir: what it was asked (config, overrides), how it ended, and its numbers when it finished."""

    name: str
    status: str  # finished | failed | unfinished | unreadable
    config: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def get(self, key: str) -> Any:
        """A summary field, else a config key (``method`` is ``method.name`` there), else an override (as typed)."""
        for source, name in ((self.values, key), (self.config, key), (self.config, f"{key}.name"), (self.overrides, key)):
            if name in source:
                value = source[name]
                return json.dumps(value) if isinstance(value, (list, dict)) else value
        return None


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text()) if path.is_file() else None
    except (OSError, yaml.YAMLError):
        return None


def _numbers(s: dict[str, Any]) -> dict[str, Any]:
    """The table's values from a summary (KeyError/TypeError when it is not a dswarm summary)."""
    values = {k: s[k] for k in SUMMARY_FIELDS}
    values.update({"best_utility": s["best_utility"], "initial_best": s["initial_best"],
                   "heldout/utility": s["heldout"]["utility"], "heldout/valid_fraction": s["heldout"]["valid_fraction"]})
    values["search_takers/utility"] = (s.get("search_takers") or {}).get("utility")
    values["initial_heldout/utility"] = (s.get("initial_heldout") or {}).get("utility")  # the initial best expert
    values.update({f"heldout/{k}": s["heldout"]["objective"].get(k) for k in COMPONENTS})
    return values


def read_run(run_dir: Path, name: str) -> Run:
    config = _read_yaml(run_dir / ".hydra" / "config.yaml")
    overrides = _read_yaml(run_dir / ".hydra" / "overrides.yaml") or []
    run = Run(name, "unfinished", flat(config) if isinstance(config, dict) else {},
              dict(str(o).lstrip("+~").split("=", 1) for o in overrides if "=" in str(o) and not str(o).startswith("hydra.")))
    summary = run_dir / "summary.json"
    if summary.is_file():
        try:
            run.values, run.status = _numbers(json.loads(summary.read_text())), "finished"
        except (OSError, ValueError, KeyError, TypeError) as err:
            run.status, run.note = "unreadable", f"summary.json: {type(err).__name__}: {str(err)[:80]}"
    elif (run_dir / "error.txt").is_file():
        run.status, run.note = "failed", (run_dir / "error.txt").read_text(errors="replace").strip().splitlines()[0][:200]
    else:
        metrics = run_dir / "metrics.jsonl"
        steps = sum(1 for _ in metrics.open()) if metrics.is_file() else 0
        run.note = f"{steps} step(s) logged, no summary.json (still running, or stopped: rerun it to resume)"
    return run


def collect(root: Path) -> list[Run]:
    """Every run dir under ``root`` (``root`` itself included), sorted by name."""
    root = Path(root)
    dirs = {p.parent.parent if p.parent.name in (".hydra", "checkpoint") else p.parent
            for marker in MARKERS for p in root.rglob(marker)}
    return [read_run(d, str(d.relative_to(root)) or ".") for d in sorted(dirs)]


def swept(runs: list[Run]) -> list[str]:
    """The override keys whose value differs between runs: the sweep's axes."""
    keys = sorted({k for r in runs for k in r.overrides})
    return [k for k in keys if len({r.overrides.get(k) for r in runs}) > 1]


def per_run(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per finished run: its name, one column per swept override, its numbers."""
    axes = swept(runs)
    return [{"run": r.name, **{k: r.overrides.get(k) for k in axes}, **r.values} for r in runs if r.status == "finished"]


def _mean_sd(values: list[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def grouped(runs: list[Run], by: Sequence[str]) -> list[dict[str, Any]]:
    """One row per value of the ``by`` keys: n finished runs, mean ± sd of each number, failed/unfinished counts."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault(tuple(str(run.get(k)) for k in by), []).append(run)
    out = []
    for key, members in sorted(groups.items()):
        done = [m for m in members if m.status == "finished"]
        row: dict[str, Any] = {**dict(zip(by, key)), "n": len(done)}
        for col in COLUMNS:
            values = [m.values[col] for m in done if isinstance(m.values.get(col), (int, float))]
            if values:
                row[col] = _mean_sd(values)
        row["missing"] = ", ".join(f"{s} {sum(m.status == s for m in members)}" for s in ("failed", "unfinished", "unreadable")
                                   if any(m.status == s for m in members))
        out.append(row)
    return out


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        mean, sd = value
        return f"{mean:.3f}" if sd is None else f"{mean:.3f} ± {sd:.3f}"
    return f"{value:.4f}" if isinstance(value, float) else ("" if value is None else str(value))


def to_markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no finished runs)\n"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_shown(r.get(c)).replace("|", "\\|") for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Plain numbers: a mean ± sd cell becomes two columns, ``<col>/mean`` and ``<col>/sd``."""
    flat_rows = [{k2: v2 for k, v in r.items() for k2, v2 in (((f"{k}/mean", v[0]), (f"{k}/sd", v[1]))
                                                             if isinstance(v, tuple) else ((k, v),))} for r in rows]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(k for r in flat_rows for k in r)))
    writer.writeheader()
    writer.writerows(flat_rows)
    return buffer.getvalue()


def problems(runs: list[Run]) -> str:
    """The runs left out of the numbers, by status, each named with why."""
    parts = []
    for status in ("failed", "unfinished", "unreadable"):
        bad = [r for r in runs if r.status == status]
        if bad:
            parts.append(f"{status} ({len(bad)}, not in the numbers):\n" + "".join(f"- {r.name}: {r.note}\n" for r in bad))
    return "\n".join(parts)


def _by_keys(text: str, runs: list[Run]) -> list[str]:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    keys = [a for k in keys for a in ([x for x in swept(runs) if x != "seed"] if k == "swept" else [k])]
    unknown = [k for k in keys if all(r.get(k) is None for r in runs)]
    if unknown:
        sample = ", ".join([*SUMMARY_FIELDS, *swept(runs)][:8])
        raise ValueError(f"--by: {unknown[0]!r} is neither a summary field nor a config key of these runs (e.g. {sample})")
    return keys


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dswarm-report", description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a sweep dir (or any dir holding run dirs)")
    parser.add_argument("--by", default="", help="comma-separated keys to group by (seeds collapsed), e.g. "
                                                 "objective.weights.novelty,method; 'swept': every swept override but seed")
    parser.add_argument("--out", type=Path, default=None, help="where to write table.md and table.csv (default: root)")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(f"dswarm-report: error: {args.root} is not a directory", file=sys.stderr)
        return 2
    runs = collect(args.root)
    if not runs:
        print(f"dswarm-report: error: no run dirs under {args.root}", file=sys.stderr)
        return 2
    try:
        rows = grouped(runs, _by_keys(args.by, runs)) if args.by else per_run(runs)
    except ValueError as err:
        print(f"dswarm-report: error: {err}", file=sys.stderr)
        return 2
    counts = {s: sum(r.status == s for r in runs) for s in ("finished", "failed", "unfinished", "unreadable")}
    tally = f"runs: {len(runs)} ({', '.join(f'{n} {s}' for s, n in counts.items() if n)})\n"
    text = to_markdown(rows) + "\n" + tally + (("\n" + problems(runs)) if len(runs) > counts["finished"] else "")
    out = args.out or args.root
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text)
    (out / "table.csv").write_text(to_csv(rows))
    print(text, end="")
    print(f"wrote {out / 'table.md'} and {out / 'table.csv'}")
    return 0 if counts["finished"] else 1


if __name__ == "__main__":
    sys.exit(main())
