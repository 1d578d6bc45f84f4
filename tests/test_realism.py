"""BM25 realism: tokenization, normalization into [0, 1], corner cases."""
import time

import numpy as np
import pytest
import torch

from objectives.realism import Realism, tokenize, tokens
from objectives.tasks.arith import ArithTask

QUERIES = [
    "What is the capital of France?",
    "How do I bake sourdough bread at home?",
    "Who wrote the play Hamlet?",
    "What is the boiling point of water in Fahrenheit?",
    "How many legs does a spider have?",
]


def test_tokenize_keeps_numbers_operators_and_words():
    assert tokenize("3*8+51") == ["3", "*", "8", "+", "51"]
    assert tokenize("47 - 38 = 9") == ["47", "-", "38", "=", "9"]
    assert tokenize("What is the Capital of FRANCE?") == ["what", "is", "the", "capital", "of", "france"]
    assert tokenize("") == [] and tokenize(None) == []
    assert tokens("3*8+51") == ("3", "*", "8", "+", "51") and tokens(None) == ()  # the remembered form


def test_identical_item_scores_one_and_unrelated_scores_zero():
    r = Realism(QUERIES, top_k=1)
    s = r.score([QUERIES[2], "zebra quantum xylophone", "", None, "?!"])
    assert s[0].item() == pytest.approx(1.0, abs=1e-5)
    assert s[1:].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_similarity_is_graded():
    r = Realism(QUERIES, top_k=1)
    near, far = r.score(["What is the capital of Spain?", "capital"]).tolist()
    assert 0.0 < far < 1.0 and 0.0 < near < 1.0
    # more unseen tokens in the text -> lower score (self-score grows, match does not)
    assert r.score(["capital of France"]).item() > r.score(["capital of France zebra quantum"]).item()


def test_top_k_mean_over_neighbours():
    corpus = ["12+34", "12+34", "56*7", "89-10"]
    r1, r2, r4 = Realism(corpus, top_k=1), Realism(corpus, top_k=2), Realism(corpus, top_k=10)
    # two exact duplicates: top-2 mean is still 1
    assert r2.score(["12+34"]).item() == pytest.approx(1.0, abs=1e-5)
    assert r1.score(["12+34"]).item() == pytest.approx(1.0, abs=1e-5)
    # top_k larger than the corpus uses the whole corpus: (1 + 1 + s3 + s4)/4 < 1
    assert r4.top_k == 4 and 0.5 <= r4.score(["12+34"]).item() < 1.0


def test_arith_corpus_scores_in_range_and_fast():
    task = ArithTask(n_dev=20, n_test=200, seed=0)
    r = Realism(task.realism_corpus())
    texts = [it.input for it in task.dev] * 25 + ["hello", "", "9999*9999+9999"]
    t0 = time.perf_counter()
    s = r.score(texts)
    assert time.perf_counter() - t0 < 2.0
    assert s.shape == (len(texts),) and s.dtype == torch.float32
    assert ((s >= 0) & (s <= 1)).all()
    assert s[: len(task.dev)].min() > s[-2]    # real-looking problems beat empty text
    assert s[-3].item() == 0.0                 # no shared token


def test_bad_arguments():
    with pytest.raises(ValueError, match="no tokens"):
        Realism(["", "?"])
    with pytest.raises(ValueError, match="realism_top_k"):
        Realism(QUERIES, top_k=0)
    assert "n_docs=5" in repr(Realism(QUERIES))


def test_batched_scores_match_bm25s_and_do_not_depend_on_the_batch():
    """One bincount over a batch == bm25s scoring each text alone, and a text's score is the same in any batch."""
    task = ArithTask(n_dev=30, n_test=200, seed=1)
    r = Realism(task.realism_corpus(), top_k=3)
    texts = [it.input for it in task.dev] + ["12 + 7", "", None, "what is 5*5", "zzz"]
    sims = r.similarities(texts)
    for row, text in zip(sims, texts):
        ids = [r._vocab[t] for t in dict.fromkeys(tokenize(text)) if t in r._vocab]
        want = np.clip(r._bm25.get_scores_from_ids(ids) / r.self_score(tokenize(text)), 0, 1) if ids else 0 * row
        np.testing.assert_allclose(row, want, rtol=1e-5, atol=1e-6)
    together = r.score(texts)
    alone = torch.cat([Realism(task.realism_corpus(), top_k=3).score([t]) for t in texts])
    assert torch.equal(together, alone)
