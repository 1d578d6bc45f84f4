"""task=json: a task in the reference format {"name", "dev": [{"input","output"}], "test"}, and real query files.

Generated items carry their answer on the same line: "<question> Answer: <answer>".
The realism corpus (real user queries) is read here too: a file, or a `datasets` source.
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

from objectives.tasks.item import Item

ANSWER_SEPARATOR = "Answer:"
_ANSWER_SPLIT = re.compile(r"\s*\bAnswer\s*:\s*", re.IGNORECASE)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class JsonTask:
    """A task read from a JSON file in the reference format (see ../shared/data/README.md).

    ``max_dev`` / ``max_test`` keep a seeded, order-preserving subsample (speed);
    ``realism_corpus`` is an optional source of real user queries: a file (.json list,
    .jsonl with "input", .txt one per line) or ``datasets:NAME[:SPLIT[:FIELD]]`` (a
    Hugging Face `datasets` source: a hub name in the local cache, or a local folder);
    by default the task's own test inputs, a *proxy* that every item of the task's
    style matches (``realism_source`` says which). Generated items are
    written ``"<question> Answer: <answer>"`` on one line (`format_example`);
    `parse_item` splits them back. With ``require_answer=False`` an item without
    an answer is still valid (for judges that need no reference, e.g. hf_llm).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_dev: int | None = None,
        max_test: int | None = None,
        realism_corpus: str | Path | None = None,
        seed: int = 0,
        min_question_chars: int = 10,
        require_answer: bool = True,
        answer_extract: str = "auto",
    ) -> None:
        self.path = Path(path)
        data = _read_json_file(self.path)
        self.name = str(data.get("name") or self.path.stem)
        rng = random.Random(f"json-{seed}")
        self.dev = subsample(_items(data, "dev", self.path), max_dev, rng)
        self.test = subsample(_items(data, "test", self.path), max_test, rng)
        if not self.dev:
            raise ValueError(f"{self.path}: 'dev' is empty (the few-shot prompts need dev items)")
        self._options(realism_corpus, seed, min_question_chars, require_answer, answer_extract)

    def _options(self, realism_corpus: str | Path | None, seed: int, min_question_chars: int, require_answer: bool,
                 answer_extract: str) -> None:
        """The settings every task of this format shares (task=json, task=hf)."""
        self.exact_answers = False
        self.min_question_chars = min_question_chars
        self.require_answer = require_answer
        self.answer_extract = answer_extract  # how a reasoning taker's answer is found (objectives/judging/answers.py)
        self._realism = read_queries(str(realism_corpus), seed=seed) if realism_corpus else None
        self._realism_name = str(realism_corpus) if realism_corpus else None

    def format_example(self, item: Item) -> str:
        """One line in the format generators write: ``"<question> Answer: <answer>"``."""
        question = _one_line(item.input)
        return question if item.output is None else f"{question} {ANSWER_SEPARATOR} {_one_line(item.output)}"

    def parse_item(self, text: str | None) -> Item:
        """Split ``"<question> Answer: <answer>"`` at its last "Answer:"; never raises."""
        text = _one_line(text or "")
        last = None
        for last in _ANSWER_SPLIT.finditer(text):
            pass
        if last is None:
            question, answer = text, None
        else:
            question, answer = text[: last.start()].strip(), text[last.end():].strip() or None
        valid = len(question) >= self.min_question_chars and (answer is not None or not self.require_answer)
        return Item(question, answer, valid)

    def realism_corpus(self) -> list[str]:
        if self._realism is not None:
            return list(self._realism)
        return [item.input for item in (self.test or self.dev)]

    @property
    def realism_source(self) -> str:
        if self._realism_name is not None:
            return f"real queries: {self._realism_name} ({len(self._realism)})"
        split = "test" if self.test else "dev"
        return f"proxy: the task's own {split} inputs ({len(self.test or self.dev)}), not real user queries"


