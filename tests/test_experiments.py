"""conf/experiment overlays compose, and the realism corpus may come from real queries (a file or `datasets`)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from objectives.tasks.json_task import JsonTask
from tests.cli import REPO, dswarm

OVERLAYS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("name", OVERLAYS)
def test_overlay_composes(name):
    proc = dswarm("--cfg=job", f"+experiment={name}", small=False)
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["task"]["_target_"] == "objectives.tasks.json_task.JsonTask" and cfg["task"]["path"].startswith("../shared/data/")
    if name.startswith("paper_"):
        assert cfg["generator"]["_target_"] == "generators.sources.hf.hf_generators" and len(cfg["generator"]["adapters"]) == 4
        assert "gemma-2-9b-it" in cfg["generator"]["base"]
        assert cfg["generator"]["items_per_prompt"] * cfg["generator"]["prompts_per_step"] == 200
        assert cfg["verifier"]["_target_"] == "objectives.judging.verify.OpenAIVerifier" and cfg["taker"]["answer"] == "reasoning"
    else:
        assert cfg["generator"]["_target_"].endswith("smollm2_generators")
        assert cfg["taker"]["_target_"].endswith("smollm2_takers")
    if name.endswith("truthfulqa"):
        assert cfg["judge"]["reference"] == "without"


def test_overlays_are_the_four_settings():
    assert OVERLAYS == ["mini_gsm8k", "mini_truthfulqa", "paper_gsm8k", "paper_truthfulqa"]


def _task(tmp_path: Path, corpus: str | None) -> JsonTask:
    data = {"dev": [{"input": "What is two plus two?", "output": "4"}], "test": [{"input": "What is one plus one?", "output": "2"}]}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    return JsonTask(path, realism_corpus=corpus)


def test_default_corpus_is_named_a_proxy(tmp_path):
    task = _task(tmp_path, None)
    assert task.realism_corpus() == ["What is one plus one?"]
    assert task.realism_source.startswith("proxy: the task's own test inputs (1)")


def test_corpus_from_a_datasets_source(tmp_path):
    folder = tmp_path / "queries"
    folder.mkdir()
    rows = [{"id": i, "question": f"how do I fix error {i} in my build?"} for i in range(5)] + [{"id": 9, "question": " "}]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = _task(tmp_path, f"datasets:{folder}")
    assert task.realism_corpus() == [f"how do I fix error {i} in my build?" for i in range(5)]
    assert task.realism_source == f"real queries: datasets:{folder} (5)"
    assert _task(tmp_path, f"datasets:{folder}:train:question").realism_corpus() == task.realism_corpus()
    with pytest.raises(ValueError, match="no query field"):
        _task(tmp_path, f"datasets:{folder}:train:answer")
    with pytest.raises(ValueError, match="cannot load"):
        _task(tmp_path, f"datasets:{tmp_path / 'absent'}")


def test_corpus_from_a_file_is_named(tmp_path):
    (tmp_path / "q.txt").write_text("real query one\nreal query two\n")
    task = _task(tmp_path, str(tmp_path / "q.txt"))
    assert task.realism_source == f"real queries: {tmp_path / 'q.txt'} (2)"
