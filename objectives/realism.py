"""Realism: how much generated items look like a corpus of real queries (BM25, bm25s).

Normalization. The raw BM25 score of a text ``q`` against corpus entry ``d`` is
divided by the score ``q`` would get against *itself* as a document, computed with
the same index statistics (document count, document frequencies, average length,
k1, b; tokens the corpus never saw get the idf of df = 0)::

    sim(q, d) = min(1, bm25(q, d) / bm25(q, q))

so an item identical to a corpus entry has similarity 1 with that entry and an item
sharing no token with the corpus has 0. ``score`` is the mean of the ``top_k``
largest similarities (``min(top_k, len(corpus))`` of them); with ``top_k > 1`` an
item reaches 1 only when it has ``top_k`` near-duplicates in the corpus, i.e. when
it sits in a dense region of real queries. The map from raw scores is monotone
(one positive divisor per text) and the clip to 1 only matters for rare texts
scoring above themselves against a much shorter entry holding their rarest tokens.

Query terms are counted once (the set of the text's tokens), the usual BM25 sum
over query terms. Tokenization (``tokenize``) lowercases and keeps numbers, words
and math operator symbols, so ``"3*8+51"`` is ``["3", "*", "8", "+", "51"]`` and
``"What is the capital of France?"`` is ``["what", "is", "the", "capital", "of", "france"]``.
"""
from __future__ import annotations

import functools
import math
import re
from collections import Counter
from typing import Sequence

import bm25s
import numpy as np
import torch
from torch import Tensor

_TOKEN = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+|[-+*/×÷=^%<>()]")


def tokenize(text: str | None) -> list[str]:
    """Lowercased numbers, words and operator symbols of a text; [] for None / empty."""
    if not text:
        return []
    return _TOKEN.findall(str(text).lower())


@functools.lru_cache(maxsize=4096)
def tokens(text: str | None) -> tuple[str, ...]:
    """`tokenize`'s tokens as a tuple, remembered for recent texts: realism and the contamination screen
    (objectives/contamination.py) read the same new items every step (corpora built once use `tokenize`)."""
    return tuple(tokenize(text))


_MEMO_SIZE = 100_000  # distinct texts remembered before the memo starts over
_BATCH_CELLS = 1 << 22  # text x document cells scored at once (32 MiB of float64)


