"""score_sets: every taker answers each distinct valid input once, each distinct (item, answer) is judged once,
and every copy gets its score; expectations by hand."""
from __future__ import annotations

import math

from objectives.judging.scores import score_sets
from objectives.tasks.item import Item


def _exact(items: list[Item], answers: list[str]) -> list[float | None]:
    return [float(a == it.output) for it, a in zip(items, answers)]


class Counting:
    """answer_all and judge that record what they were asked."""

    def __init__(self, answers: dict[str, list[str | None]], judge=_exact) -> None:
        self.answers, self.judge_fn = answers, judge
        self.asked: list[list[str]] = []
        self.judged: list[tuple[str, str | None, str]] = []

    def answer_all(self, inputs: list[str]) -> list[list[str | None]]:
        self.asked.append(list(inputs))
        return [[self.answers[text][t] for text in inputs] for t in range(2)]

    def judge(self, items: list[Item], answers: list[str]) -> list[float | None]:
        self.judged += [(it.input, it.output, a) for it, a in zip(items, answers)]
        return self.judge_fn(items, answers)


def _values(scores) -> list[list[float | None]]:
    return [[None if math.isnan(v) else v for v in row] for row in scores.values.tolist()]


def test_copies_are_answered_and_judged_once_and_every_copy_gets_the_score():
    a, b, c = Item("1+1", "2", True), Item("2*3", "6", True), Item("9-4", "5", True)
    bad = Item("garbage", None, False)
    calls = Counting({"1+1": ["2", "3"], "2*3": ["6", "6"], "9-4": ["5", "1"]})
    first, second = score_sets([[a, b, bad, a], [b, c]], calls.answer_all, 2, calls.judge)
    assert calls.asked == [["1+1", "2*3", "9-4"]]  # one call, each distinct input once
    assert len(calls.judged) == 6  # 3 distinct items x 2 takers, not 6 copies x 2
    assert _values(first) == [[1.0, 1.0, None, 1.0], [0.0, 1.0, None, 0.0]]
    assert _values(second) == [[1.0, 1.0], [1.0, 0.0]]
    assert first.valid.tolist() == [True, True, False, True] and (first.missing, second.missing) == (0, 0)


def test_items_that_share_an_input_but_not_a_reference_answer_are_judged_apart():
    right, wrong = Item("2+2", "4", True), Item("2+2", "5", True)
    calls = Counting({"2+2": ["4", "5"]})
    (scores,) = score_sets([[right, wrong]], calls.answer_all, 2, calls.judge)
    assert calls.asked == [["2+2"]]
    assert _values(scores) == [[1.0, 0.0], [0.0, 1.0]]


def test_a_missing_answer_or_a_failed_judgement_is_missing_for_every_copy():
    a, b = Item("1+1", "2", True), Item("2*3", "6", True)
    calls = Counting({"1+1": ["2", None], "2*3": ["6", "6"]},
                     judge=lambda items, answers: [None if it.input == "2*3" else 1.0 for it in items])
    first, second = score_sets([[a, b, a], [b]], calls.answer_all, 2, calls.judge)
    assert _values(first) == [[1.0, None, 1.0], [None, None, None]]
    assert _values(second) == [[None], [None]]
    assert (first.missing, second.missing) == (4, 2)  # per copy and taker: the missing-score fraction is the run's
