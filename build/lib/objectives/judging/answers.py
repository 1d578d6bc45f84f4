"""Final answers of takers that reason: the task says how to pull the answer out of free text.

A taker in ``taker.answer=line`` mode writes one line that *is* its answer. In
``reasoning`` mode it thinks first, so the judge must see only the answer it ends
on. The rule is the task's (``task.answer_extract``):

- ``number``     the final number (GSM8K style: after the last ``####`` or "answer is",
                 else the last number in the text), written back plainly ("1234.5");
- ``answer_is``  the text after the last "the answer is" / "Answer:" up to the end of
                 its sentence, else the last non-empty line;
- ``regex:<p>``  group 1 (or the whole match) of the last match of ``<p>``;
- ``auto``       ``number`` when most dev references are numbers, else ``answer_is``.

An extractor never raises; text with nothing to extract gives ``""`` (a wrong answer).
"""
from __future__ import annotations

import re
from typing import Callable, Sequence

from objectives.judging.judges import extract_number, is_numeric_reference

Extractor = Callable[[str], str]

_ANSWER_IS = re.compile(r"(?:answer\s+is|answer\s*:)\s*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<!\d)\.(?:\s|$)|\n")


def last_number(text: str) -> str:
    """The final number of ``text`` as a plain string ("18", "2.5"); "" when it has none."""
    value = extract_number(text)
    if value is None:
        return ""
    return str(int(value)) if value == int(value) else repr(value)


def answer_is(text: str) -> str:
    """The phrase after the last "answer is" / "Answer:", up to its sentence end; else the last line."""
    text = text or ""
    marks = list(_ANSWER_IS.finditer(text))
    if marks:
        rest = text[marks[-1].end():]
        end = _SENTENCE_END.search(rest)
        phrase = (rest[: end.start()] if end else rest).strip().strip("*\"' ")
        if phrase:
            return phrase
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def regex_extractor(pattern: str) -> Extractor:
    """Group 1 (or the whole match) of the last match of ``pattern``; "" without a match."""
    try:
        compiled = re.compile(pattern)
    except re.error as err:
        raise ValueError(f"task.answer_extract: regex:{pattern!r} does not compile ({err})") from None

    def extract(text: str) -> str:
        found = list(compiled.finditer(text or ""))
        if not found:
            return ""
        last = found[-1]
        return (last.group(1) if compiled.groups else last.group(0)).strip()

    return extract


def resolve_rule(rule: str, references: Sequence[str | None]) -> str:
    """``auto`` -> ``number`` when most references are numeric, else ``answer_is``; others unchanged."""
    if rule != "auto":
        return rule
    known = [r for r in references if r is not None]
    numeric = sum(is_numeric_reference(r) for r in known)
    return "number" if known and numeric * 2 > len(known) else "answer_is"


def make_extractor(rule: str, references: Sequence[str | None] = ()) -> Extractor:
    """The extractor named by ``rule`` (see the module doc); ``references`` resolve ``auto``."""
    rule = resolve_rule(str(rule), references)
    if rule == "number":
        return last_number
    if rule == "answer_is":
        return answer_is
    if rule.startswith("regex:"):
        return regex_extractor(rule[len("regex:"):])
    raise ValueError(f"task.answer_extract: expected auto, number, answer_is or regex:<pattern>, got {rule!r}")
