"""What a component declares about itself decides the checks before models load, not its name."""
from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from objectives.tasks.json_task import JsonTask
from swarm.config.preflight import check_answers
from swarm.runtime.errors import ConfigError


def bare_writer(task, seed):
    """A generator source of someone else's whose experts write questions without answers."""


bare_writer.writes_answers = False


def plain_writer(task, seed):
    """One that says nothing: it writes answers (the default)."""


class ReferenceOnly:
    needs_reference = True


class Rater:
    """An LLM-judge-like class that needs no reference."""


def task(tmp_path, outputs: bool, require_answer: bool = True) -> JsonTask:
    rows = [{"input": "What is the capital of France?", **({"output": "Paris"} if outputs else {})},
            {"input": "Who wrote Hamlet?", **({"output": "Shakespeare"} if outputs else {})}]
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"dev": rows, "test": []}))
    return JsonTask(path, require_answer=require_answer)


def cfg(generator: str, judge: str):
    return OmegaConf.create({"generator": {"_target_": f"tests.test_preflight.{generator}"},
                             "judge": {"_target_": f"tests.test_preflight.{judge}"}, "task": {"path": "t.json"}})


def test_a_generator_that_declares_it_writes_no_answers_is_refused_on_a_task_that_requires_them(tmp_path):
    with pytest.raises(ConfigError, match=r"^generator: tests\.test_preflight\.bare_writer writes items without 'Answer"):
        check_answers(cfg("bare_writer", "Rater"), task(tmp_path, outputs=True))
    check_answers(cfg("plain_writer", "Rater"), task(tmp_path, outputs=True))
    check_answers(cfg("bare_writer", "Rater"), task(tmp_path, outputs=True, require_answer=False))


def test_a_judge_that_declares_it_needs_references_is_refused_on_a_task_without_outputs(tmp_path):
    open_questions = task(tmp_path, outputs=False, require_answer=False)
    with pytest.raises(ConfigError, match=r"^judge: tests\.test_preflight\.ReferenceOnly compares answers"):
        check_answers(cfg("plain_writer", "ReferenceOnly"), open_questions)
    check_answers(cfg("plain_writer", "Rater"), open_questions)
    check_answers(cfg("plain_writer", "ReferenceOnly"), task(tmp_path, outputs=True))


def test_the_built_in_zoo_and_reference_judge_declare_it():
    from generators.sources.zoo import zoo_generators
    from objectives.judging.judges import ReferenceJudge

    assert zoo_generators.writes_answers is False and ReferenceJudge.needs_reference is True
