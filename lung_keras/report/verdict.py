"""Plain verdicts from paired comparisons, and Holm correction over a comparison's results.

The verdict functions read a comparison by its `metrics.json` keys, so they take a `PairedComparison` or a
plain dict alike; a missing or NaN number there means "no significant difference", by definition.
"""

import collections.abc
import math

from lung_keras.report.results import ComparisonResult
from lung_keras.report.results import PairedComparison
from lung_keras.report.results import is_number as _num
from lung_keras.stats.paired import holm

HELPED = "helped"
HURT = "hurt"
NO_DIFFERENCE = "no significant difference"

P_KEYS = ("wilcoxon_p", "bootstrap_p")
_P_NAMES = {
    "wilcoxon_p": "Wilcoxon p-value",
    "bootstrap_p": "bootstrap p-value",
    "wilcoxon_p_holm": "Holm-adjusted Wilcoxon p-value",
    "bootstrap_p_holm": "Holm-adjusted bootstrap p-value",
}


def _pvalues(paired):
    """The p-values the verdict uses: Holm-adjusted ones (`<key>_holm`) when present."""
    out = {}
    for key in P_KEYS:
        if f"{key}_holm" in paired:
            out[f"{key}_holm"] = paired[f"{key}_holm"]
        elif key in paired:
            out[key] = paired[key]
    return out


def explain_verdict(paired, alpha=0.05, require_seed_ci=True):
    """Verdict on one paired comparison `b - a` and the reason for it.

    `"helped"` (b better than a) needs all of:
    - the 95% CI of the mean per-image difference (`paired["ci95"]`) above 0;
    - every p-value present (`wilcoxon_p`, `bootstrap_p`, or their Holm-adjusted
      `*_holm` versions when present) below `alpha`;
    - with `require_seed_ci` and a seed-level difference with a finite CI
      (`paired["seed_diff"]["ci95"]`, two or more seeds), that CI above 0 too,
      so a gain that does not hold across training seeds is not claimed.
    `"hurt"` mirrors it below 0. Anything else, including missing or NaN
    numbers, is `"no significant difference"`.

    Returns:
        `(label, reason)`; `label` is `"helped"`, `"hurt"` or
        `"no significant difference"`.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1). Received: alpha={alpha}")
    ci = paired.get("ci95")
    if not ci or not all(_num(v) for v in ci):
        return NO_DIFFERENCE, "no confidence interval of the difference"
    lo, hi = ci
    if lo <= 0.0 <= hi:
        return NO_DIFFERENCE, "the 95% CI of the per-image difference includes 0"
    direction = HELPED if lo > 0 else HURT
    pvals = _pvalues(paired)
    if not pvals or not all(_num(p) for p in pvals.values()):
        return NO_DIFFERENCE, "no p-value"
    failing = [_P_NAMES[k] for k, p in pvals.items() if p >= alpha]
    if failing:
        names = " and ".join(failing)
        verb = "are" if len(failing) > 1 else "is"
        return NO_DIFFERENCE, f"the 95% CI excludes 0 but the {names} {verb} not below alpha"
    seed = paired.get("seed_diff")
    if require_seed_ci and seed and seed.get("ci95") and all(_num(v) for v in seed["ci95"]):
        slo, shi = seed["ci95"]
        if (direction == HELPED and slo <= 0) or (direction == HURT and shi >= 0):
            return NO_DIFFERENCE, "the per-image difference is significant but the seed-level 95% CI includes 0"
    return direction, "the 95% CIs exclude 0 and the p-values are below alpha"


def verdict(paired, alpha=0.05, require_seed_ci=True, subject=None):
    """A plain verdict such as `"augmentation helped"`.

    Args:
        paired: a paired-comparison entry (see `lung_keras.report` schema).
        alpha: significance level.
        require_seed_ci: also require the seed-level CI to exclude 0.
        subject: what is judged; defaults to `"augmentation"` for
            `augmented - baseline`, else `"<b> vs <a>"`.

    Returns:
        `"<subject> helped"`, `"<subject> hurt"` or
        `"<subject>: no significant difference"`.
    """
    label, _ = explain_verdict(paired, alpha, require_seed_ci)
    if subject is None:
        a, b = paired.get("a", "baseline"), paired.get("b", "augmented")
        subject = "augmentation" if (a, b) == ("baseline", "augmented") else f"{b} vs {a}"
    if label == NO_DIFFERENCE:
        return f"{subject}: no significant difference"
    return f"{subject} {label}"


def comparisons(condition):
    """`(key, paired)` for every paired comparison of a condition, in order.

    Reads `condition["paired"]` (a dict or a list of dicts), `"ablation"` and
    `"comparisons"` (a list).
    """
    out = []
    for key in ("paired", "ablation", "comparisons"):
        value = condition.get(key)
        if isinstance(value, collections.abc.Mapping):
            out.append((key, value))
        elif isinstance(value, (list, tuple)):
            out.extend((f"{key}[{i}]", v) for i, v in enumerate(value) if isinstance(v, collections.abc.Mapping))
    return out


def add_holm(results, keys=P_KEYS):
    """Adds Holm-adjusted p-values (`<key>_holm`) to every comparison of `results` (a `ComparisonResult`
    or a results dict), in place.

    Each comparison kind (`"paired"`, `"ablation"`, `"comparisons[i]"`) across
    all conditions is one family of tests (e.g. augmented - baseline in every
    condition). Call it before writing
    `metrics.json` so the report's numbers stay the dict's numbers.

    Returns:
        `results`.
    """
    families = {}
    conditions = results.conditions if isinstance(results, ComparisonResult) else results.get("conditions", [])
    for cond in conditions:
        for key, paired in comparisons(cond):
            families.setdefault(key, []).append(paired)
    for members in families.values():
        for key in keys:
            if not any(key in p for p in members):
                continue
            adjusted, _ = holm([p.get(key) if _num(p.get(key)) else None for p in members])
            for p, adj in zip(members, adjusted):
                if key not in p:
                    continue
                value = adj if math.isfinite(adj) else None
                if isinstance(p, PairedComparison):
                    p.holm[key] = value
                else:
                    p[f"{key}_holm"] = value
    return results
