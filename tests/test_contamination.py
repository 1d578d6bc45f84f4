"""N-gram contamination (objectives/contamination.py): overlaps by hand, the screen, and what a run reports."""
import json

import pytest

from generators.writer import Writer, WriterSettings
from objectives.contamination import Contamination, ngrams, overlap, rate, reference_texts
from objectives.judging.verify import ExactVerifier, NoVerifier, verify
from objectives.realism import tokenize
from objectives.tasks.arith import ArithTask
from objectives.tasks.item import Item


def test_ngrams_by_hand():
    assert ngrams(["a", "b", "c", "d"], 2) == [("a", "b"), ("b", "c"), ("c", "d")]
    assert ngrams(["a", "b"], 3) == []


def test_overlap_is_the_share_of_the_items_ngrams_in_the_references():
    refs = Contamination({"dev": ["the cat sat on the mat"]}, n=2, threshold=0.5)
    # "the cat sat on a rug": bigrams (the cat) (cat sat) (sat on) (on a) (a rug); 3 of 5 are in the reference
    assert refs.overlaps(["the cat sat on a rug"]) == [pytest.approx(3 / 5)]
    assert refs.overlaps(["a dog ran"]) == [0.0]
    assert refs.overlaps(["The cat SAT on the mat."]) == [1.0]  # case and punctuation do not hide a copy
    assert refs.overlaps(["cat"]) == [0.0]  # shorter than n and no exact copy: no n-gram to share


def test_on_arith_an_exact_copy_of_a_dev_problem_counts():
    task = ArithTask(n_dev=20, n_test=20, seed=0)
    screen = Contamination.of_task(task, n=8, threshold=0.7)
    dev = task.dev[3].input
    fresh = "9999+1"
    assert screen.overlaps([dev, dev.replace("+", " + "), fresh]) == [1.0, 1.0, 0.0]
    assert overlap(tokenize("47+38"), set(), {tuple(tokenize("47+38"))}, 8) == 1.0


def test_screen_marks_valid_items_and_drops_them_only_when_asked():
    items = [Item("47+38", "85", True), Item("11+12", "23", True), Item("nonsense", None, False)]
    keep = Contamination({"dev": ["47+38"]}, threshold=0.7).screen(items)
    assert [(it.valid, it.overlap) for it in keep] == [(True, 1.0), (True, 0.0), (False, None)]
    drop = Contamination({"dev": ["47+38"]}, threshold=0.7, drop=True).screen(items)
    assert [(it.valid, it.overlap) for it in drop] == [(False, 1.0), (True, 0.0), (False, None)]
    assert rate(keep, 0.7) == 0.5 and rate(items, 0.7) == 0.0
    report = Contamination({"dev": ["47+38"], "test": ["1+1", "2+2"]}, threshold=0.7).report(keep)
    assert report == {"rate": 0.5, "contaminated": 1, "checked": 2, "mean_overlap": 0.5, "n": 8, "threshold": 0.7,
                      "dropped": False, "references": {"dev": 1, "test": 2}}
    assert keep[0].to_json()["overlap"] == 1.0 and "overlap" not in items[0].to_json()


class _RejectsNines:
    """A verifier that rejects every item with a 9 in it: some parsed items are confirmed, some not."""

    kind, failures, pure = "nines", 0, True

    def confirm(self, items):
        return ["9" not in item.input for item in items]


@pytest.mark.parametrize("drop", [False, True])
@pytest.mark.parametrize("verifier", [NoVerifier(), ExactVerifier(), _RejectsNines()], ids=["none", "exact", "rejects"])
def test_the_writer_checks_an_item_as_verify_then_the_screen_would(verifier, drop):
    """The writer sets the verdict and the overlap in one copy of each item: the items `verify` then `screen` give."""
    task = ArithTask(n_dev=20, n_test=20, seed=0)
    screen = Contamination.of_task(task, threshold=0.7, drop=drop)
    texts = [task.dev[0].input, task.dev[1].input.replace("+", " + "), "19+3", "12+7", "not an item", "", task.test[2].input]
    settings = WriterSettings("{examples}", 1, 1, 1, 8, 0.0, 1.0, 1)
    written = Writer(None, task, settings, verifier, screen)._items(texts)
    want = screen.screen(verify([task.parse_item(t) for t in texts], verifier))
    assert [written[t] for t in texts] == want
    assert {it.overlap for it in want} >= {1.0, 0.0, None} and any(it.verified is False for it in want) == (verifier.kind == "nines")


