"""Reasoning takers and judge modes: the task's answer extraction, the panel applying it, the judge prompts."""
from __future__ import annotations

import pytest
import torch

from generators.takers.lora_panel import AnswerSettings, TakerPanel
from objectives.judging.answers import answer_is, last_number, make_extractor, resolve_rule
from objectives.judging.llm_judges import HFLLMJudge
from objectives.tasks.item import Item
from tests.cli import dswarm, read_jsonl


@pytest.mark.parametrize("text, want", [
    ("She has 3 + 4 = 7 apples.\nThe answer is 7.", "7"),
    ("Total: $1,234.50 #### 1234.5", "1234.5"),
    ("First 12, then 30, so 42", "42"),
    ("no numbers here", ""),
])
def test_last_number(text, want):
    assert last_number(text) == want


@pytest.mark.parametrize("text, want", [
    ("Let me think. Einstein was a good student. The answer is he did well in school.", "he did well in school"),
    ("reasoning...\nAnswer: Paris\nmore", "Paris"),
    ("The answer is 3.5 meters. Done.", "3.5 meters"),
    ("just a final line\nfinal line here", "final line here"),
    ("", ""),
])
def test_answer_is(text, want):
    assert answer_is(text) == want


def test_regex_rule_and_auto():
    extract = make_extractor(r"regex:\[\[(.+?)\]\]")
    assert extract("think [[a]] then [[b]]") == "b" and extract("none") == ""
    assert make_extractor("regex:yes|no")("no wait, yes") == "yes"
    assert resolve_rule("auto", ["18", "3.5", "Paris"]) == "number"
    assert resolve_rule("auto", ["Paris", "42", None]) == "answer_is"


@pytest.mark.parametrize("build, setting", [
    (lambda: make_extractor("regex:("), "task.answer_extract"),
    (lambda: make_extractor("first_word"), "task.answer_extract"),
    (lambda: HFLLMJudge(lambda ps: ps, reference="maybe"), "judge.reference"),
    (lambda: HFLLMJudge(lambda ps: ps, template="{question} {reference} {answer}", reference="without"),
     "reference=without"),
])
def test_bad_settings_name_the_setting(build, setting):
    with pytest.raises(ValueError, match=setting):
        build()


class _Model:
    """Stands in for LoraModel: records the prompts and settings, replies with fixed reasoning."""

    def __init__(self) -> None:
        self.calls = []

    def generate_each(self, vectors, prompts, **kwargs):
        self.calls.append(kwargs)
        return [[f"Step one... so the answer is {n}." for n in range(len(prompts))] for _ in vectors]


def answers(model: _Model, settings: AnswerSettings, questions: list[str]) -> list[str]:
    """One taker's answers to ``questions`` through a one-taker panel on ``model``."""
    return TakerPanel(model, torch.zeros(1, 3), ["t0"], settings).answer(0, questions)


def test_reasoning_panel_returns_only_the_extracted_answer():
    model = _Model()
    reasoning = AnswerSettings("Q: {input}\nThink.", max_new_tokens=200, stop=None, batch_size=4, extract=last_number)
    assert answers(model, reasoning, ["a?", "b?"]) == ["0", "1"]
    assert model.calls[-1]["stop"] is None and model.calls[-1]["max_new_tokens"] == 200
    line = AnswerSettings("Q: {input}", 8, "\n", 4)
    assert answers(model, line, ["a?"]) == ["Step one... so the answer is 0."]  # line mode: as generated


def test_judge_reference_modes_show_or_hide_the_reference():
    prompts = []
    item, answer = Item("Who wrote Hamlet?", "Bruce Clifton-Schoer", True), "Shakespeare"
    for mode in ("with", "without"):
        HFLLMJudge(lambda ps: prompts.extend(ps) or ["7"] * len(ps), reference=mode).score([item], [answer])
    assert "Reference answer: Bruce Clifton-Schoer" in prompts[0] and "Shakespeare" in prompts[0]
    assert "Bruce" not in prompts[1] and "Reference" not in prompts[1] and "Shakespeare" in prompts[1]


@pytest.mark.slow
def test_cli_reasoning_takers_run_end_to_end(tmp_path):
    dswarm("taker.answer=reasoning", "taker.reasoning_template='Q: {input} A:'", "taker.reasoning_max_new_tokens=12",
           "generator.prompts_per_step=1", "export.n_items=5", "pso.max_steps=1", "logger=none", run_dir=tmp_path / "run")
    rows = read_jsonl(tmp_path / "run" / "data" / "step_001.jsonl")
    scored = [s for r in rows if r["valid"] for s in r["scores"].values()]
    assert scored and all(s in (0.0, 1.0) for s in scored)
    bad = dswarm("taker.answer=ramble", "logger=none", run_dir=tmp_path / "bad", check=False)
    assert bad.returncode == 2 and "taker.answer" in bad.stderr
