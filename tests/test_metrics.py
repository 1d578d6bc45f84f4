"""The objectives on small score tensors whose values are computed by hand in the comments."""
import math

import pytest
import torch

from objectives import metrics as M
from objectives.registry import COMPONENTS, check_weights

T_ = torch.tensor


def full(S):
    S = T_(S, dtype=torch.float32)
    return S, torch.ones_like(S, dtype=torch.bool)


# one particle, 3 takers, 4 items
S1 = [[[1.0, 1.0, 0.0, 0.0],    # taker 0 mean .5
       [1.0, 1.0, 1.0, 0.0],    # taker 1 mean .75
       [0.0, 0.0, 0.0, 1.0]]]   # taker 2 mean .25


def test_taker_means_and_missing_scores():
    S, m = full(S1)
    assert M.taker_means(S, m).tolist() == [[0.5, 0.75, 0.25]]
    m[0, 1, 3] = False                  # taker 1 misses item 3 -> (1+1+1)/3 = 1
    m[0, 2, :] = False                  # taker 2 has no score -> NaN
    means = M.taker_means(S, m)[0]
    assert means[:2].tolist() == [0.5, 1.0] and math.isnan(means[2])


def test_difficulty():
    S, m = full(S1)
    # 1 - max(.5, .75, .25) = .25
    assert M.difficulty(S, m).tolist() == pytest.approx([0.25])
    m[0, 1] = False                     # taker 1 missing entirely -> 1 - max(.5, .25) = .5
    assert M.difficulty(S, m).tolist() == pytest.approx([0.5])


def test_separation():
    S, m = full(S1)
    # sorted means .25 .5 .75: gaps .25 .25, mean .25
    assert M.separation(S, m).tolist() == pytest.approx([0.25])
    # means 0, .5, .5, 1 (a tie): gaps .5 0 .5 -> mean 1/3
    S, m = full([[[0, 0], [1, 0], [0, 1], [1, 1]]])
    assert M.separation(S, m).tolist() == pytest.approx([1 / 3])
    # all tied -> 0
    S, m = full([[[1, 0], [0, 1]]])
    assert M.separation(S, m).tolist() == [0.0]


def test_one_taker():
    S, m = full([[[1.0, 0.0, 1.0, 1.0]]])   # mean .75
    assert M.difficulty(S, m).tolist() == pytest.approx([0.25])
    assert M.separation(S, m).tolist() == [0.0]
    assert M.novelty(S, m, T_([0.1])).tolist() == [0.0]   # one-point distributions: KL 0
    # chunks of 1 item: means 1 0 1 1, mu .75, var (.0625*3 + .5625)/4 = .1875, std .4330
    assert M.consistency(S, m, chunks=4).tolist() == pytest.approx([1 - math.sqrt(0.1875)])


def test_novelty_hand_computed():
    eps = 1e-3
    S, m = full(S1)                               # gen means .5 .75 .25
    orig = T_([0.75, 0.5, 0.25])
    # both sums: 1.5 + 3 eps = 1.503; p_ref = (.751, .501, .251)/1.503, p_gen = (.501, .751, .251)/1.503
    # KL = (.751 ln(.751/.501) + .501 ln(.501/.751) + 0) / 1.503 = .25 ln(.751/.501) / 1.503
    want = 0.25 * math.log(0.751 / 0.501) / 1.503
    assert M.novelty(S, m, orig, eps).tolist() == pytest.approx([want], rel=1e-5)
    # identical ranking -> 0
    assert M.novelty(S, m, T_([0.5, 0.75, 0.25]), eps).tolist() == pytest.approx([0.0], abs=1e-7)


def test_novelty_zero_probabilities_are_finite():
    eps = 1e-3
    S, m = full([[[0.0, 0.0], [1.0, 1.0]]])     # gen means 0, 1
    orig = T_([1.0, 0.0])
    # p_ref = (1.001, .001)/1.002, p_gen = (.001, 1.001)/1.002
    # KL = (1.001 ln(1001) + .001 ln(1/1001)) / 1.002 = 1.000 ln(1001) / 1.002
    want = 1.0 * math.log(1001) / 1.002
    got = M.novelty(S, m, orig, eps)
    assert torch.isfinite(got).all() and got.tolist() == pytest.approx([want], rel=1e-5)
    assert got.item() <= math.log(2 * (1 + eps) / eps)   # documented bound, T=2


