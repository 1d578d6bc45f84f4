"""Cluster a task's dev inputs into k groups: TF-IDF vectors + seeded k-means (scikit-learn).

The paper trains one generator expert per cluster of the dev data
(``{task}_cluster_{i}``); this is how `dswarm-experts --k K` and
`generators.sources.smollm2.experts` make those clusters when no cluster files are
given. Deterministic for a given seed; every cluster is non-empty.

    labels = kmeans_labels(tfidf(texts), k=4, seed=0)
    groups = cluster_texts(texts, k=4, seed=0)      # list of k lists of indices

scikit-learn's `TfidfVectorizer` and `KMeans` do the maths; what is the
project's own is the words: content words without stop words and numbers,
and, for a text with none (an arithmetic problem), its form. The partitions
of the earlier hand-written k-means agree with these up to k-means++'s
draws (docs/performance.md gives the adjusted Rand index on GSM8K and
TruthfulQA).
"""
from __future__ import annotations

import re
import warnings
from typing import Sequence

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from threadpoolctl import threadpool_limits

__all__ = ["tfidf", "tfidf_words", "kmeans_labels", "cluster_texts"]

_WORD = re.compile(r"[a-z]+|\d+")
_STOP = frozenset(
    "a an the and or of to in on at for is are was were be been it its he she they his her their them "
    "this that these those with as by from how many much what which who does did do if than then each "
    "has have had will would can there per".split()
)
_SHAPE = re.compile(r"\d+|[^\w\s]")


def _tokens(text: str) -> list[str]:
    """Content words; a text with none (e.g. ``6*8+96``) is described by its form instead."""
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOP and not w.isdigit()]
    return words or _shape_tokens(text)


def _shape_tokens(text: str) -> list[str]:
    """Operators, number lengths (``#2``: a 2-digit number) and adjacent pairs of them. Without
    these, every arithmetic item was an empty row: k-means put all but k-1 in one cluster and
    k-1 experts were trained on one item each."""
    unigrams = [f"#{len(t)}" if t.isdigit() else t for t in _SHAPE.findall(text)]
    return unigrams + [a + b for a, b in zip(unigrams, unigrams[1:])]


def tfidf_words(texts: Sequence[str], max_features: int = 1024, min_df: int = 2) -> tuple[csr_matrix, list[str]]:
    """L2-normalized TF-IDF rows ``[len(texts), <= max_features]`` (float32, sparse) and the word of each column:
    tf ``1 + ln(count)``, idf ``ln((1 + n) / (1 + df)) + 1``, words in at least ``min_df`` texts
    (every word when none is), the ``max_features`` most frequent kept."""
    for min_count in (min_df, 1):  # tiny corpora: no word in min_df texts, keep every word
        vectorizer = TfidfVectorizer(analyzer=_tokens, sublinear_tf=True, min_df=min_count, max_features=max_features,
                                     dtype=np.float32)
        try:
            return vectorizer.fit_transform(texts), vectorizer.get_feature_names_out().tolist()
        except ValueError:  # no word at all
            continue
    return csr_matrix((len(texts), 1), dtype=np.float32), [""]


def tfidf(texts: Sequence[str], max_features: int = 1024, min_df: int = 2) -> csr_matrix:
    """The rows of `tfidf_words`."""
    return tfidf_words(texts, max_features, min_df)[0]


def kmeans_labels(x, k: int, seed: int = 0, restarts: int = 3) -> np.ndarray:
    """Cluster labels of the rows of ``x``: k-means++ init, Lloyd iterations, best of ``restarts``,
    seeded. One thread: the matrices are small, and on a busy 2-core machine thread contention
    made clustering 10-100x slower."""
    if not 1 <= k <= x.shape[0]:
        raise ValueError(f"cannot make {k} clusters of {x.shape[0]} items")
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # fewer distinct texts than k: _fill_empty's case
        labels = KMeans(n_clusters=k, n_init=restarts, random_state=seed).fit_predict(x)
    return _fill_empty(labels.astype(np.int64), k)


def _fill_empty(labels: np.ndarray, k: int) -> np.ndarray:
    """Guarantee every cluster has a member (moves one item from the largest cluster): k-means
    leaves clusters empty when there are fewer distinct texts than k."""
    for c in range(k):
        if not (labels == c).any():
            big = np.bincount(labels, minlength=k).argmax()
            labels[np.flatnonzero(labels == big)[0]] = c
    return labels


def cluster_texts(texts: Sequence[str], k: int, seed: int = 0) -> list[list[int]]:
    """``k`` lists of indices into ``texts``, ordered by cluster size (largest first), each sorted."""
    labels = kmeans_labels(tfidf(texts), k, seed)
    groups = [sorted(np.flatnonzero(labels == c).tolist()) for c in range(k)]
    return sorted(groups, key=lambda g: (-len(g), g[0]))
