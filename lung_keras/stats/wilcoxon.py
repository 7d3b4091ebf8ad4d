"""Wilcoxon signed-rank test in numpy (scipy-compatible results, no scipy needed)."""

import math

import numpy as np

from lung_keras.stats._special import normal_cdf
from lung_keras.stats._special import normal_sf

_ZERO_METHODS = ("wilcox", "pratt", "zsplit")
_ALTERNATIVES = ("two-sided", "less", "greater")
_METHODS = ("auto", "exact", "asymptotic", "permutation")


def _rankdata_average(a):
    """Average ranks (1-based) and tie-group sizes of a 1-D array."""
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    ranks = np.empty(a.size, dtype="float64")
    ties = []
    i = 0
    while i < a.size:
        j = i
        while j + 1 < a.size and sorted_a[j + 1] == sorted_a[i]:
            j += 1
        ranks[order[i : j + 1]] = 0.5 * (i + j) + 1.0
        ties.append(j - i + 1)
        i = j + 1
    return ranks, np.asarray(ties, dtype="float64")


def _signflip_pmf(ranks):
    """Null pmf of sum(ranks of positive signs) under random signs.

    `ranks` are multiples of 0.5; the pmf is over the grid 0, 0.5, 1, ... .
    This is the exact conditional (permutation) distribution, ties included.
    """
    r2 = np.rint(np.asarray(ranks) * 2.0).astype(np.int64)
    pmf = np.zeros(int(r2.sum()) + 1)
    pmf[0] = 1.0
    top = 0
    for r in r2:
        new = 0.5 * pmf
        new[r : top + r + 1] += 0.5 * pmf[: top + 1]
        pmf = new
        top += int(r)
    return pmf


