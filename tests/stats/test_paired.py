import math

import numpy as np
import pytest

from lung_keras.stats import holm
from lung_keras.stats import paired_bootstrap_test
from lung_keras.stats import paired_differences
from lung_keras.stats import summarize_arm
from lung_keras.stats import summarize_paired


def test_paired_differences_worked_example():
    a = [0.90, 0.80, 0.70, 0.60]
    b = [0.95, 0.80, 0.75, 0.50]
    # d = b - a = [0.05, 0, 0.05, -0.10]; mean 0; median 0.025; sd = sqrt((.0025*2 + .01)/3) = 0.0707107
    r = paired_differences(a, b, tol=1e-9)
    assert r["mean_diff"] == pytest.approx(0.0, abs=1e-12)
    assert r["median_diff"] == pytest.approx(0.025)
    assert r["sd_diff"] == pytest.approx(0.0707107, abs=1e-7)
    assert (r["n_better"], r["n_worse"], r["n_tied"]) == (2, 1, 1)
    # t_{0.975,3} = 3.182446, sem = 0.0353553 -> half 0.1125165
    np.testing.assert_allclose(r["ci"], [-0.1125165, 0.1125165], atol=1e-6)


def test_paired_bootstrap_consistent_shift():
    a = np.linspace(0.8, 0.95, 20)
    b = a + 0.02  # every image better by 0.02: every resampled mean diff is exactly 0.02
    r = paired_bootstrap_test(a, b, n_boot=999, seed=0)
    assert r["mean_diff"] == pytest.approx(0.02)
    np.testing.assert_allclose(r["ci"], [0.02, 0.02])
    # no centred resample reaches |0.02| -> p = 1 / (999 + 1)
    assert r["pvalue"] == pytest.approx(1 / 1000)


def test_paired_bootstrap_no_difference_and_seeding():
    a = np.random.default_rng(0).uniform(0.8, 1.0, 30)
    assert paired_bootstrap_test(a, a.copy(), n_boot=200)["pvalue"] == 1.0
    noise = np.random.default_rng(1).normal(0, 0.02, 30)
    r1 = paired_bootstrap_test(a, a + noise, n_boot=500, seed=3)
    r2 = paired_bootstrap_test(a, a + noise, n_boot=500, seed=3)
    assert r1 == r2
    lo, hi = r1["ci"]
    assert lo < r1["mean_diff"] < hi


def test_paired_bootstrap_p_agrees_with_t_test_roughly():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(5)
    a = rng.uniform(0.8, 0.95, 60)
    b = a + rng.normal(0.005, 0.02, 60)
    ours = paired_bootstrap_test(a, b, n_boot=4000, seed=0)["pvalue"]
    ref = stats.ttest_rel(b, a).pvalue
    assert ours == pytest.approx(ref, abs=0.03)


def test_paired_one_sided_and_errors():
    a = np.zeros(10)
    b = np.full(10, 0.1) + np.linspace(-0.01, 0.01, 10)
    assert paired_bootstrap_test(a, b, n_boot=200, alternative="greater")["pvalue"] < 0.01
    assert paired_bootstrap_test(a, b, n_boot=200, alternative="less")["pvalue"] == 1.0
    with pytest.raises(ValueError, match="paired"):
        paired_bootstrap_test([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="alternative"):
        paired_bootstrap_test([1, 2], [1, 2], alternative="both")


# [pvalues, expected adjusted, expected reject at 0.05]
HOLM_CASES = [
    # sorted 0.01, 0.02, 0.03 -> 3*0.01 = 0.03, max(0.03, 2*0.02 = 0.04) = 0.04, max(0.04, 1*0.03) = 0.04
    [[0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02], [True, False, False, True]],
    # 0.005*4 = 0.02; 0.01*3 = 0.03; 0.03*2 = 0.06; 0.04*1 -> max 0.06
    [[0.01, 0.02, 0.03], [0.03, 0.04, 0.04], [True, True, True]],
    [[0.5, None, 0.01], [0.5, math.nan, 0.02], [False, False, True]],  # None ignored, m = 2
    [[0.6, 0.7], [1.0, 1.0], [False, False]],  # capped at 1
]


@pytest.mark.parametrize("pvalues, adjusted, reject", HOLM_CASES)
def test_holm(pvalues, adjusted, reject):
    adj, rej = holm(pvalues)
    np.testing.assert_allclose(adj, adjusted)
    assert rej == reject


def test_holm_matches_statsmodels_formula_on_random():
    p = np.random.default_rng(0).uniform(0, 0.2, 8)
    adj, _ = holm(p)
    order = np.argsort(p)
    expected = np.maximum.accumulate(np.minimum(1, (8 - np.arange(8)) * p[order]))
    np.testing.assert_allclose(np.array(adj)[order], expected)


def test_summarize_arm_and_paired_schema():
    base = np.array([[0.90, 0.80, 0.70], [0.92, 0.78, 0.72]])  # 2 seeds x 3 images
    aug = base + np.array([[0.02, 0.01, 0.03], [0.0, 0.02, 0.01]])
    ids = ["x", "y", "z"]
    arm_a = summarize_arm(base, ids=ids, seeds=[0, 1], n_boot=200)
    arm_b = summarize_arm(aug, ids=ids, seeds=[0, 1], n_boot=200)
    # per-seed means: (0.9+0.8+0.7)/3 = 0.8, (0.92+0.78+0.72)/3 = 0.806667
    np.testing.assert_allclose(arm_a["per_seed_mean"], [0.8, 0.8066667], atol=1e-7)
    assert arm_a["mean"] == pytest.approx(0.8033333, abs=1e-7)
    assert arm_a["n_seeds"] == 2 and arm_a["n_images"] == 3
    np.testing.assert_allclose(arm_a["per_image"]["dice"], [0.91, 0.79, 0.71])
    p = summarize_paired(arm_a, arm_b, n_boot=200)
    # seed-averaged diffs: (0.02+0)/2, (0.01+0.02)/2, (0.03+0.01)/2 = 0.01, 0.015, 0.02 -> mean 0.015
    assert p["mean_diff"] == pytest.approx(0.015)
    assert p["definition"] == "augmented - baseline"
    assert (p["n"], p["n_better"], p["n_worse"]) == (3, 3, 0)
    # exact Wilcoxon, n = 3, all positive: p = 2 / 2^3 = 0.25
    assert p["wilcoxon_p"] == pytest.approx(0.25)
    # per-seed diffs: seed0 0.02, seed1 (0+0.02+0.01)/3 = 0.01
    np.testing.assert_allclose(p["seed_diff"]["per_seed"], [0.02, 0.01])
    arm_c = summarize_arm(aug[:, :2], ids=["x", "y"], n_boot=50)
    with pytest.raises(ValueError, match="different images"):
        summarize_paired(arm_a, arm_c)