def load_json_task(path: str | Path, **kwargs) -> JsonTask:
    """`JsonTask` from a file; see its options."""
    return JsonTask(path, **kwargs)


def _read_json_file(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"task file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))  # a leading BOM (Windows editors) is no error
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({_first_line(err)})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object with 'dev' and 'test' lists, got {type(data).__name__}")
    missing = [key for key in ("dev", "test") if not isinstance(data.get(key), list)]
    if missing:
        raise ValueError(f"{path}: missing or non-list {' and '.join(repr(k) for k in missing)} (expected lists of {{\"input\", \"output\"}})")
    return data


def _items(data: dict, split: str, path: Path) -> list[Item]:
    items = []
    for i, row in enumerate(data[split]):
        text = row.get("input") if isinstance(row, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{path}: {split}[{i}] has no non-empty 'input' string")
        output = row.get("output")
        items.append(Item(text, None if output is None else str(output), True))
    return items


def subsample(items: list[Item], limit: int | None, rng: random.Random) -> list[Item]:
    if limit is None or limit >= len(items):
        return items
    if limit < 1:
        raise ValueError(f"max_dev / max_test must be >= 1 or null, got {limit}")
    return [items[i] for i in sorted(rng.sample(range(len(items)), limit))]


MAX_QUERIES = 20_000  # a seeded subsample of larger sources keeps the BM25 index small


def read_queries(source: str | Path, seed: int = 0) -> list[str]:
    """Real queries from a file (see `read_query_file`) or ``datasets:NAME[:SPLIT[:FIELD]]``.

    At most ``MAX_QUERIES`` of them (a seeded, order-preserving subsample).
    """
    source = str(source)
    queries = dataset_queries(source[len("datasets:"):]) if source.startswith("datasets:") else read_query_file(source)
    return subsample(queries, MAX_QUERIES, random.Random(f"realism-{seed}")) if len(queries) > MAX_QUERIES else queries


QUERY_FIELDS = ("input", "question", "query", "prompt", "instruction", "text")


def dataset_queries(spec: str) -> list[str]:
    """Queries of a `datasets` source ``NAME[:SPLIT[:FIELD]]`` (split ``train``; field: the first of
    `QUERY_FIELDS` the dataset has). Offline runs read the local `datasets` cache or a local folder."""
    name, split, field = (spec.split(":") + ["", ""])[:3]
    import datasets

    try:
        rows = datasets.load_dataset(name, split=split or "train")
    except Exception as err:  # datasets raises many kinds; the message is what the user needs
        raise ValueError(f"datasets:{spec}: cannot load ({_first_line(err)})") from None
    field = field or next((f for f in QUERY_FIELDS if f in rows.column_names), "")
    if field not in rows.column_names:
        raise ValueError(f"datasets:{spec}: no query field; name one of {rows.column_names} as datasets:NAME:SPLIT:FIELD")
    queries = [q.strip() for q in rows[field] if isinstance(q, str) and q.strip()]
    if not queries:
        raise ValueError(f"datasets:{spec}: field {field!r} has no non-empty strings")
    return queries


def read_query_file(path: str | Path) -> list[str]:
    """Real queries from .json (list of strings or of {"input"}), .jsonl ({"input"} a line) or .txt."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"realism corpus not found: {path}")
    text = path.read_text(encoding="utf-8-sig")  # a leading BOM (Windows editors) is no error
    try:
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        elif path.suffix == ".json":
            rows = json.loads(text)
            rows = rows.get("test", rows.get("dev")) if isinstance(rows, dict) else rows
        else:
            rows = text.splitlines()
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({_first_line(err)})") from None
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a list of queries")
    queries = [r.get("input") if isinstance(r, dict) else r for r in rows]
    queries = [q.strip() for q in queries if isinstance(q, str) and q.strip()]
    if not queries:
        raise ValueError(f"{path}: no queries found (.json list, .jsonl with 'input', or .txt one per line)")
    return queries


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__
