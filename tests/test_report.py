"""dswarm-report over an ablation: a column per swept override, --by any config key with seeds collapsed,
failed / unfinished / unreadable runs counted and named, never averaged in silently.

The run dirs are written by hand (summary.json, .hydra/config.yaml and overrides.yaml as a run leaves
them), so every expected number is computed here from the values put in.
"""
from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path

import pytest
import yaml

from swarm.report.tables import main as report

UTILITY = {(0.0, 0): 0.50, (0.0, 1): 0.60, (0.5, 0): 0.20, (0.5, 1): 0.40}  # (novelty weight, seed) -> held-out utility


def summary(seed: int, utility: float) -> dict:
    return {"method": "data_swarms", "objective": "mixed", "seed": seed, "steps": 3, "stop_reason": "max_steps",
            "best_utility": utility + 0.1, "initial_best": utility, "search_takers": {"utility": utility + 0.05},
            "heldout": {"utility": utility, "valid_fraction": 0.9, "objective": {"difficulty": utility}}}


def write_run(run_dir: Path, novelty: float, seed: int, summary_text: str | None = None, error: str | None = None) -> None:
    (run_dir / ".hydra").mkdir(parents=True)
    config = {"seed": seed, "method": {"name": "data_swarms"}, "objective": {"name": "mixed", "weights": {"difficulty": 0.6, "novelty": novelty}},
              "pso": {"inertia": 0.4}}
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(
        ["objective=mixed", f"objective.weights.novelty={novelty}", f"seed={seed}"]))
    if summary_text is not None:
        (run_dir / "summary.json").write_text(summary_text)
    if error is not None:
        (run_dir / "error.txt").write_text(error)


@pytest.fixture()
def sweep(tmp_path):
    """2 novelty weights x 2 seeds finished; one failed job, one unfinished, one empty summary.json."""
    for i, ((novelty, seed), utility) in enumerate(UTILITY.items()):
        write_run(tmp_path / f"{i}_novelty={novelty},seed={seed}", novelty, seed, json.dumps(summary(seed, utility)))
    write_run(tmp_path / "4_novelty=0.5,seed=2", 0.5, 2, error="exit 3: judge: 100% of scores missing at step 2\n")
    write_run(tmp_path / "5_novelty=0.0,seed=2", 0.0, 2)
    (tmp_path / "5_novelty=0.0,seed=2" / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2}\n')
    write_run(tmp_path / "6_novelty=0.5,seed=3", 0.5, 3, summary_text="")
    return tmp_path


def table_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((path / "table.csv").read_text())))


def test_report_over_two_seeds_gives_rows_of_n_2_with_mean_and_sd(sweep, capsys):
    assert report([str(sweep), "--by", "objective.weights.novelty"]) == 0
    rows = {r["objective.weights.novelty"]: r for r in table_rows(sweep)}
    assert set(rows) == {"0.0", "0.5"} and [rows[k]["n"] for k in ("0.0", "0.5")] == ["2", "2"]
    for weight in (0.0, 0.5):
        values = [UTILITY[(weight, s)] for s in (0, 1)]
        row = rows[str(weight)]
        assert float(row["heldout/utility/mean"]) == pytest.approx(statistics.fmean(values))
        assert float(row["heldout/utility/sd"]) == pytest.approx(statistics.stdev(values))
        assert float(row["search_takers/utility/mean"]) == pytest.approx(statistics.fmean(values) + 0.05)
    assert rows["0.0"]["missing"] == "unfinished 1" and rows["0.5"]["missing"] == "failed 1, unreadable 1"
    text = (sweep / "table.md").read_text()
    assert "| 0.0 | 2 |" in text and "0.550 ± 0.071" in text  # mean ± sd of 0.5 and 0.6
    assert "runs: 7 (4 finished, 1 failed, 1 unfinished, 1 unreadable)" in capsys.readouterr().out


def test_failed_unfinished_and_unreadable_runs_are_counted_and_named(sweep):
    assert report([str(sweep)]) == 0
    text = (sweep / "table.md").read_text()
    assert "failed (1, not in the numbers):\n- 4_novelty=0.5,seed=2: exit 3: judge: 100% of scores missing at step 2" in text
    assert "unfinished (1, not in the numbers):\n- 5_novelty=0.0,seed=2: 2 step(s) logged, no summary.json" in text
    assert "unreadable (1, not in the numbers):\n- 6_novelty=0.5,seed=3: summary.json: JSONDecodeError" in text
    assert len(table_rows(sweep)) == 4  # the finished runs only


def test_one_column_per_swept_override(sweep):
    assert report([str(sweep)]) == 0
    rows = table_rows(sweep)
    assert {"objective.weights.novelty", "seed"} <= set(rows[0]) and "objective" not in {k for k in rows[0] if "=" in k}
    assert "pso.inertia" not in rows[0]  # the same in every run: not an axis
    assert sorted((r["objective.weights.novelty"], r["seed"]) for r in rows) == [("0.0", "0"), ("0.0", "1"), ("0.5", "0"), ("0.5", "1")]


def test_by_swept_collapses_the_seeds(sweep):
    assert report([str(sweep), "--by", "swept"]) == 0
    rows = table_rows(sweep)
    assert [(r["objective.weights.novelty"], r["n"]) for r in rows] == [("0.0", "2"), ("0.5", "2")] and "seed" not in rows[0]


def test_by_summary_fields_and_unknown_keys(sweep, capsys):
    assert report([str(sweep), "--by", "method,objective"]) == 0
    (row,) = table_rows(sweep)
    assert (row["method"], row["objective"], row["n"]) == ("data_swarms", "mixed", "4")
    assert report([str(sweep), "--by", "objective.weights.nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dswarm-report: error: --by: 'objective.weights.nope' is neither")


def test_one_seed_shows_no_sd(tmp_path):
    write_run(tmp_path / "a", 0.0, 0, json.dumps(summary(0, 0.5)))
    assert report([str(tmp_path), "--by", "seed"]) == 0
    assert "| 0 | 1 |" in (tmp_path / "table.md").read_text() and "±" not in (tmp_path / "table.md").read_text()
