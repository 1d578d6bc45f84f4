"""Run tracking: metrics.jsonl (the record), W&B (the dashboard), plots (the glance).

metrics.jsonl is the source of truth: one JSON object per swarm step, appended
and fsynced as each step ends (on the run's writer thread, before the step's
checkpoint). W&B mirrors it, from a process of its own
(swarm/runtime/wandb_process.py: the run's process only queues plain data):
slash-separated scalars each step, and a table sampling the step's items
every ``logger.table_every`` steps and at the last one; at the end the flattened summary
(``heldout/utility``, ...), the final dataset as a table, the plots as images
and the best generator and its data as artifacts carrying the config. The run
is named by its overrides, its job_type is the method. ``logger=none`` turns
W&B off. Only the main process constructs a Tracker.
"""
from __future__ import annotations

import io
import json
import logging
import math
import secrets
from pathlib import Path
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from swarm.runtime.errors import ConfigError  # noqa: E402
from swarm.runtime.files import OrderedWriter, append_synced, atomic_write_bytes, atomic_write_text, dumps, jsonl  # noqa: E402
from swarm.runtime.wandb_mode import wandb_mode  # noqa: E402
from swarm.runtime.wandb_process import Image, Table, WandbProcess  # noqa: E402

log = logging.getLogger("dswarm")


def read_metrics(run_dir: Path) -> list[dict]:
    """The complete lines of metrics.jsonl (a torn last line is ignored).

    A file whose lines are not a run's step rows (someone else's metrics.jsonl) is a
    ConfigError: the run would otherwise overwrite it.
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    lines = path.read_text(errors="replace").splitlines()
    for n, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):  # a line torn by a kill is only ever the last
                break
            row = None
        if not (isinstance(row, dict) and type(row.get("step")) is int):
            raise ConfigError(f"hydra.run.dir: {path} is not a dswarm metrics file (line {n} is not a step row); "
                              "move it away or give this run another hydra.run.dir")
        rows.append(row)
    return rows


def _scalars(row: Mapping[str, Any]) -> dict[str, float]:
    """Flatten a metrics row into W&B scalars: lists become per-particle keys plus a mean."""
    out: dict[str, float] = {}
    for key, value in row.items():
        if key == "step":
            continue
        name = key if "/" in key else f"swarm/{key}"
        if isinstance(value, list):
            finite = [v for v in value if isinstance(v, (int, float)) and math.isfinite(v)]
            if finite:
                out[f"{name}_mean"] = sum(finite) / len(finite)
            short = name.split("/", 1)[1]
            out.update((f"particle/{i}/{short}", v) for i, v in enumerate(value))
        elif isinstance(value, (int, float)):
            out[name] = value
    return out


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"heldout": {"utility": u}}`` -> ``{"heldout/utility": u}``: W&B's summary shows no nested dicts;
    a list of dicts is numbered (``selection/candidates/0/fresh``)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}/"))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            out.update(flatten({str(i): v for i, v in enumerate(value)}, f"{name}/"))
        else:
            out[name] = value
    return out


def item_columns(rows: list[dict], scores_key: str) -> tuple[list[str], list[list[Any]]]:
    """Table columns for item rows: the item's fields, then one score column per taker."""
    takers = sorted({t for r in rows for t in (r.get(scores_key) or {})})
    fields = [f for f in ("particle", "input", "output", "valid", "realism") if any(f in r for r in rows)]
    data = [[r.get(f) for f in fields] + [(r.get(scores_key) or {}).get(t) for t in takers] for r in rows]
    return fields + [f"score/{t}" for t in takers], data


