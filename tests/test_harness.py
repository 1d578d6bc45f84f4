"""best/lm_eval/: the run's data as an lm-evaluation-harness task, checked by the real lm_eval."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from swarm.report.harness import REFERENCE, HarnessTask, answer_check, export, task_spec, write_harness
from tests.cli import dswarm, env, read_jsonl

ROWS = [{"input": "47+38", "output": "85", "valid": True}, {"input": "3*8+51", "output": "75", "valid": True},
        {"input": "garbage", "output": None, "valid": False}]
ASKED = {"template": "Q: {input}\nA:", "stop": "\n", "max_new_tokens": 10}


def test_the_task_asks_as_the_run_and_checks_with_the_runs_exact_judge(tmp_path):
    spec = task_spec("dswarm_arith", {"chat_template": False}, ASKED, "objectives.judging.judges.VerifierJudge", None, "r1")
    write_harness(tmp_path / "lm_eval", ROWS, spec)
    task = HarnessTask(tmp_path / "lm_eval")
    assert [r["input"] for r in task.rows()] == ["47+38", "3*8+51"]  # valid items only
    assert task.doc_to_text(task.rows()[0]) == "Q: 47+38\nA:"
    # the verifier judge reads answers least-significant digit first: 85 is "58"
    assert [task.process_results(task.rows()[0], [a])["acc"] for a in (" 58", "85", "")] == [1.0, 0.0, 0.0]
    text = (tmp_path / "lm_eval" / "dswarm_arith.yaml").read_text()
    assert "custom_dataset: !function utils.load" in text and "process_results: !function utils.process_results" in text
    assert "max_gen_toks: 10" in text and "apply_chat_template" not in text


def test_an_llm_judge_exports_the_reference_match_and_says_so():
    check, why = answer_check("objectives.judging.llm_judges.OpenAIJudge")
    assert check == REFERENCE and "not exact" in why
    assert answer_check("objectives.judging.judges.ReferenceJudge")[0] == REFERENCE


def test_dswarm_export_of_a_dir_that_is_no_run_is_one_line(tmp_path):
    out = subprocess.run([str(Path(sys.executable).parent / "dswarm-export"), str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0 and "RUN_DIR" in out.stderr


@pytest.mark.slow
def test_lm_eval_gives_a_taker_the_accuracy_the_run_gave_it(tiny_zoo, tmp_path):
    run_dir = tmp_path / "run"
    dswarm("pso.max_steps=1", "export.n_items=40", "logger=none", run_dir=run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    folder = run_dir / "best" / "lm_eval"
    assert (folder / "dswarm_arith.yaml").is_file()
    saved = {p.name: p.read_bytes() for p in folder.iterdir()}
    shutil.rmtree(folder)
    export(run_dir)  # dswarm-export writes the same task for the finished run
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == saved

    valid = [r for r in read_jsonl(run_dir / "best" / "data.jsonl") if r["valid"]]
    expected = summary["heldout"]["takers"]["h1"]
    assert expected == pytest.approx(sum(r["heldout_scores"]["h1"] for r in valid) / len(valid))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "lm_eval"), "--include_path", str(folder), "--tasks", "dswarm_arith",
         "--model", "hf", "--model_args", f"pretrained={tiny_zoo.heldout['h1']},dtype=float32", "--device", "cpu",
         "--batch_size", "16", "--output_path", str(tmp_path / "lm_eval_out")],
        cwd=tmp_path, env={**env(), "HF_DATASETS_OFFLINE": "1"}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = re.search(r"\|dswarm_arith\|.*?\|acc\s*\|[^|]*\|\s*([0-9.]+)\|", proc.stdout)
    assert row is not None, proc.stdout[-2000:]
    results = json.loads(next((tmp_path / "lm_eval_out").rglob("results_*.json")).read_text())
    assert results["results"]["dswarm_arith"]["acc,none"] == pytest.approx(expected)
    assert float(row.group(1)) == pytest.approx(expected, abs=5e-5)
    assert results["n-samples"]["dswarm_arith"]["effective"] == len(valid)
