"""Answer verification: exact, openai (loopback stand-in), model, none; the CLI records both validities."""
from __future__ import annotations

import json

import pytest
import torch

from objectives.judging.scores import defeat_all, format_valid_sets
from objectives.judging.verify import ExactVerifier, ModelVerifier, NoVerifier, OpenAIVerifier, auto_verifier, token_f1, verify
from objectives.tasks.item import Item
from tests.cli import FAST, SMALL, dswarm, read_jsonl
from tools.judge_server import JudgeServer, reply, verifier_overrides

ENV = "DSWARM_TEST_VERIFIER_KEY"


def test_exact_verifier_rejects_a_wrong_arith_answer():
    items = [Item("47+38", "85", True), Item("7*6", "43", True), Item("junk", None, False)]
    out = verify(items, ExactVerifier())
    assert [it.valid for it in out] == [True, False, False]
    assert [it.verified for it in out] == [True, False, None]  # the invalid item is never checked
    assert format_valid_sets([out]).tolist() == [[True, True, False]]
    assert out[1].to_json() == {"input": "7*6", "output": "43", "valid": False, "verified": False}


def test_none_checks_nothing_and_auto_picks_by_task():
    items = [Item("Who wrote Hamlet?", "Bruce Clifton-Schoer", True)]
    assert verify(items, NoVerifier()) == items and items[0].verified is None
    assert auto_verifier(exact_answers=True).kind == "exact"
    assert auto_verifier(exact_answers=False).kind == "none"
    with pytest.raises(ValueError, match="no exact answers"):
        ExactVerifier(exact_answers=False)


def test_model_verifier_counts_agreeing_samples():
    replies = {"Question: 2+2?\nAnswer:": [" 4", " 4", " 5"], "Question: Capital of France?\nAnswer:": [" Paris", " Lyon", " Rome"]}
    calls = []

    def generate(prompts):
        calls.append(len(prompts))
        seen: dict[str, int] = {}
        out = []
        for p in prompts:
            out.append(replies[p][seen.get(p, 0)])
            seen[p] = seen.get(p, 0) + 1
        return out

    items = [Item("2+2?", "4", True), Item("Capital of France?", "Paris", True)]
    assert ModelVerifier(generate, samples=3).confirm(items) == [True, False]  # 2 of 3 vs 1 of 3
    assert ModelVerifier(generate, samples=3, agree=1).confirm(items) == [True, True]
    assert calls == [6, 6]
    with pytest.raises(ValueError, match="agree"):
        ModelVerifier(generate, samples=2, agree=3)


def test_token_f1_by_hand():
    assert token_f1("the cat sat", "cat sat down") == pytest.approx(2 * (2 / 2) * (2 / 3) / (2 / 2 + 2 / 3))
    assert token_f1("", "x") == 0.0


def test_openai_verifier_against_the_loopback_stand_in(monkeypatch):
    monkeypatch.setenv(ENV, "sk-verify")
    items = [Item(f"What is {i} plus {i}?", str(2 * i), True) for i in range(12)]
    with JudgeServer(key="sk-verify") as server:
        v = OpenAIVerifier(base_url=server.url, model="m", api_key_env=ENV, max_retries=0, concurrency=2)
        got = v.confirm(items)
        assert server.requests == 12 and server.authorized == 12
    prompts = [v.template.format(question=it.input, reference=it.output) for it in items]
    assert got == ["Agree: yes" in reply(p) for p in prompts]  # the stand-in's verdicts, no more, no less
    assert 0 < sum(got) < len(got) and v.failures == 0


def test_openai_verifier_numeric_answer_must_match_its_own():
    v = OpenAIVerifier.__new__(OpenAIVerifier)
    v.failures = 0
    assert v._confirmed("Answer: 12\nAgree: yes", "12")
    assert not v._confirmed("Answer: 13\nAgree: yes", "12")  # says yes, but solved it differently
    assert v._confirmed("Answer: Paris, France\nAgree: yes", "Paris")
    assert not v._confirmed("Answer: Paris\nAgree: no", "Paris")
    assert not v._confirmed("I cannot say", "Paris") and v.failures == 1


def test_defeat_all_by_hand():
    # 1 particle, 2 takers, 4 items: item 0 both wrong, item 1 one right, item 2 one missing one wrong, item 3 unscored
    S = torch.tensor([[[0.0, 1.0, float("nan"), float("nan")], [0.2, 0.0, 0.4, float("nan")]]])
    assert defeat_all(S, torch.isfinite(S)).tolist() == [pytest.approx(2 / 3)]


@pytest.mark.slow
def test_cli_records_format_and_answer_validity_with_the_openai_verifier(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, "sk-verify")
    with JudgeServer(key="sk-verify") as server:
        dswarm(*FAST, *verifier_overrides(server, ENV), "pso.max_steps=2", "logger=none", run_dir=tmp_path / "run")
        assert server.requests > 0
    rows = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert len(rows) == 2
    for row in rows:
        assert len(row["valid/format"]) == len(row["valid/answer"]) == len(row["utility"])
        assert all(a <= f for a, f in zip(row["valid/answer"], row["valid/format"]))
        assert row["valid/answer"] == row["valid_fraction"]
    assert any(a < f for row in rows for a, f in zip(row["valid/answer"], row["valid/format"]))
    items = read_jsonl(tmp_path / "run" / "data" / "step_001.jsonl")
    checked = [it for it in items if "verified" in it]
    assert checked and all(it["valid"] == it["verified"] for it in checked)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["verifier"] == "openai" and summary["realism_corpus"].startswith("proxy:")


@pytest.mark.slow
def test_cli_without_a_verifier_on_a_text_task_says_so_once(tmp_path, monkeypatch):
    """The zoo writes bare problems: no answers to check; the judge rates answers alone (reference=without)."""
    monkeypatch.setenv(ENV, "sk-verify")
    dev = [{"input": f"{a}+{b}", "output": str(a + b)} for a in range(10, 30) for b in (11, 12)]
    path = tmp_path / "sums.json"
    path.write_text(json.dumps({"name": "sums", "dev": dev, "test": dev[:8]}))
    small = [o for o in SMALL + FAST if not o.startswith("task.")]  # n_dev / n_test: arith only
    with JudgeServer(key="sk-verify") as server:
        judge = [o.replace("verifier", "judge") for o in verifier_overrides(server, ENV)]
        proc = dswarm(*small, "task=json", f"task.path={path}", "task.require_answer=false", "task.min_question_chars=3",
                      *judge, "judge.reference=without", "pso.max_steps=2", "logger=none", run_dir=tmp_path / "run",
                      small=False)
    log = proc.stdout + proc.stderr
    assert log.count("verifier=none: the answers of generated sums items are not checked") == 1
    rows = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert all(r["valid/answer"] == r["valid/format"] for r in rows)  # nothing checked: the same
    beaten = [sum(d for d, v in zip(r["items/defeat_all"], r["valid/answer"]) if v > 0) / max(1, sum(v > 0 for v in r["valid/answer"]))
              for r in rows]
    assert log.count("sign of invented answers") == (1 if max(beaten) > 0.5 else 0)  # warned once, when it happened
