"""benchmarks/reproduce.py's choices and table rows: what a re-run with other seeds and methods reports.

The sweep itself is `dswarm -m` (tested elsewhere); here: which methods and seeds a re-run
uses, bad arguments as one line, and that a paired difference is only computed over seeds
both methods finished.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce.py"


@pytest.fixture(scope="module")
def reproduce():
    spec = importlib.util.spec_from_file_location("reproduce", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_methods_subset_keeps_the_reference_first(reproduce):
    assert reproduce.chosen_methods("ties,base_model") == ["data_swarms", "base_model", "ties"]
    every = reproduce.chosen_methods(None)
    assert every[0] == "data_swarms" and "adversarial" not in every and len(every) == len(set(every)) >= 9
    with pytest.raises(SystemExit, match=r"--methods: not a compared method: nope, adversarial "):
        reproduce.chosen_methods("ties,nope,adversarial")


def test_seeds_replace_the_protocols(reproduce):
    protocol = reproduce.PROTOCOL["seeds"]
    assert len(protocol) >= 5 and reproduce.chosen_seeds(None, protocol) == protocol
    assert reproduce.chosen_seeds("21,22,23,24,25,26", protocol) == [21, 22, 23, 24, 25, 26]
    assert reproduce.chosen_seeds("201,202", reproduce.SMOKE["seeds"]) == [201, 202]
    for bad in ("21,22,23,24", "21,22,23,24,24", "21,x"):
        with pytest.raises(SystemExit, match="--seeds"):
            reproduce.chosen_seeds(bad, protocol)


def test_a_difference_needs_every_seed_of_both_methods(reproduce):
    cells = {
        ("difficulty", "search", "data_swarms"): {21: 0.5, 22: 0.7},
        ("difficulty", "search", "ties"): {21: 0.25, 22: 0.25},
        ("difficulty", "search", "base_model"): {21: 0.5},  # an interrupted cell
    }
    rows = {r["method"]: r for r in reproduce.rows(cells, ["data_swarms", "ties", "base_model"], ["difficulty"], [21, 22])}
    assert rows["ties"]["diff"] == pytest.approx(0.35) and rows["ties"]["n"] == 2
    assert "diff" not in rows["base_model"] and rows["base_model"]["n"] == 1
    assert "diff" not in rows["data_swarms"] and rows["data_swarms"]["mean"] == pytest.approx(0.6)


@pytest.mark.parametrize("args, message", [
    (["--methods", "nope"], "reproduce: --methods: not a compared method: nope"),
    (["--seeds", "1,2"], "reproduce: --seeds: need at least 5 distinct seeds"),
    (["--bogus"], "reproduce: unknown argument '--bogus'"),
])
@pytest.mark.slow
def test_bad_arguments_are_one_line(args, message, tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--reuse", "--out", str(tmp_path), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(message)
