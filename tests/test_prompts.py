import random

import pytest

from generators.prompts import few_shot_prompt, numbered, parse_items, sample_examples

TEMPLATE = "Write {n} new problems like these:\n{examples}"


def test_prompt_ends_where_next_item_begins():
    p = few_shot_prompt(["1+2", "3*4", "5-1"], 5, TEMPLATE)
    assert p == "Write 5 new problems like these:\n1. 1+2\n2. 3*4\n3. 5-1\n4."


def test_prompt_flattens_multiline_examples_and_checks_n():
    assert few_shot_prompt(["a\nb"], 2, "{n}:{examples}") == "2:1. a b\n2."
    with pytest.raises(ValueError):
        few_shot_prompt(["a"], 0, TEMPLATE)


def test_numbered():
    assert numbered(["a", "b"], start=4) == "4. a\n5. b\n"
    assert numbered([]) == ""


def test_sample_examples_is_seeded_and_distinct():
    pool = [str(i) for i in range(20)]
    a = sample_examples(pool, 5, random.Random(1))
    assert a == sample_examples(pool, 5, random.Random(1))
    assert len(set(a)) == 5 and set(a) <= set(pool)
    assert sorted(sample_examples(pool[:3], 10, random.Random(0))) == pool[:3]
    assert sample_examples([], 3, random.Random(0)) == []


def test_parse_continuation_of_prompt():
    # the prompt ended with "4.", so the first line is item 4
    assert parse_items(" 47+38\n5. 12*7\n6. 3-1\n", 3, 4) == ["47+38", "12*7", "3-1"]


def test_parse_paren_numbers_and_extra_text():
    text = "Sure! Here they are:\n4) 1+1\nsome junk\n5) 2+2  \n\n6. 3+3\nWrite more"
    assert parse_items(text, 3, 4) == ["1+1", "2+2", "3+3"]


def test_parse_fewer_items_than_n():
    assert parse_items(" 1+1\n5. 2+2", 4, 4) == ["1+1", "2+2", None, None]


def test_parse_empty_and_no_numbers():
    assert parse_items("", 3, 4) == [None, None, None]
    assert parse_items(None, 2, 1) == [None, None]
    assert parse_items("just some words\nand more", 2, 4) == ["just some words", None]
    assert parse_items("anything", 0, 1) == []


def test_parse_duplicated_and_renumbered():
    # numbers are not trusted: every numbered line counts, in order
    assert parse_items("4. a\n4. b\n9. c\n1. d", 4, 4) == ["a", "b", "c", "d"]
    assert parse_items("1. a\n2. b", 3, 6) == ["a", "b", None]  # a model that restarts at 1


def test_parse_empty_items_are_none_and_extra_dropped():
    assert parse_items("\n5.\n6. x\n7. y\n8. z", 3, 4) == [None, None, "x"]
    assert parse_items(" a\n5. b\n6. c\n7. d", 2, 4) == ["a", "b"]


def test_parse_unicode_and_decimals_are_not_numbers():
    assert parse_items(" ünïcødé ✓\n5. 日本語\n6. 3.5 apples", 3, 4) == ["ünïcødé ✓", "日本語", "3.5 apples"]
    assert parse_items("3.5 is a number\n4.5 too", 2, 4) == ["3.5 is a number", None]


def test_parse_never_raises_on_junk():
    rng = random.Random(0)
    alphabet = "0123456789.)( \n\tab+-*é"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        out = parse_items(text, 5, 4)
        assert len(out) == 5 and all(x is None or isinstance(x, str) and x for x in out)