def test_reference_files_task_format_lists_and_text(tmp_path):
    task_file = tmp_path / "bench.json"
    task_file.write_text(json.dumps({"dev": [{"input": "a b c"}], "test": [{"input": "d e f"}, {"output": "x"}]}))
    (tmp_path / "lines.txt").write_text("one line\n\nanother line\n")
    assert reference_texts(task_file) == ["a b c", "d e f"]
    assert reference_texts(tmp_path / "lines.txt") == ["one line", "another line"]
    with pytest.raises(ValueError, match=r"task.contamination_refs\[0\]"):
        Contamination.of_task(ArithTask(n_dev=2, n_test=2), [str(tmp_path / "missing.txt")])


@pytest.mark.slow
def test_a_run_reports_contamination_per_step_in_the_summary_and_the_card(tiny_zoo, tmp_path):
    from tests.cli import read_jsonl
    from tests.inprocess import run

    refs = tmp_path / "leak.txt"
    summary = run("pso.max_steps=1", "data.save_steps=true", run_dir=tmp_path / "keep")
    items = [r for r in read_jsonl(tmp_path / "keep" / "best" / "data.jsonl") if r["valid"]]
    refs.write_text("\n".join(r["input"] for r in items[:3]) + "\n")  # three of the run's final items leak
    leaked = run("pso.max_steps=1", f"task.contamination_refs=[{refs}]", run_dir=tmp_path / "leaked")
    dropped = run("pso.max_steps=1", f"task.contamination_refs=[{refs}]", "task.drop_contaminated=true",
                  run_dir=tmp_path / "dropped")
    row = read_jsonl(tmp_path / "keep" / "metrics.jsonl")[0]
    assert len(row["contamination/rate"]) == len(row["utility"]) and len(row["contamination/overlap"]) == len(row["utility"])
    step_items = [r for r in read_jsonl(tmp_path / "keep" / "data" / "step_001.jsonl") if r["valid"]]
    assert all(0.0 <= r["overlap"] <= 1.0 for r in step_items)
    c, copies = leaked["contamination"], {r["input"] for r in items[:3]}
    rows = [r for r in read_jsonl(tmp_path / "leaked" / "best" / "data.jsonl") if "overlap" in r]
    assert all(r["overlap"] == 1.0 for r in rows if r["input"] in copies) and any(r["input"] in copies for r in rows)
    assert c["contaminated"] == sum(r["overlap"] >= 0.7 for r in rows) and c["checked"] == len(rows)
    assert c["references"][str(refs)] == 3 and c["references"]["dev"] == 40
    assert summary["contamination"]["contaminated"] <= c["contaminated"]
    assert all(not r["valid"] for r in read_jsonl(tmp_path / "dropped" / "best" / "data.jsonl") if r.get("overlap", 0) >= 0.7)
    assert dropped["contamination"]["dropped"] is True
    card = (tmp_path / "leaked" / "best" / "dataset" / "README.md").read_text()
    assert "## Contamination" in card and f"{c['contaminated']} of {c['checked']} checked items" in card


def test_overlaps_are_remembered_per_text_and_equal_the_function():
    """Each distinct text is measured once a run; what the memo returns is what `overlap` gives."""
    screen = Contamination({"dev": ["what is the capital of france", "47+38"]}, n=3)
    texts = ["what is the capital of spain", "47 + 38", "what is the capital of spain", "", "france"]
    want = [overlap(tokenize(t), screen.grams, screen.exact, 3) for t in texts]
    assert screen.overlaps(texts) == want == [3 / 4, 1.0, 3 / 4, 0.0, 0.0]
    assert screen.overlap_of.cache_info().misses == len(set(texts)) == 4  # each distinct text measured once
    assert screen.overlaps(list(reversed(texts))) == list(reversed(want))
    assert screen.overlap_of.cache_info().misses == 4  # and not again
