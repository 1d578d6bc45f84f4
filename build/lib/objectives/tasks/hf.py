"""task=hf: any source the `datasets` library loads, with its columns mapped to input/output.

    task=hf task.source=openai/gsm8k task.subset=main task.input_field=question task.output_field=answer
    task=hf task.source=data/qa.parquet task.dev_split='train[:80%]' task.test_split='train[80%:]'

``source`` is a hub dataset id (read through the HF cache; offline with
HF_HUB_OFFLINE=1), a local dataset dir (a hub-style repo, or a
``save_to_disk`` dir such as a run's own ``best/dataset/``), or one
.parquet / .jsonl / .json / .csv file (its rows are the split ``train``).
Splits take `datasets`' slice syntax. Items then behave exactly like
task=json's: the generator writes ``"<question> Answer: <answer>"``.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from objectives.tasks.item import Item
from objectives.tasks.json_task import JsonTask, subsample

FILE_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}


def _load_split(source: str, split: str, subset: str | None) -> Any:
    import datasets

    path = Path(source)
    if path.is_file():
        if path.suffix not in FILE_BUILDERS:
            raise ValueError(f"task.source: {source}: expected a .parquet, .jsonl, .json or .csv file")
        return datasets.load_dataset(FILE_BUILDERS[path.suffix], data_files=str(path), split=split)
    if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():  # save_to_disk
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise ValueError(f"no split {split!r} in {source} (splits: {sorted(loaded)})")
            return loaded[split]
        if split != "train":
            raise ValueError(f"{source} is a single split (use 'train'), got {split!r}")
        return loaded
    return datasets.load_dataset(source, subset, split=split)


def _items(rows: Any, input_field: str, output_field: str | None, where: str) -> list[Item]:
    columns = list(rows.column_names)
    for setting, field in (("task.input_field", input_field), ("task.output_field", output_field)):
        if field is not None and field not in columns:
            raise ValueError(f"{setting}: no column {field!r} in {where} (columns: {columns})")
    items = []
    for text, output in zip(rows[input_field], rows[output_field] if output_field else [None] * len(rows)):
        if isinstance(text, str) and text.strip():
            items.append(Item(text, None if output is None else str(output), True))
    return items


class HfTask(JsonTask):
    """A task from a `datasets` source; parsing and prompting are task=json's (`JsonTask`)."""

    def __init__(
        self,
        source: str,
        *,
        input_field: str,
        output_field: str | None = None,
        subset: str | None = None,
        dev_split: str = "train",
        test_split: str = "test",
        max_dev: int | None = None,
        max_test: int | None = None,
        realism_corpus: str | Path | None = None,
        seed: int = 0,
        min_question_chars: int = 10,
        require_answer: bool = True,
        answer_extract: str = "auto",
    ) -> None:
        self.name = Path(source).stem if Path(source).exists() else source
        rng = random.Random(f"hf-{seed}")
        loaded = {}
        for setting, split in (("task.dev_split", dev_split), ("task.test_split", test_split)):
            try:
                rows = _load_split(source, split, subset)
            except (ValueError, KeyError) as err:
                raise ValueError(f"{setting}: cannot load split {split!r} of {source}: {str(err).splitlines()[0]}") from None
            loaded[split] = _items(rows, input_field, output_field, f"{source} [{split}]")
        self.dev = subsample(loaded[dev_split], max_dev, rng)
        self.test = subsample(loaded[test_split], max_test, rng)
        if not self.dev:
            raise ValueError(f"task.dev_split: {source} [{dev_split}] has no non-empty {input_field!r} (the prompts need dev items)")
        self._options(realism_corpus, seed, min_question_chars, require_answer and output_field is not None, answer_extract)