class Realism:
    """A BM25 index of real queries, built once; ``score`` many batches of texts against it."""

    def __init__(self, corpus: Sequence[str], top_k: int = 5, k1: float = 1.5, b: float = 0.75) -> None:
        if top_k < 1:
            raise ValueError(f"objective.realism_top_k: must be >= 1, got {top_k}")
        docs = [tokenize(text) for text in corpus]
        if not any(docs):
            raise ValueError("realism corpus has no tokens; give at least one non-empty real query")
        self.top_k = min(top_k, len(docs))
        self.k1, self.b = k1, b
        self.n_docs = len(docs)
        self.avg_len = sum(len(d) for d in docs) / self.n_docs
        df = Counter(tok for d in docs for tok in set(d))
        self._idf = {tok: self._lucene_idf(n) for tok, n in df.items()}  # every token's idf, computed once
        self._idf_unseen = self._lucene_idf(0)
        self._bm25 = bm25s.BM25(k1=k1, b=b, method="lucene")
        self._bm25.index(docs, show_progress=False)
        self._vocab = self._bm25.vocab_dict
        self._idf_by_id = np.full(len(self._vocab), self._idf_unseen)  # bm25s numbers its tokens 0..V-1
        for tok, i in self._vocab.items():
            self._idf_by_id[i] = self._idf.get(tok, self._idf_unseen)
        self._memo: dict[str | None, float] = {}

    def __repr__(self) -> str:
        return f"Realism(n_docs={self.n_docs}, top_k={self.top_k})"

    def _lucene_idf(self, df: int) -> float:
        """The idf of a token in ``df`` documents, as bm25s(method="lucene")."""
        return math.log(1 + (self.n_docs - df + 0.5) / (df + 0.5))

    def self_score(self, tokens: Sequence[str]) -> float:
        """BM25 of a token list against itself as a document, in the index's statistics."""
        tf = Counter(tokens)
        norm = self.k1 * (1 - self.b + self.b * len(tokens) / self.avg_len)
        idf, unseen = self._idf, self._idf_unseen
        return sum(idf.get(t, unseen) * c / (c + norm) for t, c in tf.items())

    def _distinct_tokens(self, texts: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every (text, distinct token) pair of ``texts``: its text's index, the token's id and its count, text
        by text and each text's tokens in order of first use; and each text's number of tokens. A token the
        corpus never saw gets an id past the vocabulary's (one for each such token of the batch)."""
        vocab = self._vocab
        toks = [tokens(text) for text in texts]
        unseen: dict[str, int] = {}
        ids = np.fromiter((vocab[t] if t in vocab else unseen.setdefault(t, len(vocab) + len(unseen))
                           for row in toks for t in row), dtype=np.int64)
        n_tokens = np.fromiter(map(len, toks), dtype=np.int64, count=len(toks))
        width = len(vocab) + len(unseen)
        keys = np.repeat(np.arange(len(texts)), n_tokens) * width + ids
        pairs, first, counts = np.unique(keys, return_index=True, return_counts=True)
        order = np.argsort(first)
        return pairs[order] // width, pairs[order] % width, counts[order], n_tokens

    def similarities(self, texts: Sequence[str | None]) -> np.ndarray:
        """Normalized similarity of each text to every corpus entry, in [0, 1], ``[len(texts), n_docs]``.

        One ``bincount`` over the concatenated postings of every text's tokens
        (cell = text x document); each cell sums only its own text's postings,
        in token order, so a text's row does not depend on the batch it is in.
        The texts' `self_score`s are one ``bincount`` too: the same terms, added
        in the same order (the result is the same to the bit).
        """
        rows, ids, counts, n_tokens = self._distinct_tokens(texts)
        known = ids < len(self._vocab)
        idf = np.where(known, self._idf_by_id[np.where(known, ids, 0)], self._idf_unseen)
        norm = self.k1 * (1 - self.b + self.b * n_tokens / self.avg_len)
        self_scores = np.bincount(rows, weights=idf * counts / (counts + norm[rows]), minlength=len(texts))
        rows, ids = rows[known], ids[known]
        norms = np.where(np.bincount(rows, minlength=len(texts)) > 0, self_scores, 1.0)  # no known token: a row of 0
        index = self._bm25.scores
        starts, ends = index["indptr"][ids], index["indptr"][ids + 1]
        lengths = ends - starts
        # the postings of every (text, token) pair, concatenated in order: span j is starts[j] + 0..lengths[j]-1
        at = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(lengths.sum())
        cells = np.bincount(np.repeat(rows, lengths) * self.n_docs + index["indices"][at], weights=index["data"][at],
                            minlength=len(texts) * self.n_docs)
        raw = cells.reshape(len(texts), self.n_docs)
        return np.clip(raw / norms[:, None], 0.0, 1.0).astype(np.float32)

    def _top_k_means(self, texts: Sequence[str | None]) -> list[float]:
        sims = self.similarities(texts)
        top = np.partition(sims, self.n_docs - self.top_k, axis=1)[:, self.n_docs - self.top_k:]
        return np.clip(top.mean(axis=1), 0.0, 1.0).tolist()

    def score(self, texts: Sequence[str | None]) -> Tensor:
        """Mean of the top-k normalized similarities of each text, ``Tensor[len(texts)]`` in [0, 1].

        Neighbouring particles write many of the same items, so each distinct
        text is scored once per run (a bounded memo; the index never changes);
        the new ones are scored together, in batches of bounded memory.
        """
        if len(self._memo) > _MEMO_SIZE:
            self._memo.clear()
        new = [text for text in dict.fromkeys(texts) if text not in self._memo]
        batch = max(1, _BATCH_CELLS // self.n_docs)
        for start in range(0, len(new), batch):
            chunk = new[start : start + batch]
            self._memo.update(zip(chunk, self._top_k_means(chunk)))
        return torch.tensor([self._memo[text] for text in texts], dtype=torch.float32)