def wilcoxon_signed_rank(
    x,
    y=None,
    zero_method="wilcox",
    correction=False,
    alternative="two-sided",
    method="auto",
):
    """Wilcoxon signed-rank test of paired samples (`d = x - y`, median 0?).

    Same arguments, defaults and results as `scipy.stats.wilcoxon` (scipy
    1.17), implemented with numpy so that scipy stays a test-only dependency.

    Args:
        x: first sample, or the differences when `y` is None.
        y: second sample (paired with `x`).
        zero_method: `"wilcox"` (drop zero differences), `"pratt"` (rank them,
            then drop) or `"zsplit"` (split their ranks between + and -).
        correction: continuity correction (asymptotic method only).
        alternative: `"two-sided"`, `"less"` or `"greater"` (for `d`).
        method: `"exact"` (exact null distribution of the rank sum for the
            number of non-zero differences; with ties or zeros it is
            conservative, as in scipy), `"asymptotic"` (normal approximation
            with tie correction), `"permutation"` (exact sign-flip
            distribution of the observed ranks, correct with ties) or `"auto"`
            as in scipy: exact when n <= 50 without ties or zeros; with
            ties/zeros, permutation when n <= 13, else asymptotic; asymptotic
            when n > 50.

    Returns:
        dict with `statistic` (min(R+, R-) two-sided, else R+), `pvalue`,
        `r_plus`, `r_minus`, `z` (nan unless asymptotic), `n` (differences
        used), `n_zero`, `method` (the method actually used). With no non-zero
        difference (`zero_method="wilcox"`) the p-value is 1.0 (no evidence of
        a difference; scipy returns nan there).
    """
    if zero_method not in _ZERO_METHODS:
        raise ValueError(f"zero_method must be one of {_ZERO_METHODS}. Received: zero_method={zero_method!r}")
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}. Received: alternative={alternative!r}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}. Received: method={method!r}")
    d = np.asarray(x, dtype="float64").reshape(-1)
    if y is not None:
        yy = np.asarray(y, dtype="float64").reshape(-1)
        if yy.shape != d.shape:
            raise ValueError(f"x and y must have the same length. Received: {d.size} and {yy.size}")
        d = d - yy
    if d.size == 0 or not np.all(np.isfinite(d)):
        raise ValueError("wilcoxon_signed_rank needs a non-empty, finite sample.")
    n_total = d.size
    zeros = d == 0
    n_zero = int(zeros.sum())

    if zero_method == "wilcox":
        dd = d[~zeros]
        ranks, ties = _rankdata_average(np.abs(dd)) if dd.size else (np.zeros(0), np.zeros(0))
        r_plus = float(ranks[dd > 0].sum())
        r_minus = float(ranks[dd < 0].sum())
        count = dd.size
        nonzero_ranks = ranks
        mn = count * (count + 1.0) / 4.0
        var = count * (count + 1.0) * (2.0 * count + 1.0)
        tie_term = float(np.sum(ties**3 - ties))
        has_ties = bool(np.any(ties > 1))
    else:
        ranks, ties = _rankdata_average(np.abs(d))
        r_plus = float(ranks[d > 0].sum())
        r_minus = float(ranks[d < 0].sum())
        nonzero_ranks = ranks[~zeros]
        count = n_total
        mn = count * (count + 1.0) / 4.0
        var = count * (count + 1.0) * (2.0 * count + 1.0)
        has_ties = bool(np.any(ties > 1))
        if zero_method == "zsplit":
            half_zero = float(ranks[zeros].sum()) / 2.0
            r_plus += half_zero
            r_minus += half_zero
            tie_term = float(np.sum(ties**3 - ties))
        else:  # pratt (Cureton 1967)
            mn -= n_zero * (n_zero + 1.0) / 4.0
            var -= n_zero * (n_zero + 1.0) * (2.0 * n_zero + 1.0)
            # zeros rank first and form the first tie group: exclude it
            ties_nz = ties[1:] if n_zero > 0 else ties
            tie_term = float(np.sum(ties_nz**3 - ties_nz))
    se = math.sqrt(max(var - tie_term / 2.0, 0.0) / 24.0)

    used = method
    if method == "auto":
        if n_total > 50:
            used = "asymptotic"
        elif not (has_ties or n_zero > 0):
            used = "exact"
        elif n_total <= 13:
            used = "permutation"
        else:
            used = "asymptotic"

    statistic = min(r_plus, r_minus) if alternative == "two-sided" else r_plus
    result = {"statistic": statistic, "pvalue": math.nan, "r_plus": r_plus, "r_minus": r_minus,
              "z": math.nan, "n": int(count),
              "n_zero": n_zero, "method": used}
    if nonzero_ranks.size == 0:
        result["pvalue"] = 1.0
        return result

    if used == "asymptotic":
        z = (r_plus - mn) / se if se > 0 else 0.0
        if correction:
            sign = {"greater": 1.0, "less": -1.0}.get(alternative, float(np.sign(z)))
            z -= sign * 0.5 / se
        if alternative == "greater":
            p = normal_sf(z)
        elif alternative == "less":
            p = normal_cdf(z)
        else:
            p = 2.0 * normal_sf(abs(z))
        result["z"] = -abs(z) if alternative == "two-sided" else z
    elif used == "exact":
        pmf = _signflip_pmf(np.arange(1, count + 1, dtype="float64"))[::2]  # integer sums only
        def cdf(k):
            return float(pmf[: int(k) + 1].sum()) if k >= 0 else 0.0
        def sf(k):
            return float(pmf[max(int(k), 0) :].sum())
        if alternative == "less":
            p = cdf(math.ceil(r_plus))
        elif alternative == "greater":
            p = sf(math.floor(r_plus))
        else:
            p = 2.0 * min(sf(math.floor(r_plus)), cdf(math.ceil(r_plus)))
    else:  # permutation: exact sign-flip distribution of the observed ranks
        pmf = _signflip_pmf(nonzero_ranks)
        obs = r_plus - (float(ranks[zeros].sum()) / 2.0 if zero_method == "zsplit" else 0.0)
        k = int(round(obs * 2.0))
        less = float(pmf[: k + 1].sum())
        greater = float(pmf[k:].sum())
        p = {"less": less, "greater": greater}.get(alternative, 2.0 * min(less, greater))
    result["pvalue"] = float(min(max(p, 0.0), 1.0))
    return result
