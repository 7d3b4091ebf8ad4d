import math

import pytest

from lung_keras.report import HELPED
from lung_keras.report import HURT
from lung_keras.report import NO_DIFFERENCE
from lung_keras.report import add_holm
from lung_keras.report import explain_verdict
from lung_keras.report import verdict


def _paired(ci=(0.01, 0.03), wp=0.001, bp=0.002, seed_ci=(0.005, 0.02), **extra):
    p = {"a": "baseline", "b": "augmented", "mean_diff": sum(ci) / 2, "ci95": list(ci), "wilcoxon_p": wp,
         "bootstrap_p": bp, "seed_diff": {"per_seed": [0.01, 0.015], "mean": 0.0125, "ci95": list(seed_ci)}}
    p.update(extra)
    return p


# [paired entry, kwargs, expected label]
VERDICT_CASES = [
    [_paired(), {}, HELPED],
    [_paired(ci=(-0.03, -0.01), seed_ci=(-0.02, -0.005)), {}, HURT],
    [_paired(ci=(-0.001, 0.03)), {}, NO_DIFFERENCE],  # CI includes 0, even with a positive mean
    [_paired(wp=0.2), {}, NO_DIFFERENCE],  # CI excludes 0 but Wilcoxon does not agree
    [_paired(bp=0.05), {}, NO_DIFFERENCE],  # p == alpha is not below alpha
    [_paired(seed_ci=(-0.01, 0.03)), {}, NO_DIFFERENCE],  # not robust across training seeds
    [_paired(seed_ci=(-0.01, 0.03)), {"require_seed_ci": False}, HELPED],
    [_paired(seed_ci=(math.nan, math.nan)), {}, HELPED],  # one seed: no seed-level CI to check
    [_paired(ci=(math.nan, math.nan)), {}, NO_DIFFERENCE],
    [_paired(wp=None), {}, NO_DIFFERENCE],
    [_paired(wilcoxon_p_holm=0.09), {}, NO_DIFFERENCE],  # Holm-adjusted p is used when present
    [_paired(wp=0.03, bp=0.03), {"alpha": 0.01}, NO_DIFFERENCE],
]


@pytest.mark.parametrize("paired, kwargs, label", VERDICT_CASES)
def test_explain_verdict(paired, kwargs, label):
    assert explain_verdict(paired, **kwargs)[0] == label


def test_verdict_words():
    assert verdict(_paired()) == "augmentation helped"
    assert verdict(_paired(ci=(-0.03, -0.01), seed_ci=(-0.02, -0.01))) == "augmentation hurt"
    assert verdict(_paired(ci=(-0.01, 0.01))) == "augmentation: no significant difference"
    flip = _paired(a="augmented", b="augmented+flip", ci=(-0.03, -0.01), seed_ci=(-0.02, -0.01))
    assert verdict(flip) == "augmented+flip vs augmented hurt"
    with pytest.raises(ValueError, match="alpha"):
        verdict(_paired(), alpha=0)


def test_add_holm_per_family():
    results = {"conditions": [
        {"name": "c1", "paired": {"wilcoxon_p": 0.01, "bootstrap_p": 0.04}, "ablation": {"wilcoxon_p": 0.2}},
        {"name": "c2", "paired": {"wilcoxon_p": 0.03, "bootstrap_p": 0.01}, "ablation": {"wilcoxon_p": 0.5}},
    ]}
    add_holm(results)
    c1, c2 = results["conditions"]
    # paired Wilcoxon family [0.01, 0.03]: 2 * 0.01 = 0.02; max(0.02, 1 * 0.03) = 0.03
    assert c1["paired"]["wilcoxon_p_holm"] == pytest.approx(0.02)
    assert c2["paired"]["wilcoxon_p_holm"] == pytest.approx(0.03)
    # paired bootstrap family [0.04, 0.01]: 2 * 0.01 = 0.02; max(0.02, 0.04) = 0.04
    assert c2["paired"]["bootstrap_p_holm"] == pytest.approx(0.02)
    assert c1["paired"]["bootstrap_p_holm"] == pytest.approx(0.04)
    # ablation is its own family [0.2, 0.5]: 0.4, 0.5
    assert c1["ablation"]["wilcoxon_p_holm"] == pytest.approx(0.4)
    assert c2["ablation"]["wilcoxon_p_holm"] == pytest.approx(0.5)
    assert "bootstrap_p_holm" not in c1["ablation"]


def test_reason_names_the_failing_p_values_in_words():
    reason = explain_verdict(_paired(wilcoxon_p_holm=0.09, bootstrap_p_holm=0.2))[1]
    assert reason == (
        "the 95% CI excludes 0 but the Holm-adjusted Wilcoxon p-value and Holm-adjusted bootstrap p-value "
        "are not below alpha"
    )
    assert explain_verdict(_paired(bp=0.3))[1] == "the 95% CI excludes 0 but the bootstrap p-value is not below alpha"
