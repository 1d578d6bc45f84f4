"""The golden run: a small fixed run whose results are committed under tests/golden/run/, so that a change
altering what a run computes fails tests/test_golden.py until the copy is regenerated on purpose:

    .venv/bin/python -m tests.golden        # rerun the golden run, overwrite tests/golden/run/, then commit it

docs/claim.md says when such a change means the claim's tables must be re-run. The comparison leaves out
what legitimately differs between two runs of the same code, and nothing else: timings (``seconds`` and
``time/*`` in metrics.jsonl) and summary.json's ``provenance`` (git commit, host, package versions, wall
seconds). No other compared field holds a path, a time or a version. The run's zoo (the tiny zoo's weights)
and the exported generator's weights are compared by digest.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from generators.zoo import weights_digest
from tests.cli import dswarm, read_jsonl

GOLDEN = Path(__file__).parent / "golden" / "run"
REGENERATE = ".venv/bin/python -m tests.golden"
# Self-contained (not tests/cli.py's SMALL, which other tests may change): the tiny zoo, 2 steps, every
# objective component (mixed), held-out zoo models only (no SmolLM2: its cost, not its variability).
ARGS = (
    "zoo.size=tiny", "task.n_dev=40", "task.n_test=40", "generator.prompts_per_step=2", "export.n_items=20",
    "objective=mixed", "objective.novelty_items=20", "pso.max_steps=2", "seed=3", "taker.heldout=[h1,h2,h3]",
    "select.candidates=4", "select.n_items=10", "logger=none", "progress=false", "threads=1",
)
FILES = ("summary.json", "metrics.jsonl", "data/reference.json", "data/step_001.jsonl", "data/step_002.jsonl",
         "data/selection.jsonl", "best/data.jsonl")
DIGESTS = "digests.json"  # the zoo's and the exported generator's weights


def _untimed(row: dict) -> dict:
    """A row without what differs between two runs of the same code: its timings and the run's provenance."""
    return {k: v for k, v in row.items() if k not in ("seconds", "provenance") and not k.startswith("time/")}


def results(run_dir: Path, zoo_root: Path) -> dict[str, object]:
    """What the run in ``run_dir`` computed: every compared file (timings left out) and the weights' digests."""
    out: dict[str, object] = {}
    for rel in FILES:
        path = run_dir / rel
        out[rel] = [_untimed(r) for r in read_jsonl(path)] if rel.endswith(".jsonl") else _untimed(json.loads(path.read_text()))
    out[DIGESTS] = {"zoo": zoo_root.name, "zoo_weights": weights_digest(list(zoo_root.rglob("*.safetensors"))),
                    "best_generator": weights_digest([run_dir / "best" / "generator" / "adapter_model.safetensors"])}
    return out


def save(found: dict[str, object], root: Path) -> None:
    """Write ``results`` as the files they came from (JSON lines one row a line, JSON indented)."""
    for rel, content in found.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in content) if rel.endswith(".jsonl") \
            else json.dumps(content, indent=1, sort_keys=True) + "\n"
        path.write_text(text)


def load(root: Path = GOLDEN) -> dict[str, object]:
    """The committed copy, as ``results`` gives it."""
    return {rel: read_jsonl(root / rel) if rel.endswith(".jsonl") else json.loads((root / rel).read_text())
            for rel in (*FILES, DIGESTS)}


def first_difference(want: object, got: object, where: str = "") -> str | None:
    """Where two results first differ (``file: key/index``) and how, or None when they are equal."""
    if isinstance(want, dict) and isinstance(got, dict):
        for key in sorted(set(want) | set(got)):
            if key not in want or key not in got:
                return f"{where}/{key}: only in the {'golden copy' if key in want else 'new run'}"
            found = first_difference(want[key], got[key], f"{where}/{key}" if where else key)
            if found:
                return found
        return None
    if isinstance(want, list) and isinstance(got, list):
        for i, (w, g) in enumerate(zip(want, got)):
            found = first_difference(w, g, f"{where}[{i}]")
            if found:
                return found
        return None if len(want) == len(got) else f"{where}: {len(want)} rows in the golden copy, {len(got)} now"
    return None if want == got else f"{where}: golden {want!r}, now {got!r}"


def run(run_dir: Path) -> Path:
    dswarm(*ARGS, small=False, run_dir=run_dir)
    return run_dir


def main() -> int:
    from generators.zoo import build_zoo

    zoo = build_zoo("tiny")
    with tempfile.TemporaryDirectory() as tmp:
        found = results(run(Path(tmp) / "run"), zoo.root)
    shutil.rmtree(GOLDEN, ignore_errors=True)
    save(found, GOLDEN)
    print(f"golden run written to {GOLDEN} (zoo {zoo.root.name}); commit it with a line in docs/claim.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