def test_novelty_ignores_missing_takers():
    S, m = full(S1)
    m[0, 2] = False                              # taker 2 gone: KL over takers 0 and 1 only
    orig = T_([0.75, 0.5, 0.0])
    # p_ref = (.751, .501)/1.252, p_gen = (.501, .751)/1.252 -> KL = .25 ln(.751/.501) / 1.252
    want = 0.25 * math.log(0.751 / 0.501) / 1.252
    assert M.novelty(S, m, orig).tolist() == pytest.approx([want], rel=1e-5)


def test_consistency_chunks():
    # 2 takers, 8 items, 4 chunks of 2 items
    S, m = full([[[1, 1, 1, 1, 0, 0, 0, 0],     # chunk means 1 1 0 0: std .5
                  [1, 0, 1, 0, 1, 0, 1, 0]]])   # chunk means .5 each: std 0
    # 1 - (.5 + 0)/2 = .75
    assert M.consistency(S, m, chunks=4).tolist() == pytest.approx([0.75])
    # 2 chunks of 4: taker 0 -> 1, 0 (std .5); taker 1 -> .5, .5 (std 0) -> .75
    assert M.consistency(S, m, chunks=2).tolist() == pytest.approx([0.75])
    # 1 chunk: std 0 -> 1
    assert M.consistency(S, m, chunks=1).tolist() == pytest.approx([1.0])


def test_consistency_uneven_chunks_and_fewer_items_than_chunks():
    # 5 items, 2 chunks: ranks 0..4 -> chunk floor(2r/5) = 0 0 0 1 1
    S, m = full([[[1, 1, 0, 0, 0]]])     # chunk means 2/3, 0: std 1/3
    assert M.consistency(S, m, chunks=2).tolist() == pytest.approx([1 - 1 / 3])
    # 2 items, 4 chunks -> k = 2 chunks of one item: means 1, 0 -> std .5 -> .5
    S, m = full([[[1.0, 0.0]]])
    assert M.consistency(S, m, chunks=4).tolist() == pytest.approx([0.5])
    # a single item -> one chunk -> std 0 -> 1
    S, m = full([[[0.3]]])
    assert M.consistency(S, m, chunks=4).tolist() == pytest.approx([1.0])


def test_consistency_chunks_follow_the_valid_items():
    # items 1 and 3 invalid (masked for every taker): valid order 0 2 4 5 -> chunks of 2: {0,2} {4,5}
    S = T_([[[1, 9, 1, 9, 0, 0]]], dtype=torch.float32)
    m = T_([[[1, 0, 1, 0, 1, 1]]], dtype=torch.bool)
    # chunk means 1, 0 -> std .5 -> .5
    assert M.consistency(S, m, chunks=2).tolist() == pytest.approx([0.5])


def test_realism_mean_over_valid():
    R = T_([[0.2, 0.4, 0.9], [0.5, 0.5, 0.5]])
    valid = T_([[1, 1, 0], [0, 0, 0]], dtype=torch.bool)
    # (.2 + .4)/2 = .3; nothing valid -> 0
    assert M.realism(R, valid).tolist() == pytest.approx([0.3, 0.0])


def test_all_invalid_particle_gets_zero_everywhere():
    S, m = full([S1[0], S1[0]])
    m[1] = False
    x = M.ObjectiveInputs(S, m, orig_means=T_([0.1, 0.2, 0.9]), similarity=torch.ones(2, 4), valid=torch.ones(2, 4, dtype=torch.bool))
    comps = M.components(COMPONENTS, x)
    for name, value in comps.items():
        assert value[1].item() == 0.0, name
    assert comps["difficulty"][0].item() == pytest.approx(0.25)


def test_nonfinite_scores_are_missing():
    S, m = full(S1)
    S[0, 0, 0] = math.nan     # taker 0: items 1..3 -> (1 + 0 + 0)/3
    S[0, 1, 3] = math.inf     # taker 1: (1+1+1)/3 = 1
    means = M.taker_means(S, m)
    assert means[0].tolist() == pytest.approx([1 / 3, 1.0, 0.25])
    x = M.ObjectiveInputs(S, m, orig_means=T_([0.5, 0.5, 0.5]), similarity=torch.rand(1, 4))
    comps = M.components(COMPONENTS, x)
    u = M.utility(comps, {k: 1.0 for k in comps}, T_([1.0]))
    assert torch.isfinite(u).all()