def sample(rows: list[dict], n: int) -> list[dict]:
    """``n`` rows spread evenly over ``rows`` (so every particle shows up)."""
    if n <= 0 or not rows:
        return []
    stride = max(1, len(rows) // n)
    return rows[::stride][:n]


class Tracker:
    """Writes metrics.jsonl and mirrors each step to W&B when ``kind == 'wandb'``."""

    def __init__(self, run_dir: Path, logger: Mapping[str, Any], config: Mapping[str, Any], resume_step: int,
                 files: OrderedWriter | None = None) -> None:
        """``files``: the run's background writer, which then appends the metrics lines (in order with the
        step's other files; the fsync left the step's clock); without it they are appended here."""
        self.run_dir = Path(run_dir)
        self.files = files
        self.path = self.run_dir / "metrics.jsonl"
        rows = [r for r in read_metrics(self.run_dir) if r.get("step", 0) <= resume_step]
        atomic_write_text(self.path, jsonl(rows))
        self.rows = rows
        self.config = dict(config)
        self.table_items = int(logger.get("table_items", 0) or 0)
        self.table_every = int(logger.get("table_every", 1))
        self.unlogged: tuple[int, list[dict]] | None = None  # the last step's sample when it got no table yet
        self.mode = wandb_mode(logger.get("mode")) if logger.get("kind") == "wandb" else None
        self.wandb = _start_wandb(self.run_dir, logger, config, self.mode) if self.mode is not None else None

    def log(self, row: dict[str, Any], items: list[dict] | None = None) -> None:
        """Append a step's metrics line; W&B also gets the scalars, and every ``table_every`` steps a table
        sampling the step's items (the last step's table is logged by `summary` when the run ends)."""
        self.rows.append(row)
        if self.files is not None:
            self.files.defer(append_synced, self.path, dumps(row) + "\n")
        else:
            append_synced(self.path, dumps(row) + "\n")
        if self.wandb is not None:
            data = _scalars(row)
            picked = sample(items or [], self.table_items)
            self.unlogged = (row["step"], picked) if picked else None
            if picked and row["step"] % self.table_every == 0:
                data["items"] = self._table(picked, "scores")
                self.unlogged = None
            if self.files is not None:  # handed over with the step's files, after its bookkeeping (OrderedWriter.defer)
                self.files.defer(self.wandb.log, data, row["step"])
            else:
                self.wandb.log(data, step=row["step"])

    def summary(self, summary: Mapping[str, Any], final_rows: list[dict]) -> None:
        """The end of the run on W&B: summary, final dataset table, plots, artifacts."""
        if self.wandb is None:
            return
        self.wandb.update_summary(flatten(summary))
        media: dict[str, Any] = {"final/dataset": self._table(final_rows, "heldout_scores")}
        if candidates := summary.get("selection", {}).get("candidates"):  # the fresh selection, one row a candidate
            columns = list(candidates[0])
            media["selection/candidates"] = Table(columns, [[c[k] for k in columns] for c in candidates])
        for png in sorted((self.run_dir / "plots").glob("*.png")):
            media[f"plots/{png.stem}"] = Image(str(png))
        step = self.rows[-1]["step"] if self.rows else 0
        if self.unlogged is not None and self.unlogged[0] == step:  # the last step's table, when table_every skipped it
            media["items"] = self._table(self.unlogged[1], "scores")
        self.wandb.log(media, step=step)
        best = self.run_dir / "best"
        metadata = {"config": self.config, "heldout/utility": summary.get("heldout", {}).get("utility")}
        self.wandb.log_artifact("best-generator", "model", metadata, dirs={str(best / "generator"): None})
        dirs = {str(best / "dataset"): "dataset"} if (best / "dataset").is_dir() else {}
        self.wandb.log_artifact("best-data", "dataset", metadata, dirs=dirs, files={str(best / "data.jsonl"): None})

    def _table(self, rows: list[dict], scores_key: str) -> Table:
        return Table(*item_columns(rows, scores_key))

    def finish(self, exit_code: int = 0) -> None:
        """End the W&B run; an offline one says, once, the command that uploads it."""
        if self.wandb is not None:
            self.wandb.finish(exit_code=exit_code)
            self.wandb = None
            if self.mode == "offline":
                log.info("W&B ran offline; upload the run with: wandb sync %s", self.run_dir / "wandb" / "offline-run-*")


def _start_wandb(run_dir: Path, logger: Mapping[str, Any], config: Mapping[str, Any], mode: str) -> WandbProcess:
    """Named by the overrides, job_type = method; the run id lives in the run dir so resume continues it."""
    id_file = run_dir / "wandb_run_id"
    run_id = id_file.read_text().strip() if id_file.exists() else secrets.token_hex(4)
    atomic_write_text(id_file, run_id)
    method = config.get("method", {}).get("name")
    task = str(config.get("task", {}).get("_target_", "")).rsplit(".", 1)[-1].removesuffix("Task").lower()  # ArithTask: arith
    auto = [method, config.get("objective", {}).get("name"), f"task={task}"]
    return WandbProcess({
        "project": logger.get("project", "data-swarms"),
        "entity": logger.get("entity"),
        "name": logger.get("name"),
        "job_type": method,
        "group": logger.get("group"),
        "tags": list(dict.fromkeys([t for t in auto if t] + list(logger.get("tags") or []))),
        "dir": str(run_dir),
        "mode": mode,
        "id": run_id,
        "resume": "allow",
        "config": dict(config),
        "settings": {"console": "off", "x_disable_stats": True},
    })


def plot_utility(rows: list[dict], path: Path) -> None:
    """Utility of each particle and the global best g over steps."""
    if not rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    n = max(len(r["utility"]) for r in rows)
    for i in range(n):
        ys = [r["utility"][i] if i < len(r["utility"]) else math.nan for r in rows]
        ax.plot(steps, ys, marker=".", alpha=0.6, label=f"particle {i}")
    ax.plot(steps, [r["best"] for r in rows], color="black", linewidth=2.5, label="global best g")
    ax.set_xlabel("step")
    ax.set_ylabel("utility")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
