"""Means with confidence intervals: t-based over seeds and percentile bootstrap."""

import math

import numpy as np
from scipy import stats


def _as_1d(values, name="values"):
    x = np.asarray(values, dtype="float64").reshape(-1)
    if x.size == 0:
        raise ValueError(f"{name} is empty. Received: {name}={values!r}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite. Received: {name}={values!r}")
    return x


def _check_confidence(confidence):
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1). Received: confidence={confidence}")


def t_ci(values, confidence=0.95):
    """Mean and two-sided Student-t confidence interval.

    `mean ± t_{1-α/2, n-1} · sd / sqrt(n)` with the sample sd (ddof=1). Use
    it over independent repeats, e.g. one mean test Dice per training seed.

    Args:
        values: 1-D sample.
        confidence: coverage, e.g. 0.95.

    Returns:
        `{"mean", "ci": [lo, hi], "sd", "sem", "n", "confidence", "method": "t"}`;
        with n == 1 the interval is `[nan, nan]` (undefined) and sd/sem are nan.
    """
    _check_confidence(confidence)
    x = _as_1d(values)
    n = x.size
    mean = float(x.mean())
    if n < 2:
        return {"mean": mean, "ci": [math.nan, math.nan], "sd": math.nan, "sem": math.nan,
                "n": n, "confidence": confidence, "method": "t"}
    sd = float(x.std(ddof=1))
    sem = sd / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1)) * sem
    return {"mean": mean, "ci": [mean - half, mean + half], "sd": sd, "sem": sem,
            "n": n, "confidence": confidence, "method": "t"}


def bootstrap_ci(values, confidence=0.95, n_boot=10000, seed=0, statistic=np.mean):
    """Statistic with a percentile-bootstrap confidence interval (seeded).

    Resamples `values` with replacement `n_boot` times with
    `numpy.random.default_rng(seed)`; the interval is the (α/2, 1-α/2)
    quantiles of the resampled statistic. Same seed, same interval.

    Args:
        values: 1-D sample (e.g. per-image Dice).
        confidence: coverage.
        n_boot: number of resamples.
        seed: integer seed.
        statistic: function of a 2-D array with an `axis` argument
            (`np.mean`, `np.median`).

    Returns:
        `{"mean": statistic(values), "ci": [lo, hi], "n", "confidence",
        "method": "bootstrap", "n_boot", "seed"}`.
    """
    _check_confidence(confidence)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1. Received: n_boot={n_boot}")
    x = _as_1d(values)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    boot = statistic(x[idx], axis=1)
    alpha = 1.0 - confidence
    lo, hi = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    return {"mean": float(statistic(x)), "ci": [float(lo), float(hi)], "n": int(x.size),
            "confidence": confidence, "method": "bootstrap", "n_boot": int(n_boot), "seed": seed}


def mean_ci(values, confidence=0.95, method="t", n_boot=10000, seed=0):
    """Mean with a confidence interval; `method` is `"t"` or `"bootstrap"`."""
    if method == "t":
        return t_ci(values, confidence)
    if method == "bootstrap":
        return bootstrap_ci(values, confidence, n_boot=n_boot, seed=seed)
    raise ValueError(f"method must be 't' or 'bootstrap'. Received: method={method!r}")