def test_utility_weighted_sum_times_valid_fraction():
    comps = {"difficulty": T_([0.5, 1.0]), "separation": T_([0.25, 0.0]), "novelty": T_([1.0, 2.0])}
    w = {"difficulty": 0.6, "separation": 0.2, "novelty": 0.2, "consistency": 0.0}
    # p0: (.3 + .05 + .2) * .5 = .275 ; p1: (.6 + 0 + .4) * 0 = 0
    assert M.utility(comps, w, T_([0.5, 0.0])).tolist() == pytest.approx([0.275, 0.0])
    mixed = {"difficulty": 0.6, "separation": 0.2, "novelty": 0.2}  # conf/objective/mixed.yaml
    assert M.utility(comps, mixed, T_([1.0, 1.0])).tolist() == pytest.approx([0.55, 1.0])


def test_validity_multiply_or_none_with_difficulty_on_the_valid_items_either_way():
    """Two particles, 2 takers, 4 items; particle 0 has 2 valid items, particle 1 all 4.
    Difficulty is on the valid items only: p0 takers' means (1+0)/2 = .5 and 0/2 = 0 -> 1 - .5 = .5;
    p1 means 1/4 and 2/4 -> 1 - .5 = .5. multiply: .5 x 2/4 = .25 and .5 x 1 = .5; none: .5 and .5."""
    S = T_([[[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]],
            [[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]]])
    valid = T_([[True, True, False, False], [True, True, True, True]])
    inputs = M.ObjectiveInputs(S, valid[:, None, :].expand_as(S), orig_means=T_([0.5, 0.5]),
                               similarity=torch.zeros(2, 4), valid=valid)
    fraction = valid.float().mean(1)
    for validity, want in (("multiply", [0.25, 0.5]), ("none", [0.5, 0.5])):
        comps, u = M.WeightedSum({"difficulty": 1.0}, validity=validity)(inputs, fraction)
        assert comps["difficulty"].tolist() == [0.5, 0.5] and u.tolist() == want, validity
    with pytest.raises(ValueError, match="objective.validity: must be one of multiply, none"):
        M.WeightedSum({"difficulty": 1.0}, validity="divide")


def test_utility_needs_the_weighted_components():
    with pytest.raises(ValueError, match="objective.weights.realism"):
        M.utility({"difficulty": T_([0.1])}, {"realism": 1.0}, T_([1.0]))


@pytest.mark.parametrize(
    "weights, key",
    [
        ({"difficulty": 1.0, "foo": 0.1}, "objective.weights.foo: unknown objective"),
        ({"difficulty": -0.1}, "objective.weights.difficulty: must be"),
        ({"difficulty": math.nan}, "objective.weights.difficulty: must be"),
        ({"difficulty": 0.0, "novelty": 0}, "objective.weights: all weights are zero"),
        ({}, "objective.weights: all weights are zero"),
        ({"difficulty": "a"}, "objective.weights.difficulty: must be a number"),
    ],
)
def test_check_weights(weights, key):
    with pytest.raises(ValueError, match=key) as e:
        check_weights(weights)
    assert "\n" not in str(e.value)


def test_check_weights_accepts_zeros_and_extra_names():
    w = {"difficulty": 0.0, "separation": 1, "novelty": 0.5}
    assert check_weights(w) == {"difficulty": 0.0, "separation": 1.0, "novelty": 0.5}
    assert check_weights({"mine": 2}, known=["mine"]) == {"mine": 2.0}


def test_components_rejects_unknown_and_missing_inputs():
    S, m = full(S1)
    with pytest.raises(ValueError, match="unknown objective"):
        M.components(["bogus"], M.ObjectiveInputs(S, m))
    with pytest.raises(ValueError, match="novelty needs orig_means"):
        M.components(["novelty"], M.ObjectiveInputs(S, m))


def test_batched_particles_are_independent():
    S, m = full([S1[0], [[0.0] * 4] * 3])
    # particle 1: every taker mean 0 -> difficulty 1, separation 0
    assert M.difficulty(S, m).tolist() == pytest.approx([0.25, 1.0])
    assert M.separation(S, m).tolist() == pytest.approx([0.25, 0.0])
