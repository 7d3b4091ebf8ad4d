"""Paired comparisons: per-image differences, Wilcoxon signed-rank and a seeded paired bootstrap test."""

import math

import numpy as np
from scipy import stats

from lung_keras.stats.ci import _as_1d
from lung_keras.stats.ci import _check_confidence
from lung_keras.stats.ci import t_ci


def _paired(a, b):
    a = _as_1d(a, "a")
    b = _as_1d(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must be paired (same length). Received: {a.size} and {b.size}")
    return a, b


def paired_differences(a, b, confidence=0.95, tol=0.0):
    """Summary of per-item differences `d = b - a` (e.g. augmented - baseline Dice per image).

    Args:
        a: reference values (baseline), one per image.
        b: compared values (augmented), same images in the same order.
        confidence: coverage of the t interval of the mean difference.
        tol: |d| <= tol counts as a tie.

    Returns:
        `{"n", "mean_diff", "median_diff", "sd_diff", "ci": [lo, hi]` (t
        interval of the mean difference), `"confidence", "n_better"` (b > a),
        `"n_worse", "n_tied", "min_diff", "max_diff"}`.
    """
    a, b = _paired(a, b)
    d = b - a
    t = t_ci(d, confidence)
    return {
        "n": int(d.size),
        "mean_diff": float(d.mean()),
        "median_diff": float(np.median(d)),
        "sd_diff": t["sd"],
        "ci": t["ci"],
        "confidence": confidence,
        "n_better": int((d > tol).sum()),
        "n_worse": int((d < -tol).sum()),
        "n_tied": int((np.abs(d) <= tol).sum()),
        "min_diff": float(d.min()),
        "max_diff": float(d.max()),
    }


_ZERO_METHODS = ("wilcox", "pratt", "zsplit")
_ALTERNATIVES = ("two-sided", "less", "greater")
_WILCOXON_METHODS = ("auto", "exact", "asymptotic", "permutation")


def _wilcoxon_method(d, method):
    """The method `scipy.stats.wilcoxon(method="auto")` picks for `d`, named."""
    if method != "auto":
        return method
    if d.size > 50:
        return "asymptotic"
    if np.all(d != 0) and np.unique(np.abs(d)).size == d.size:
        return "exact"
    return "permutation" if d.size <= 13 else "asymptotic"


def wilcoxon_signed_rank(x, y=None, zero_method="wilcox", correction=False, alternative="two-sided",
                         method="auto"):
    """Wilcoxon signed-rank test of paired samples (`d = x - y`, median 0?): `scipy.stats.wilcoxon`.

    Args:
        x: first sample, or the differences when `y` is None.
        y: second sample (paired with `x`).
        zero_method: `"wilcox"` (drop zero differences), `"pratt"` (rank them,
            then drop) or `"zsplit"` (split their ranks between + and -).
        correction: continuity correction (asymptotic method only).
        alternative: `"two-sided"`, `"less"` or `"greater"` (for `d`).
        method: `"exact"`, `"asymptotic"`, `"permutation"` (sign flips of the
            observed ranks, correct with ties: all 2^n of them when n <= 13,
            else 9999 seeded draws) or `"auto"` as in scipy: exact when
            n <= 50 without ties or zeros; with ties/zeros, permutation when
            n <= 13, else asymptotic; asymptotic when n > 50.

    Returns:
        dict with `statistic` (min(R+, R-) two-sided, else R+), `pvalue`, `z`
        (nan unless asymptotic), `n` (differences used), `n_zero`, `method`
        (the method actually used). With no non-zero difference the p-value
        is 1.0 (no evidence of a difference).
    """
    if zero_method not in _ZERO_METHODS:
        raise ValueError(f"zero_method must be one of {_ZERO_METHODS}. Received: zero_method={zero_method!r}")
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}. Received: alternative={alternative!r}")
    if method not in _WILCOXON_METHODS:
        raise ValueError(f"method must be one of {_WILCOXON_METHODS}. Received: method={method!r}")
    d = np.asarray(x, dtype="float64").reshape(-1)
    if y is not None:
        yy = np.asarray(y, dtype="float64").reshape(-1)
        if yy.shape != d.shape:
            raise ValueError(f"x and y must have the same length. Received: {d.size} and {yy.size}")
        d = d - yy
    if d.size == 0 or not np.all(np.isfinite(d)):
        raise ValueError(f"wilcoxon_signed_rank needs a non-empty, finite sample. Received: x={x!r}")
    n_zero = int(np.sum(d == 0))
    used = _wilcoxon_method(d, method)
    scipy_method = stats.PermutationMethod(random_state=0) if used == "permutation" else used
    res = stats.wilcoxon(d, zero_method=zero_method, correction=correction, alternative=alternative,
                         method=scipy_method)
    return {"statistic": float(res.statistic),
            "pvalue": 1.0 if n_zero == d.size else float(res.pvalue),
            "z": float(getattr(res, "zstatistic", math.nan)),
            "n": d.size - n_zero if zero_method == "wilcox" else d.size,
            "n_zero": n_zero, "method": used}


