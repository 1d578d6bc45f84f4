"""Prompt token ids, remembered across the models that share one tokenizer.

The embedded zoo's takers are separate models with the same tokenizer, and
every taker answers the same items with the same template: a zoo step
tokenized each answer prompt once per taker, 2-3 % of the step
(docs/performance.md), and the next step again for the items the particles
write again. An `Encoder` keeps the ids of the prompts it has seen, shared by
every encoder whose tokenizer has the same content (its serialized fast
tokenizer and chat template), so models share entries only where their ids
are equal. A memo holds at most `MAX_PROMPTS` prompts; a full one is cleared.

    encode = Encoder(tokenizer, chat_template=False)
    ids = encode(["Q: 1+2\\nA:", ...])   # [[...], ...], as tokenizer(prompts)["input_ids"]
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["Encoder"]

MAX_PROMPTS = 1 << 16
_MEMOS: dict[str, dict[str, tuple[int, ...]]] = {}  # tokenizer content -> prompt -> ids


def _content_key(tokenizer, chat_template: bool) -> str:
    """Equal for two tokenizers that give every prompt the same ids; a slow tokenizer is only equal to itself."""
    if not getattr(tokenizer, "is_fast", False):
        return f"object-{id(tokenizer)}-{chat_template}"
    digest = hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode())
    if chat_template:
        digest.update(str(tokenizer.chat_template).encode())
    return f"{digest.hexdigest()}-{chat_template}"


class Encoder:
    """``encode(prompts)``: their token ids (the chat template applied first when asked), tokenized once."""

    def __init__(self, tokenizer, chat_template: bool) -> None:
        self.tokenizer, self.chat_template = tokenizer, chat_template
        self.memo = _MEMOS.setdefault(_content_key(tokenizer, chat_template), {})

    def __call__(self, prompts: Sequence[str]) -> list[list[int]]:
        new = [p for p in dict.fromkeys(prompts) if p not in self.memo]
        if new and len(self.memo) + len(new) > MAX_PROMPTS:
            self.memo.clear()
            new = list(dict.fromkeys(prompts))
        if new:
            self.memo.update(zip(new, map(tuple, self._tokenize(new))))
        return [list(self.memo[p]) for p in prompts]

    def _tokenize(self, prompts: list[str]) -> list[list[int]]:
        """One batched tokenizer call (a call per prompt took twice as long)."""
        if not self.chat_template:
            return self.tokenizer(prompts)["input_ids"]
        chats = [[{"role": "user", "content": p}] for p in prompts]
        texts = self.tokenizer.apply_chat_template(chats, tokenize=False, add_generation_prompt=True)
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]
