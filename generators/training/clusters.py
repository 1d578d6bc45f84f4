"""Cluster a task's dev inputs into k groups: TF-IDF vectors + seeded k-means (numpy + torch).

The paper trains one generator expert per cluster of the dev data
(``{task}_cluster_{i}``); this is how `dswarm-experts --k K` and
`generators.sources.smollm2.experts` make those clusters when no cluster files are
given. Deterministic for a given seed; every cluster is non-empty.

    labels = kmeans_labels(tfidf(texts), k=4, seed=0)
    groups = cluster_texts(texts, k=4, seed=0)      # list of k lists of indices
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

import numpy as np
import torch

__all__ = ["tfidf", "kmeans_labels", "cluster_texts"]

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


def tfidf(texts: Sequence[str], max_features: int = 1024, min_df: int = 2) -> np.ndarray:
    """L2-normalized TF-IDF rows ``[len(texts), <= max_features]`` (float32, dense)."""
    docs = [Counter(_tokens(t)) for t in texts]
    df = Counter(w for d in docs for w in d)
    vocab = [w for w, c in sorted(df.items(), key=lambda x: (-x[1], x[0])) if c >= min_df][:max_features]
    if not vocab:  # tiny corpora: keep every word
        vocab = sorted(df)
    index = {w: j for j, w in enumerate(vocab)}
    x = np.zeros((len(texts), max(len(vocab), 1)), dtype=np.float32)
    for i, d in enumerate(docs):
        for w, c in d.items():
            j = index.get(w)
            if j is not None:
                x[i, j] = 1.0 + np.log(c)
    idf = np.log((1 + len(texts)) / (1 + np.array([df[w] for w in vocab], dtype=np.float32))) + 1.0
    x[:, : len(vocab)] *= idf
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def kmeans_labels(
    x: np.ndarray, k: int, seed: int = 0, iters: int = 50, restarts: int = 3, fit_size: int = 2000
) -> np.ndarray:
    """Cluster labels of the rows of ``x``: k-means++ init, Lloyd iterations, best of ``restarts``.

    The centers are fitted on at most ``fit_size`` rows (a seeded sample); every row is then
    assigned to its nearest center. Runs in torch on one thread: the matrices are small, and
    on a busy 2-core machine thread contention made it 10-100x slower (numpy's BLAS too).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _kmeans(x, k, seed, iters, restarts, fit_size)
    finally:
        torch.set_num_threads(threads)


def _kmeans(x: np.ndarray, k: int, seed: int, iters: int, restarts: int, fit_size: int) -> np.ndarray:
    if not 1 <= k <= x.shape[0]:
        raise ValueError(f"cannot make {k} clusters of {x.shape[0]} items")
    gen = torch.Generator().manual_seed(seed)
    full = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    pts = full
    if full.shape[0] > fit_size:
        pts = full[torch.randperm(full.shape[0], generator=gen)[:fit_size].sort().values]
    n = pts.shape[0]
    best, best_inertia = None, float("inf")
    for _ in range(restarts):
        centers = pts[torch.randint(n, (1,), generator=gen)]
        for _ in range(1, k):
            d2 = _sqdist(pts, centers).min(1).values
            p = d2 / d2.sum() if d2.sum() > 0 else torch.full((n,), 1.0 / n)
            centers = torch.cat([centers, pts[torch.multinomial(p, 1, generator=gen)]])
        labels = None
        for _ in range(iters):
            d2 = _sqdist(pts, centers)
            new_labels = d2.argmin(1)
            if labels is not None and torch.equal(new_labels, labels):
                break
            labels = new_labels
            counts = torch.bincount(labels, minlength=k).to(pts.dtype)
            sums = torch.nn.functional.one_hot(labels, k).to(pts.dtype).T @ pts
            centers = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centers)
        inertia = float(d2.gather(1, new_labels[:, None]).sum())
        if inertia < best_inertia:
            best, best_inertia = centers, inertia
    labels = _sqdist(full, best).argmin(1).numpy().copy()
    return _fill_empty(labels, k)


def _sqdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a * a).sum(1, keepdim=True) - 2 * a @ b.T + (b * b).sum(1)[None]).clamp_(min=0)


def _fill_empty(labels: np.ndarray, k: int) -> np.ndarray:
    """Guarantee every cluster has a member (moves one item from the largest cluster)."""
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
