"""`dswarm-report`: gather the summaries of a sweep into one table (markdown + CSV).

    dswarm-report outputs/sweeps/2026-11-29_10-00-00            # one row per run
    dswarm-report outputs/sweeps/... --by method,objective      # mean ± sd over seeds

Every value comes from a run's summary.json; the held-out columns are the
best generator's final data measured on the held-out takers.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from objectives.registry import COMPONENTS  # the objective names: one registry

COLUMNS = ("best_utility", "initial_best", "heldout/utility", "heldout/valid_fraction")


def collect(root: Path) -> list[dict[str, Any]]:
    """One flat row per summary.json under ``root`` (its overrides included)."""
    rows = []
    for path in sorted(Path(root).rglob("summary.json")):
        s = json.loads(path.read_text())
        overrides_file = path.parent / ".hydra" / "overrides.yaml"
        overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
        row = {
            "run": str(path.parent.relative_to(root)) or ".",
            "overrides": " ".join(overrides or []),
            "method": s["method"],
            "objective": s["objective"],
            "seed": s["seed"],
            "steps": s["steps"],
            "stop_reason": s["stop_reason"],
            "best_utility": s["best_utility"],
            "initial_best": s["initial_best"],
            "heldout/utility": s["heldout"]["utility"],
            "heldout/valid_fraction": s["heldout"]["valid_fraction"],
        }
        row.update({f"heldout/{k}": s["heldout"]["objective"].get(k) for k in COMPONENTS})
        rows.append(row)
    return rows


def aggregate(rows: list[dict[str, Any]], by: Sequence[str]) -> list[dict[str, Any]]:
    """Mean ± sd of the numeric columns over the runs sharing the ``by`` keys."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in by), []).append(row)
    out = []
    for key, members in groups.items():
        agg: dict[str, Any] = dict(zip(by, key))
        agg["runs"] = len(members)
        for col in COLUMNS + tuple(f"heldout/{c}" for c in COMPONENTS):
            values = [m[col] for m in members if m.get(col) is not None]
            if values:
                sd = statistics.stdev(values) if len(values) > 1 else 0.0
                agg[col] = f"{statistics.fmean(values):.3f} ± {sd:.3f}"
        out.append(agg)
    return out


def to_markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no runs)\n"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict[str, Any]]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=cols)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dswarm-report", description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a sweep dir (or any dir holding run dirs)")
    parser.add_argument("--by", default="", help="comma-separated keys to aggregate over, e.g. method,objective")
    parser.add_argument("--out", type=Path, default=None, help="where to write table.md and table.csv (default: root)")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(f"dswarm-report: error: {args.root} is not a directory", file=sys.stderr)
        return 2
    rows = collect(args.root)
    if not rows:
        print(f"dswarm-report: error: no summary.json under {args.root}", file=sys.stderr)
        return 2
    if args.by:
        rows = aggregate(rows, [k.strip() for k in args.by.split(",") if k.strip()])
    out = args.out or args.root
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(to_markdown(rows))
    (out / "table.csv").write_text(to_csv(rows))
    print(to_markdown(rows), end="")
    print(f"wrote {out / 'table.md'} and {out / 'table.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
