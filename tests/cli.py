"""Run the real `dswarm` CLI in a subprocess, on the tiny zoo, with small sizes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DSWARM = Path(sys.executable).parent / "dswarm"

# conf/debug/tiny.yaml: the tiny zoo, few items, the zoo's held-out models only (SmolLM2, the default's
# off-the-shelf held-out taker, costs ~8 s of CPU a run: tests/test_panel.py runs the default panel);
# the arith task's sizes apart (other tasks have other keys).
SMALL = ["debug=tiny", "task.n_dev=40", "task.n_test=40"]

# conf/debug/fast.yaml, smaller still, for runs against the loopback judge (tools/judge_server.py), on top of SMALL.
FAST = ["debug=fast", "task.n_dev=16", "task.n_test=16"]


def env() -> dict[str, str]:
    e = dict(os.environ)
    # One thread a process: the tiny models gain nothing from two, and tests may run beside other work.
    e.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", WANDB_MODE="offline", WANDB_SILENT="true", OMP_NUM_THREADS="1")
    e.pop("HYDRA_FULL_ERROR", None)
    return e


def dswarm(*args: str, run_dir: Path | None = None, small: bool = True, check: bool = True, cwd: Path | None = None,
           environ: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    """``dswarm [SMALL] args hydra.run.dir=run_dir``; raises with its output when ``check`` and it fails."""
    flags = [a for a in args if a.startswith("-")]  # Hydra's flags (-m) must precede the overrides
    cmd = [str(DSWARM), *flags, *(SMALL if small else []), *(a for a in args if not a.startswith("-"))]
    if run_dir is not None:
        cmd.append(f"hydra.run.dir={run_dir}")
    proc = subprocess.run(cmd, cwd=cwd or REPO, env=environ or env(), capture_output=True, text=True, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}\nSTDOUT\n{proc.stdout}\nSTDERR\n{proc.stderr}")
    return proc


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def result(run_dir: Path) -> dict:
    """summary.json less ``provenance`` (wall time, host, versions): what the run computed, which a resumed or
    sharded run must reproduce exactly."""
    return {k: v for k, v in json.loads((Path(run_dir) / "summary.json").read_text()).items() if k != "provenance"}
