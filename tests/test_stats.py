import pytest

from swarm.report.stats import bootstrap_ci, paired_difference


def test_paired_mean_by_hand():
    # seeds 1, 2, 3 shared; seed 4 only in a (a failed baseline run): left out
    ds = {1: 0.50, 2: 0.70, 3: 0.40, 4: 0.90}
    base = {1: 0.30, 2: 0.60, 3: 0.50}
    p = paired_difference(ds, base)
    assert p.seeds == (1, 2, 3)
    assert p.mean == pytest.approx((0.20 + 0.10 - 0.10) / 3)
    # bounds are means of resamples of {0.2, 0.1, -0.1}: between the smallest and largest difference
    assert -0.10 - 1e-12 <= p.low <= p.mean <= p.high <= 0.20 + 1e-12
    assert not p.significant  # one seed of three went the other way: the CI spans 0


def test_two_value_bootstrap_by_hand():
    # resampled means of {0, 2}: 0 (p 1/4), 1 (1/2), 2 (1/4); the 2.5 % and 97.5 % quantiles are 0 and 2
    assert bootstrap_ci([0.0, 2.0]) == (0.0, 2.0)
    # a constant difference has a point CI, and it excludes 0
    p = paired_difference({0: 1.0, 1: 2.0, 2: 3.0}, {0: 0.5, 1: 1.5, 2: 2.5})
    assert (p.mean, p.low, p.high) == pytest.approx((0.5, 0.5, 0.5)) and p.significant
    assert p.format() == "+0.500 [+0.500, +0.500]"


def test_seeded_and_failure_cases():
    values = [0.3, -0.1, 0.2, 0.05, 0.4]
    assert bootstrap_ci(values, seed=7) == bootstrap_ci(values, seed=7)
    low, high = bootstrap_ci(values)
    assert low < sum(values) / 5 < high and low > -0.1 and high < 0.4
    with pytest.raises(ValueError, match="share no seed"):
        paired_difference({0: 1.0}, {1: 1.0})
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci([])
