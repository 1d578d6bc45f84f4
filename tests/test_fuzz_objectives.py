"""Property tests: objectives stay finite and in range on random inputs, and respect symmetries."""
import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from objectives import metrics as M
from objectives.judging.judges import extract_number, reference_match
from objectives.judging.llm_judges import parse_rating
from objectives.realism import Realism
from objectives.registry import COMPONENTS
from objectives.tasks.arith import ArithTask

FAST = settings(max_examples=60, deadline=None)
EPS = 1e-3
NAMES = list(COMPONENTS)


@st.composite
def score_batches(draw):
    """A random ObjectiveInputs: scores in [0, 1] with missing entries, NaN and inf sprinkled in."""
    P, T, N = draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 12))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    binary = draw(st.booleans())
    S = torch.rand(P, T, N, generator=g)
    if binary:
        S = (S > 0.5).float()
    mask = torch.rand(P, T, N, generator=g) < draw(st.floats(0.0, 1.0))
    bad = torch.rand(P, T, N, generator=g) < draw(st.sampled_from([0.0, 0.1, 0.5]))
    S = torch.where(bad, torch.tensor(draw(st.sampled_from([math.nan, math.inf, -math.inf]))), S)
    orig = torch.rand(T, generator=g)
    if draw(st.booleans()):
        orig = (orig > 0.5).float()                  # zero probabilities
    R = torch.rand(P, N, generator=g)
    valid = torch.rand(P, N, generator=g) < 0.7
    chunks = draw(st.integers(1, 6))
    return M.ObjectiveInputs(S, mask, orig_means=orig, similarity=R, valid=valid, chunks=chunks, eps=EPS)


@st.composite
def weight_maps(draw):
    w = {name: draw(st.sampled_from([0.0, 0.2, 1.0, 3.5])) for name in NAMES}
    if not any(w.values()):
        w[draw(st.sampled_from(NAMES))] = 1.0
    return w


@FAST
@given(score_batches(), weight_maps(), st.floats(0.0, 1.0))
def test_components_finite_and_in_range(x, weights, frac):
    comps = M.components(NAMES, x)
    T = x.scores.shape[1]
    for name, value in comps.items():
        assert value.shape == (x.scores.shape[0],), name
        assert torch.isfinite(value).all(), name
    assert ((comps["difficulty"] >= 0) & (comps["difficulty"] <= 1)).all()
    assert ((comps["separation"] >= 0) & (comps["separation"] <= 1 + 1e-6)).all()
    assert ((comps["novelty"] >= 0) & (comps["novelty"] <= math.log(T * (1 + EPS) / EPS) + 1e-4)).all()
    c = comps["consistency"]
    assert ((c == 0) | ((c >= 0.5 - 1e-6) & (c <= 1 + 1e-6))).all()
    assert ((comps["realism"] >= 0) & (comps["realism"] <= 1)).all()
    vf = torch.full((x.scores.shape[0],), frac)
    u = M.utility(comps, weights, vf)
    assert torch.isfinite(u).all() and (u >= 0).all()
    assert torch.allclose(u, M.utility(comps, weights, torch.ones_like(vf)) * frac, atol=1e-5)


@FAST
@given(score_batches(), st.randoms(use_true_random=False))
def test_item_permutation_invariance(x, rnd):
    N = x.scores.shape[2]
    perm = list(range(N))
    rnd.shuffle(perm)
    perm = torch.tensor(perm)
    y = M.ObjectiveInputs(x.scores[:, :, perm], x.mask[:, :, perm], x.orig_means, x.similarity[:, perm],
                          x.valid[:, perm], x.chunks, x.eps)
    names = [n for n in NAMES if n != "consistency"]
    a, b = M.components(names, x), M.components(names, y)
    for name in names:
        assert torch.allclose(a[name], b[name], atol=1e-5), name


@FAST
@given(score_batches(), st.randoms(use_true_random=False))
def test_taker_permutation_invariance(x, rnd):
    T = x.scores.shape[1]
    perm = list(range(T))
    rnd.shuffle(perm)
    perm = torch.tensor(perm)
    y = M.ObjectiveInputs(x.scores[:, perm], x.mask[:, perm], x.orig_means[perm], x.similarity, x.valid,
                          x.chunks, x.eps)
    a, b = M.components(NAMES, x), M.components(NAMES, y)
    for name in NAMES:   # difficulty/separation by definition; the others sum or average over takers
        assert torch.allclose(a[name], b[name], atol=1e-5), name


@FAST
@given(st.text(max_size=200))
def test_extract_number_never_raises(text):
    value = extract_number(text)
    assert value is None or math.isfinite(value)
    rating = parse_rating(text)
    assert rating is None or 0.0 <= rating <= 1.0
    assert reference_match(text, text)  # an answer matches itself as the reference
    # the number after the last "####" is the answer, whatever came before it
    assert reference_match(f"{text} #### 42", "42") and not reference_match(f"{text} #### 43", "42")


_REALISM = Realism(ArithTask(n_dev=1, n_test=100, seed=1).realism_corpus()
                   + ["What is the capital of France?", "how many legs does a spider have"])


@FAST
@given(st.lists(st.one_of(st.none(), st.text(max_size=60),
                          st.from_regex(r"\d{1,3}[-+*]\d{1,3}([-+*]\d{1,2})?", fullmatch=True)), max_size=8))
def test_realism_in_unit_interval(texts):
    s = _REALISM.score(texts)
    assert s.shape == (len(texts),)
    assert torch.isfinite(s).all() and ((s >= 0) & (s <= 1)).all()
