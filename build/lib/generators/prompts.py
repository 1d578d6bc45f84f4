"""The few-shot prompt a generator continues, and the parser of its numbered items.

Task-agnostic: a template is a format string with ``{n}`` (how many new items
to write) and ``{examples}`` (the few-shot examples as a numbered list). The
prompt ends with the number of the first new item (``"4."`` after three
examples), so a plain LM continues the list: `` 47+38\\n5. 12*7\\n6. ...``.

Parsing rules of `parse_items(text, n, start)` (never raises):
- Items are single lines. A numbered line is ``<digits>.`` or ``<digits>)``
  followed by whitespace and the item text (``"4. xxx"``, ``"4) xxx"``).
- The first line of ``text`` is item ``start`` itself when it is not numbered
  and no numbered line of ``text`` carries the number ``start``: that is the
  continuation of the prompt's trailing ``"start."``. Otherwise an unnumbered
  first line is a preamble (``"Sure! Here they are:"``) and is skipped.
- Numbers are not trusted: every numbered line counts, in order of
  appearance, whatever its number (models renumber from 1, skip or repeat
  numbers). Unnumbered lines after the first are junk and ignored.
- Exactly ``n`` slots come back; missing items are ``None`` (invalid items),
  extra items are dropped; an item with empty text is ``None``.
"""
from __future__ import annotations

import random
import re
from typing import Sequence

__all__ = ["few_shot_prompt", "sample_examples", "parse_items", "numbered"]

_NUMBERED = re.compile(r"^\s*(\d{1,4})\s*[.)](?:\s+(.*?))?\s*$")


def numbered(items: Sequence[str], start: int = 1) -> str:
    """``"1. a\\n2. b\\n"``: one item a line, each line ended by a newline."""
    return "".join(f"{start + i}. {item}\n" for i, item in enumerate(items))


def few_shot_prompt(examples: Sequence[str], n: int, template: str) -> str:
    """The template filled with ``n`` and the numbered examples, ending with ``"{k+1}."``."""
    if n < 1:
        raise ValueError(f"few_shot_prompt: n must be >= 1, got {n}")
    examples = [" ".join(str(e).split()) for e in examples]  # one line per example
    return template.format(n=n, examples=numbered(examples)) + f"{len(examples) + 1}."


def sample_examples(pool: Sequence[str], k: int, rng: random.Random) -> list[str]:
    """``k`` distinct examples from ``pool`` (all of it, shuffled, when ``k >= len(pool)``)."""
    if k < 0:
        raise ValueError(f"sample_examples: k must be >= 0, got {k}")
    return rng.sample(list(pool), min(k, len(pool)))


def parse_items(text: str, n: int, start: int) -> list[str | None]:
    """Exactly ``n`` item texts (``None`` where missing/empty); see the module doc for the rules."""
    if n <= 0:
        return []
    lines = (text or "").splitlines()
    parsed = [(_NUMBERED.match(line), line) for line in lines]
    items: list[str | None] = []
    if lines and parsed[0][0] is None:
        if not any(m is not None and int(m.group(1)) == start for m, _ in parsed):
            items.append(lines[0].strip() or None)
    for m, _ in parsed:
        if m is not None:
            items.append(m.group(2) or None)
    items = items[:n]
    return items + [None] * (n - len(items))
