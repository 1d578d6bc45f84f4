"""The zoo's character tokenizer, shared by its generator base and its takers.

WordLevel over 36 tokens: ``<pad> <s> </s> <unk>``, the words of the
generator template and ``Q``/``A``, the characters ``0-9 + - * = : . )``,
newline and space; exact round trip (docs/zoo.md). Off-the-shelf takers
(SmolLM2) bring their own tokenizers: items are text.
"""
from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

__all__ = ["VOCAB", "build_tokenizer"]

SPECIAL = ("<pad>", "<s>", "</s>", "<unk>")
WORDS = ("Write", "new", "problems", "like", "these", "Q", "A")
CHARS = tuple("0123456789+-*=:.)") + ("\n", " ")
VOCAB = SPECIAL + WORDS + CHARS


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A fresh tokenizer (left padding, ``<s>`` prepended)."""
    vocab = {t: i for i, t in enumerate(VOCAB)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("[A-Za-z]+|[^A-Za-z]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", vocab["<s>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        padding_side="left",
    )
