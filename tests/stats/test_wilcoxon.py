import numpy as np
import pytest

from lung_keras.stats import wilcoxon_signed_rank

# [differences, kwargs, expected statistic, expected p]
WILCOXON_CASES = [
    # d = 1..5 all positive: R+ = 15, R- = 0; exact null over 2^5 = 32 sign patterns,
    # only one has R- <= 0 -> P(R- <= 0) = 1/32; two-sided p = 2/32 = 0.0625
    [[1, 2, 3, 4, 5], {}, 0.0, 0.0625],
    # one-sided greater: P(R+ >= 15) = 1/32 = 0.03125
    [[1, 2, 3, 4, 5], {"alternative": "greater"}, 15.0, 0.03125],
    # d = [1, -2, 3, 4]: R+ = 1 + 3 + 4 = 8, R- = 2, statistic 2.
    # subsets of {1,2,3,4} with sum <= 2: {}, {1}, {2} -> 3/16; two-sided p = 6/16 = 0.375
    [[1, -2, 3, 4], {}, 2.0, 0.375],
    # asymptotic, no ties: n = 5, R+ = 15, mean 7.5, sd = sqrt(5*6*11/24) = 3.7081
    # z = 2.0226, two-sided p = 2 * (1 - Phi(2.0226)) = 0.043114
    [[1, 2, 3, 4, 5], {"method": "asymptotic"}, 0.0, 0.0431144],
    # ties |d| = 1, 1, 2: average ranks 1.5, 1.5, 3; d = [1, -1, 2] -> R+ = 4.5, R- = 1.5.
    # exact sign-flip distribution of ranks {1.5, 1.5, 3}: sums 0, 1.5, 1.5, 3, 3, 4.5, 4.5, 6 (each 1/8)
    # P(T <= 1.5) = 3/8, P(T >= 4.5) = 3/8 -> two-sided 2 * 3/8 = 0.75
    [[1, -1, 2], {"method": "permutation"}, 1.5, 0.75],
    # all differences zero: no evidence of a difference
    [[0, 0, 0], {}, 0.0, 1.0],
]


@pytest.mark.parametrize("d, kwargs, statistic, p", WILCOXON_CASES)
def test_wilcoxon_worked_examples(d, kwargs, statistic, p):
    r = wilcoxon_signed_rank(d, **kwargs)
    assert r["statistic"] == pytest.approx(statistic)
    assert r["pvalue"] == pytest.approx(p, abs=1e-6)


def test_wilcoxon_two_samples_is_difference():
    a = np.array([0.90, 0.92, 0.95, 0.97, 0.91, 0.93])
    b = a + np.array([0.01, 0.02, -0.005, 0.03, 0.015, 0.025])
    assert wilcoxon_signed_rank(b, a) == wilcoxon_signed_rank(b - a)


def test_wilcoxon_auto_method_choice():
    assert wilcoxon_signed_rank(np.arange(1, 51))["method"] == "exact"
    assert wilcoxon_signed_rank(np.arange(1, 52))["method"] == "asymptotic"
    assert wilcoxon_signed_rank([1, 1, 2, 3])["method"] == "permutation"  # ties, n <= 13
    assert wilcoxon_signed_rank([1, 1] + list(range(2, 20)))["method"] == "asymptotic"  # ties, n > 13


def _scipy_cases():
    rng = np.random.default_rng(1)
    cases = []
    for i in range(40):
        n = int(rng.integers(3, 70))
        d = rng.normal(0.3, 1.0, n)
        if i % 3 == 1:
            d = np.round(d, 1)  # ties and zeros
        elif i % 3 == 2:
            d = np.round(d)  # many ties and zeros
        if np.any(d != 0):
            cases.append(d)
    return cases


@pytest.mark.parametrize("zero_method", ["wilcox", "pratt", "zsplit"])
@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
@pytest.mark.parametrize("method", ["auto", "asymptotic", "exact"])
def test_wilcoxon_matches_scipy(zero_method, alternative, method):
    stats = pytest.importorskip("scipy.stats")
    for d in _scipy_cases():
        for correction in (False, True):
            try:
                ref = stats.wilcoxon(d, zero_method=zero_method, alternative=alternative, method=method,
                                     correction=correction)
            except ValueError:
                continue
            ours = wilcoxon_signed_rank(d, zero_method=zero_method, alternative=alternative, method=method,
                                        correction=correction)
            assert ours["statistic"] == pytest.approx(ref.statistic)
            assert ours["pvalue"] == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        [{"x": [1, 2], "zero_method": "drop"}, "zero_method"],
        [{"x": [1, 2], "alternative": "bigger"}, "alternative"],
        [{"x": [1, 2], "method": "mc"}, "method"],
        [{"x": [1, 2], "y": [1]}, "same length"],
        [{"x": []}, "non-empty"],
    ],
)
def test_wilcoxon_ill_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        wilcoxon_signed_rank(**kwargs)
