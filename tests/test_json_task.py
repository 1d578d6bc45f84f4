"""task=json: loading the reference format, one-line errors, the item format round trip."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from generators.prompts import few_shot_prompt, parse_items
from objectives.tasks.item import Item
from objectives.tasks.json_task import JsonTask, load_json_task, read_queries, read_query_file

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
GSM8K = DATA / "gsm8k.json"
needs_data = pytest.mark.skipif(not GSM8K.is_file(), reason="../shared/data/gsm8k.json not present")


def write(tmp_path: Path, name: str, content) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


SMALL = {"name": "toy", "dev": [{"input": f"How much is {i} plus {i}?", "output": str(2 * i)} for i in range(20)],
         "test": [{"input": f"How much is {i} times 3?", "output": 3 * i} for i in range(5)]}


@needs_data
def test_loads_gsm8k_with_seeded_subsample():
    full = load_json_task(GSM8K)
    assert full.name == "gsm8k" and len(full.dev) == 7473 and len(full.test) == 1319
    assert all(it.valid and it.output for it in full.dev[:50])
    a = load_json_task(GSM8K, max_dev=50, max_test=20, seed=1)
    b = load_json_task(GSM8K, max_dev=50, max_test=20, seed=1)
    c = load_json_task(GSM8K, max_dev=50, max_test=20, seed=2)
    assert len(a.dev) == 50 and len(a.test) == 20
    assert a.dev == b.dev and a.dev != c.dev
    positions = [full.dev.index(it) for it in a.dev]
    assert positions == sorted(positions)  # order kept
    assert a.realism_corpus() == [it.input for it in a.test]


def test_outputs_become_strings_and_missing_output_is_none(tmp_path):
    data = {"dev": [{"input": "What is two plus two?", "output": 4}, {"input": "Name a colour please."}], "test": []}
    task = JsonTask(write(tmp_path, "t.json", data))
    assert task.name == "t"
    assert task.dev[0] == Item("What is two plus two?", "4", True)
    assert task.dev[1].output is None
    assert task.realism_corpus() == [it.input for it in task.dev]  # no test: dev inputs


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "expected a JSON object"),
        ({"dev": []}, "missing or non-list 'test'"),
        ({"test": []}, "missing or non-list 'dev'"),
        ({"dev": [], "test": []}, "'dev' is empty"),
        ({"dev": [{"output": "1"}], "test": []}, "dev[0] has no non-empty 'input'"),
        ({"dev": [{"input": "ok question here"}], "test": [{"input": "  "}]}, "test[0] has no non-empty 'input'"),
    ],
)
def test_malformed_files_fail_with_one_line(tmp_path, content, message):
    path = write(tmp_path, "bad.json", content)
    with pytest.raises(ValueError) as err:
        load_json_task(path)
    text = str(err.value)
    assert message in text and str(path) in text and "\n" not in text


def test_a_utf8_bom_is_read_like_plain_utf8(tmp_path):
    """Windows editors save JSON with a byte order mark; json.loads refuses it, the task file reader does not."""
    data = {"dev": [{"input": "Quelle est la capitale de la France ?", "output": "Paris"}], "test": []}
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(data, ensure_ascii=False).encode())
    assert load_json_task(path).dev[0] == Item("Quelle est la capitale de la France ?", "Paris", True)
    queries = tmp_path / "queries.txt"
    queries.write_bytes(b"\xef\xbb\xbfWhat is a BOM?\nWhy does it matter?\n")
    assert read_query_file(queries)[0] == "What is a BOM?"


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_json_task(tmp_path / "nope.json")
    assert "nope.json" in str(err.value) and "\n" not in str(err.value)


def test_parse_item_round_trips_format_example(tmp_path):
    task = JsonTask(write(tmp_path, "t.json", SMALL))
    for item in task.dev + task.test:
        line = task.format_example(item)
        assert "\n" not in line
        assert task.parse_item(line) == Item(" ".join(item.input.split()), item.output, True)
    multi = Item("A farmer has\n 3 cows  and 2 dogs. How many animals?", "5", True)
    assert task.parse_item(task.format_example(multi)) == Item("A farmer has 3 cows and 2 dogs. How many animals?", "5", True)


@pytest.mark.parametrize(
    "text, expected",
    [
        (None, Item("", None, False)),
        ("", Item("", None, False)),
        ("How many legs do 3 spiders have? Answer: 24", Item("How many legs do 3 spiders have?", "24", True)),
        ("How many legs do 3 spiders have?answer :24.", Item("How many legs do 3 spiders have?", "24.", True)),
        ("What is the answer: is it 4 or 5? Answer: 4", Item("What is the answer: is it 4 or 5?", "4", True)),
        ("How many legs do 3 spiders have?", Item("How many legs do 3 spiders have?", None, False)),
        ("How many legs do 3 spiders have? Answer:", Item("How many legs do 3 spiders have?", None, False)),
        ("Why? Answer: 3", Item("Why?", "3", False)),  # too short
    ],
)
def test_parse_item_cases(tmp_path, text, expected):
    task = JsonTask(write(tmp_path, "t.json", SMALL))
    assert task.parse_item(text) == expected


def test_require_answer_false_accepts_open_questions(tmp_path):
    task = JsonTask(write(tmp_path, "t.json", SMALL), require_answer=False)
    assert task.parse_item("What is the best way to learn?") == Item("What is the best way to learn?", None, True)


def test_generated_list_parses_into_items(tmp_path):
    task = JsonTask(write(tmp_path, "t.json", SMALL))
    prompt = few_shot_prompt([task.format_example(it) for it in task.dev[:2]], 2, "Write {n} more:\n{examples}")
    assert prompt.endswith("2. How much is 1 plus 1? Answer: 2\n3.")
    continuation = " How much is 7 plus 8? Answer: 15\n4. Junk without answer\n5. extra? Answer: 1"
    items = [task.parse_item(t) for t in parse_items(continuation, 2, 3)]
    assert items == [Item("How much is 7 plus 8?", "15", True), Item("Junk without answer", None, False)]


@pytest.mark.parametrize("name, content", [
    ("q.json", json.dumps(["first query?", {"input": "second query?"}, 3])),
    ("q.jsonl", '{"input": "first query?"}\n\n{"input": "second query?"}\n'),
    ("q.txt", "first query?\n\nsecond query?\n"),
])
def test_realism_corpus_formats(tmp_path, name, content):
    queries = write(tmp_path, name, content)
    task = JsonTask(write(tmp_path, "t.json", SMALL), realism_corpus=queries)
    assert task.realism_corpus() == ["first query?", "second query?"]


def test_realism_corpus_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_queries(tmp_path / "none.txt")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_queries(write(tmp_path, "bad.jsonl", "{oops\n"))
    with pytest.raises(ValueError, match="no queries"):
        read_queries(write(tmp_path, "empty.txt", "\n \n"))
