import math

import numpy as np
import pytest

from lung_keras.stats import bootstrap_ci
from lung_keras.stats import mean_ci
from lung_keras.stats import t_ci

# [values, expected mean, expected (lo, hi)]
T_CI_CASES = [
    # mean 0.95, sd = sqrt(((-.01)^2 + 0 + .01^2)/2) = 0.01, sem = 0.01/sqrt(3) = 0.0057735
    # t_{0.975, 2} = 4.302653 -> half = 0.0248414
    [[0.94, 0.95, 0.96], 0.95, (0.9251586, 0.9748414)],
    # mean 2.5, sd = 1.2909944, sem = 0.6454972, t_{0.975,3} = 3.182446 -> half = 2.0542600
    [[1, 2, 3, 4], 2.5, (0.4457400, 4.5542600)],
    # identical seeds: zero-width interval
    [[0.9, 0.9], 0.9, (0.9, 0.9)],
]


@pytest.mark.parametrize("values, mean, ci", T_CI_CASES)
def test_t_ci_worked_examples(values, mean, ci):
    r = t_ci(values)
    assert r["mean"] == pytest.approx(mean)
    np.testing.assert_allclose(r["ci"], ci, rtol=0, atol=1e-6)
    assert r["n"] == len(values) and r["method"] == "t"


def test_t_ci_single_seed_is_undefined():
    r = t_ci([0.97])
    assert r["mean"] == 0.97 and all(math.isnan(v) for v in r["ci"])


def test_t_ci_matches_scipy_interval():
    stats = pytest.importorskip("scipy.stats")
    x = np.random.default_rng(3).normal(0.9, 0.05, 7)
    lo, hi = stats.t.interval(0.9, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    np.testing.assert_allclose(t_ci(x, confidence=0.9)["ci"], [lo, hi], rtol=1e-9)


def test_bootstrap_ci_seeded_and_sensible():
    x = np.random.default_rng(0).normal(0.9, 0.05, 40)
    r1 = bootstrap_ci(x, seed=7, n_boot=2000)
    r2 = bootstrap_ci(x, seed=7, n_boot=2000)
    r3 = bootstrap_ci(x, seed=8, n_boot=2000)
    assert r1 == r2
    assert r1["ci"] != r3["ci"]
    lo, hi = r1["ci"]
    assert lo < x.mean() < hi
    # percentile bootstrap ~ normal interval: half width ~ 1.96 * sd / sqrt(n)
    assert (hi - lo) / 2 == pytest.approx(1.96 * x.std(ddof=1) / np.sqrt(40), rel=0.15)


def test_bootstrap_ci_constant_sample():
    assert bootstrap_ci([0.5, 0.5, 0.5], n_boot=50)["ci"] == [0.5, 0.5]


def test_bootstrap_ci_matches_scipy_percentile_roughly():
    stats = pytest.importorskip("scipy.stats")
    x = np.random.default_rng(1).normal(0, 1, 30)
    ours = bootstrap_ci(x, n_boot=5000, seed=0)["ci"]
    ref = stats.bootstrap((x,), np.mean, method="percentile", n_resamples=5000, random_state=0).confidence_interval
    np.testing.assert_allclose(ours, [ref.low, ref.high], atol=0.05)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        [{"values": []}, "empty"],
        [{"values": [1.0, float("nan")]}, "finite"],
        [{"values": [1.0, 2.0], "confidence": 1.5}, "confidence"],
        [{"values": [1.0, 2.0], "method": "bca"}, "method"],
    ],
)
def test_mean_ci_ill_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mean_ci(**kwargs)


def test_mean_ci_dispatch():
    assert mean_ci([1, 2, 3])["method"] == "t"
    assert mean_ci([1, 2, 3], method="bootstrap", n_boot=100)["method"] == "bootstrap"
