"""Property tests of every parser of model output: random text never makes them raise,
and well-formed text always round-trips.

- generators/prompts.parse_items: exactly n slots, each None or one clean line;
- objectives/arith.parse_answer and ArithTask.parse_item;
- objectives/judges.extract_number and objectives/llm_judges.parse_rating;
- objectives/tasks.JsonTask.parse_item.

Soaked with FUZZ_EXAMPLES=5000 (all pass); the suite runs 120 per property.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from generators.prompts import _NUMBERED, few_shot_prompt, numbered, parse_items
from objectives.judging.judges import extract_number
from objectives.judging.llm_judges import parse_rating
from objectives.tasks.arith import ArithTask, canonical, format_answer, parse_answer, solve
from objectives.tasks.item import Item
from objectives.tasks.json_task import JsonTask

FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "120")), deadline=None)  # FUZZ_EXAMPLES=5000 to soak
# Model output: any text, biased towards the characters parsers care about.
_NASTY = st.sampled_from(list("0123456789.)-+*#$,%:\n\r\t \u2028\x0b\x85") + ["Answer:", "####", "answer is", "1.", "\r\n"])
TEXT = st.one_of(st.text(), st.lists(st.one_of(_NASTY, st.text(max_size=3)), max_size=40).map("".join))
# One item line: no line breaks of any kind (str.splitlines knows many), not blank.
LINE = st.text(st.characters(blacklist_categories=("Cc", "Zl", "Zp", "Cs"), blacklist_characters="\x1c\x1d\x1e\x85"), min_size=1, max_size=30).map(str.strip).filter(bool)

_TASK = ArithTask(n_dev=4, n_test=4, seed=0)


# ------------------------------------------------------------------ parse_items

@pytest.mark.slow
@FUZZ
@given(TEXT, st.integers(-3, 12), st.integers(0, 10_000))
@example("", 5, 1)
@example("\n\n\n", 3, 4)
@example("9999999999999. x\n1) y", 2, 1)
def test_parse_items_gives_exactly_n_clean_slots(text, n, start):
    items = parse_items(text, n, start)
    assert len(items) == max(n, 0)
    for item in items:
        assert item is None or (isinstance(item, str) and item == item.strip() and item and len(item.splitlines()) == 1)


@FUZZ
@given(st.lists(LINE, min_size=1, max_size=8), st.integers(1, 12), st.integers(1, 500), st.booleans())
def test_parse_items_round_trips_a_numbered_list(lines, n, start, continuation):
    """What the prompt asks for: the continuation of ``"{start}."``, then ``"{start+1}. ..."`` lines."""
    assume(all(len(line.splitlines()) == 1 for line in lines))
    assume(not (continuation and _NUMBERED.match(lines[0])))  # "start. 7. x" continued is " 7. x": ambiguous
    text = numbered(lines, start)
    if continuation:  # the model continues the prompt's trailing "start." itself
        text = " " + text.split(". ", 1)[1]
    expected = [line or None for line in lines[:n]]
    assert parse_items(text, n, start) == expected + [None] * (n - len(expected))


@FUZZ
@given(st.lists(LINE, min_size=1, max_size=6), st.integers(1, 6))
def test_prompt_then_parse(examples, n):
    """A prompt built from examples ends with the number the parser continues from."""
    assume(all(len(e.splitlines()) == 1 for e in examples))
    prompt = few_shot_prompt(examples, n, "Write {n}:\n{examples}")
    assert prompt.endswith(f"{len(examples) + 1}.")
    assert parse_items("", n, len(examples) + 1) == [None] * n


# ------------------------------------------------------------------ arith answers and items

@FUZZ
@given(TEXT)
def test_parse_answer_never_raises(text):
    value = parse_answer(text)
    assert value is None or isinstance(value, int)


@FUZZ
@given(st.integers(-10**12, 10**12), st.sampled_from(["", "\n", " ", "\nQ: 1+1", " is it", ".", "abc"]))
def test_parse_answer_reads_format_answer(value, tail):
    assert parse_answer(format_answer(value) + tail) == value


@FUZZ
@given(st.one_of(st.none(), TEXT))
def test_arith_parse_item_never_raises(text):
    item = _TASK.parse_item(text)
    assert isinstance(item, Item) and isinstance(item.input, str)
    assert item.valid == (solve(item.input) is not None)
    assert item.output == (str(solve(item.input)) if item.valid else None)


@FUZZ
@given(st.integers(0, 9999), st.sampled_from("+-*"), st.integers(0, 9999),
       st.one_of(st.none(), st.tuples(st.sampled_from("+-*"), st.integers(0, 9999))), st.sampled_from(["", " ", "  ", "\t"]))
def test_arith_parse_item_reads_well_formed_problems(a, op, b, more, space):
    text = f"{space}{a}{space}{op}{space}{b}" + (f"{space}{more[0]}{space}{more[1]}" if more else "") + space
    item = _TASK.parse_item(text)
    assert item.valid and item.input == canonical(text)
    expected = eval(canonical(text))  # noqa: S307 (digits and + - * only, built above)
    assert item.output == str(expected)


@FUZZ
@given(st.integers(10**4, 10**9), st.sampled_from("+-*"), st.integers(0, 99))
def test_arith_parse_item_rejects_long_operands(a, op, b):
    assert not _TASK.parse_item(f"{a}{op}{b}").valid


# ------------------------------------------------------------------ judges' extractors

@FUZZ
@given(TEXT)
@example("1" * 400)
@example("1e999")
@example("." * 50 + "5")
def test_extract_number_never_raises(text):
    value = extract_number(text)
    assert value is None or (isinstance(value, float) and math.isfinite(value))


@FUZZ
@given(st.integers(-10**9, 10**9), st.sampled_from(["The answer is {}.", "#### {}", "so {}", "answer: {}", "{}"]), st.booleans())
def test_extract_number_reads_final_answers(value, form, commas):
    written = f"{value:,}" if commas else str(value)
    assert extract_number("Let me think: 3 apples and 4 pears. " + form.format(written)) == float(value)


@FUZZ
@given(st.decimals(min_value=-10**6, max_value=10**6, places=2, allow_nan=False, allow_infinity=False))
def test_extract_number_reads_money(value):
    assume(value != 0 or str(value)[0] != "-")
    sign = "-" if value < 0 else ""
    assert extract_number(f"It costs {sign}${abs(value):,.2f} in total.") == float(value)


@FUZZ
@given(TEXT)
def test_parse_rating_never_raises(text):
    rating = parse_rating(text)
    assert rating is None or 0.0 <= rating <= 1.0


@FUZZ
@given(st.integers(1, 10), st.sampled_from(["{}", "Rating: {}", "{}/10", " {} - good", "I'd say {}."]))
def test_parse_rating_reads_ratings(r, form):
    assert parse_rating(form.format(r)) == (r - 1) / 9


# ------------------------------------------------------------------ task=json items

def _json_task() -> JsonTask:
    path = Path(tempfile.mkdtemp()) / "task.json"
    path.write_text(json.dumps({"dev": [{"input": "What is two plus two?", "output": "4"}], "test": []}))
    return JsonTask(path, min_question_chars=10)


_JSON = _json_task()


@FUZZ
@given(st.one_of(st.none(), TEXT))
def test_json_parse_item_never_raises(text):
    item = _JSON.parse_item(text)
    assert isinstance(item, Item) and "\n" not in item.input and (item.output is None or "\n" not in item.output)
    assert not item.valid or (len(item.input) >= 10 and item.output)


@FUZZ
@given(LINE.map(lambda s: f"What is {s}?"), LINE)
def test_json_parse_item_round_trips_format_example(question, answer):
    assume("answer" not in (question + answer).lower())
    item = Item(question, answer, True)
    parsed = _JSON.parse_item(_JSON.format_example(item))
    assert parsed.valid and parsed.input == " ".join(question.split()) and parsed.output == " ".join(answer.split())
