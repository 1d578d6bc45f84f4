"""Run tracking: metrics.jsonl (the record), W&B (the dashboard), plots (the glance).

metrics.jsonl is the source of truth: one JSON object per swarm step, appended
and flushed as each step ends. W&B mirrors it as slash-separated scalars;
``logger=none`` turns W&B off. Only the main process constructs a Tracker.
"""
from __future__ import annotations

import io
import json
import math
import os
import secrets
from pathlib import Path
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from swarm.files import atomic_write_bytes, atomic_write_text  # noqa: E402


def read_metrics(run_dir: Path) -> list[dict]:
    """The complete lines of metrics.jsonl (a torn last line is ignored)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
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
            for i, v in enumerate(value):
                out[f"particle/{i}/{name.split('/', 1)[1]}"] = v
        elif isinstance(value, (int, float)):
            out[name] = value
    return out


class Tracker:
    """Writes metrics.jsonl and mirrors each step to W&B when ``kind == 'wandb'``."""

    def __init__(self, run_dir: Path, logger: Mapping[str, Any], config: Mapping[str, Any], resume_step: int) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.jsonl"
        rows = [r for r in read_metrics(self.run_dir) if r.get("step", 0) <= resume_step]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in rows))
        self.rows = rows
        self.wandb = _start_wandb(self.run_dir, logger, config) if logger.get("kind") == "wandb" else None

    def log(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
        if self.wandb is not None:
            self.wandb.log(_scalars(row), step=row["step"])

    def summary(self, summary: Mapping[str, Any]) -> None:
        if self.wandb is not None:
            self.wandb.summary.update(_scalars({k: v for k, v in summary.items() if not isinstance(v, dict)}))

    def finish(self, exit_code: int = 0) -> None:
        if self.wandb is not None:
            self.wandb.finish(exit_code=exit_code)
            self.wandb = None


def _start_wandb(run_dir: Path, logger: Mapping[str, Any], config: Mapping[str, Any]):
    """Offline unless the user configured a key; the run id lives in the run dir so resume continues it."""
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb

    mode = logger.get("mode") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    id_file = run_dir / "wandb_run_id"
    run_id = id_file.read_text().strip() if id_file.exists() else secrets.token_hex(4)
    atomic_write_text(id_file, run_id)
    return wandb.init(
        project=logger.get("project", "data-swarms"),
        entity=logger.get("entity"),
        group=logger.get("group"),
        tags=list(logger.get("tags") or []),
        dir=str(run_dir),
        mode=mode,
        id=run_id,
        resume="allow",
        config=dict(config),
        settings=wandb.Settings(console="off", x_disable_stats=True),
    )


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
