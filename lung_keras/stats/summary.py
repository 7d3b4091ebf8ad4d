"""Builders for the `lung_keras.report` results-dict entries (arm and paired)."""

import math

import numpy as np

from lung_keras.stats.ci import bootstrap_ci
from lung_keras.stats.ci import t_ci
from lung_keras.stats.paired import paired_bootstrap_test
from lung_keras.stats.paired import paired_differences
from lung_keras.stats.paired import wilcoxon_signed_rank


def _per_seed_matrix(per_seed_dice):
    m = np.asarray(per_seed_dice, dtype="float64")
    if m.ndim == 1:
        m = m[None, :]
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"per_seed_dice must be (n_seeds, n_images). Received: shape={m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError("per_seed_dice must be finite.")
    return m


def summarize_arm(per_seed_dice, ids=None, seeds=None, confidence=0.95, n_boot=10000, seed=0):
    """One arm of one condition, as stored in the results dict.

    Args:
        per_seed_dice: (n_seeds, n_images) per-image Dice of each training
            seed on the condition's test images (a 1-D array = one seed).
        ids: image ids (n_images), in the column order.
        seeds: training seeds (n_seeds), for the record.
        confidence: CI coverage (the key names say 95 for the default).
        n_boot, seed: bootstrap resamples and RNG seed for `ci95_images`.

    Returns:
        `{"per_seed_mean": [...]` (mean Dice per seed), `"mean"` (mean of
        those), `"ci95": [lo, hi]` (t interval over seeds; NaN with one seed),
        `"sd"` (over seeds), `"n_seeds", "n_images", "seeds",
        "ci95_images": [lo, hi]` (percentile bootstrap over images of the
        seed-averaged per-image Dice), `"per_image": {"ids": [...], "dice":
        [...]` (seed-averaged), `"per_seed": [[...], ...]}}`.
    """
    m = _per_seed_matrix(per_seed_dice)
    n_seeds, n_images = m.shape
    if ids is None:
        ids = [str(i) for i in range(n_images)]
    ids = [str(i) for i in ids]
    if len(ids) != n_images:
        raise ValueError(f"Need one id per image. Received: {len(ids)} ids for {n_images} images")
    per_seed_mean = m.mean(axis=1)
    t = t_ci(per_seed_mean, confidence)
    per_image = m.mean(axis=0)
    boot = bootstrap_ci(per_image, confidence, n_boot=n_boot, seed=seed)
    return {
        "per_seed_mean": [float(v) for v in per_seed_mean],
        "mean": t["mean"],
        "ci95": t["ci"],
        "sd": t["sd"],
        "n_seeds": int(n_seeds),
        "n_images": int(n_images),
        "seeds": list(seeds) if seeds is not None else None,
        "ci95_images": boot["ci"],
        "per_image": {"ids": ids, "dice": [float(v) for v in per_image], "per_seed": m.tolist()},
    }


def summarize_paired(arm_a, arm_b, a="baseline", b="augmented", confidence=0.95, n_boot=10000, seed=0):
    """Paired comparison `b - a` of two arm entries from `summarize_arm`.

    Pairs the seed-averaged per-image Dice by image id (both arms must hold
    the same ids), and, when both arms have the same number of seeds, the
    per-seed means by seed position (seed k of each arm shares its split and
    initial weights).

    Returns:
        `{"a", "b", "definition": "b - a", "n"` (images), `"mean_diff",
        "median_diff", "ci95"` (paired bootstrap percentile CI of the mean
        per-image difference), `"ci95_t"` (t interval of it), `"wilcoxon_p",
        "bootstrap_p", "n_better", "n_worse", "n_tied", "seed_diff":
        {"per_seed": [...], "mean", "ci95"}` (None when seeds do not pair)`}`.
    """
    ids_a, ids_b = arm_a["per_image"]["ids"], arm_b["per_image"]["ids"]
    da = dict(zip(ids_a, arm_a["per_image"]["dice"]))
    db = dict(zip(ids_b, arm_b["per_image"]["dice"]))
    if set(da) != set(db):
        raise ValueError(f"Arms '{a}' and '{b}' were evaluated on different images; cannot pair them.")
    ids = list(ids_a)
    xa = np.array([da[i] for i in ids])
    xb = np.array([db[i] for i in ids])
    diffs = paired_differences(xa, xb, confidence)
    boot = paired_bootstrap_test(xa, xb, n_boot=n_boot, seed=seed, confidence=confidence)
    wil = wilcoxon_signed_rank(xb, xa)
    seed_diff = None
    sa, sb = arm_a["per_seed_mean"], arm_b["per_seed_mean"]
    if len(sa) == len(sb):
        per_seed = [float(vb - va) for va, vb in zip(sa, sb)]
        t = t_ci(per_seed, confidence)
        seed_diff = {"per_seed": per_seed, "mean": t["mean"], "ci95": t["ci"]}
    return {
        "a": a,
        "b": b,
        "definition": f"{b} - {a}",
        "n": diffs["n"],
        "mean_diff": diffs["mean_diff"],
        "median_diff": diffs["median_diff"],
        "ci95": boot["ci"],
        "ci95_t": diffs["ci"],
        "wilcoxon_p": wil["pvalue"],
        "bootstrap_p": boot["pvalue"],
        "n_better": diffs["n_better"],
        "n_worse": diffs["n_worse"],
        "n_tied": diffs["n_tied"],
        "seed_diff": seed_diff,
    }