def paired_bootstrap_test(a, b, n_boot=10000, seed=0, confidence=0.95, alternative="two-sided"):
    """Paired bootstrap test and CI of the mean difference `d = b - a`.

    Resamples items (pairs) with replacement, `n_boot` times, with
    `numpy.random.default_rng(seed)`. The CI is the percentile interval of the
    resampled mean differences. The p-value uses the same resamples shifted to
    the null of no mean difference (Efron & Tibshirani 1993, sec. 16.4):
    with `m*` a resampled mean and `m` the observed mean, `m* - m` is a draw
    under H0, and the two-sided p-value is
    `(1 + #{|m* - m| >= |m|}) / (n_boot + 1)` (`greater`: `m* - m >= m`;
    `less`: `m* - m <= m`). The `+1` keeps p > 0.

    Returns:
        `{"mean_diff", "ci": [lo, hi], "pvalue", "n", "n_boot", "seed",
        "confidence", "alternative"}`.
    """
    _check_confidence(confidence)
    if alternative not in ("two-sided", "less", "greater"):
        raise ValueError(f"alternative must be 'two-sided', 'less' or 'greater'. Received: alternative={alternative!r}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1. Received: n_boot={n_boot}")
    a, b = _paired(a, b)
    d = b - a
    m = float(d.mean())
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(n_boot, d.size))
    boot = d[idx].mean(axis=1)
    alpha = 1.0 - confidence
    lo, hi = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    centered = boot - m
    eps = 1e-12 * max(1.0, abs(m))
    if alternative == "two-sided":
        hits = np.abs(centered) >= abs(m) - eps
    elif alternative == "greater":
        hits = centered >= m - eps
    else:
        hits = centered <= m + eps
    p = (1.0 + float(hits.sum())) / (n_boot + 1.0)
    return {"mean_diff": m, "ci": [float(lo), float(hi)], "pvalue": min(p, 1.0), "n": int(d.size),
            "n_boot": int(n_boot), "seed": seed, "confidence": confidence, "alternative": alternative}


def holm(pvalues, alpha=0.05):
    """Holm-Bonferroni step-down correction for multiple comparisons.

    Sort the m p-values ascending `p(1) <= ... <= p(m)`; the adjusted value of
    `p(i)` is `max_{j <= i} min(1, (m - j + 1) p(j))`. NaN / None entries are
    left out of m and stay NaN.

    Args:
        pvalues: sequence of p-values.
        alpha: family-wise error rate.

    Returns:
        `(adjusted, reject)`: lists in the input order; `reject[i]` is
        `adjusted[i] <= alpha` (False for NaN).
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1). Received: alpha={alpha}")
    p = np.array([math.nan if v is None else float(v) for v in pvalues], dtype="float64")
    valid = np.where(np.isfinite(p))[0]
    if np.any((p[valid] < 0) | (p[valid] > 1)):
        raise ValueError(f"p-values must be in [0, 1]. Received: pvalues={list(pvalues)!r}")
    adjusted = np.full(p.shape, math.nan)
    m = valid.size
    order = valid[np.argsort(p[valid], kind="mergesort")]
    running = 0.0
    for j, i in enumerate(order):
        running = max(running, min(1.0, (m - j) * p[i]))
        adjusted[i] = running
    reject = [bool(np.isfinite(v) and v <= alpha) for v in adjusted]
    return [float(v) for v in adjusted], reject
