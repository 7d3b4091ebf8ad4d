import json
import math
import re

import numpy as np
import pytest

from lung_keras import stats
from lung_keras.report import add_holm
from lung_keras.report import write_report

IDS = [f"MCUCXR_{i:04d}_0" for i in range(12)]


def _condition(name, shift, rng, n_seeds=3):
    base = rng.uniform(0.85, 0.97, (n_seeds, len(IDS)))
    aug = base + rng.normal(shift, 0.01, base.shape)
    flip = aug + rng.normal(-0.005, 0.01, base.shape)
    arms = {
        "baseline": stats.summarize_arm(base, IDS, list(range(n_seeds)), n_boot=500),
        "augmented": stats.summarize_arm(aug, IDS, list(range(n_seeds)), n_boot=500),
        "augmented+flip": stats.summarize_arm(flip, IDS, list(range(n_seeds)), n_boot=500),
    }
    train, test_set = name.split(" | ")
    return {
        "name": name,
        "train": train,
        "test_set": test_set,
        "arms": arms,
        "paired": stats.summarize_paired(arms["baseline"], arms["augmented"], n_boot=500),
        "ablation": stats.summarize_paired(arms["augmented"], arms["augmented+flip"], "augmented",
                                           "augmented+flip", n_boot=500),
    }


@pytest.fixture
def results(tmp_path):
    from lung_keras.viz import plot_history

    rng = np.random.default_rng(0)
    (tmp_path / "figures").mkdir()
    plot_history({"loss": [1.0, 0.5], "val_loss": [1.2, 0.6]}, path=tmp_path / "figures" / "curves.png")
    res = {
        "config": {"epochs": 40, "learning_rate": 0.001, "seeds": [0, 1, 2], "policy": {"name": "Compose", "p": 1.0}},
        "alpha": 0.05,
        "conditions": [
            _condition("train=all | test", 0.0, rng),
            _condition("train=all | other hospital", 0.03, rng),
        ],
        "figures": {"curves train=all": "figures/curves.png", "missing figure": "figures/not_there.png"},
        "notes": ["a free-text note"],
        "wall_seconds": 812.3,
    }
    return add_holm(res)


def _numbers(obj, out):
    if isinstance(obj, bool):
        return out
    if isinstance(obj, (int, float)):
        if math.isfinite(obj):
            out.append(float(obj))
    elif isinstance(obj, dict):
        for v in obj.values():
            _numbers(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _numbers(v, out)
    return out


NUMBER = re.compile(r"(?<![\w.])[-+]?\d+\.\d+(?:e[-+]?\d+)?")


def test_every_decimal_number_in_report_is_a_dict_number(results, tmp_path):
    md_path, _ = write_report(results, tmp_path)
    text = open(md_path).read()
    values = np.array(_numbers(results, []))
    tokens = NUMBER.findall(text)
    assert len(tokens) > 50
    for tok in tokens:
        mantissa = tok.split("e")[0]
        decimals = len(mantissa.split(".")[1])
        exponent = int(tok.split("e")[1]) if "e" in tok else 0
        tol = 0.5 * 10.0 ** (exponent - decimals) + 1e-12
        assert np.any(np.abs(values - float(tok)) <= tol), f"{tok} in report.md is not a number of the results dict"


def test_report_shows_arm_means_differences_and_verdicts(results, tmp_path):
    md_path, html_path = write_report(results, tmp_path)
    md = open(md_path).read()
    html = open(html_path).read()
    for cond in results["conditions"]:
        for arm in cond["arms"].values():
            assert f"{arm['mean']:.4f}" in md and f"{arm['mean']:.4f}" in html
            lo, hi = arm["ci95"]
            assert f"{lo:.4f} to {hi:.4f}" in md
        p = cond["paired"]
        assert f"{p['mean_diff']:+.4f}" in md and f"{p['mean_diff']:+.4f}" in html
        assert f"{p['ci95'][0]:+.4f} to {p['ci95'][1]:+.4f}" in md
        assert f"{p['wilcoxon_p']:.3g}" in md and f"{p['wilcoxon_p_holm']:.3g}" in md
    findings = md.split("## Findings")[1].split("## Results per condition")[0]
    # no shift -> no claim; a consistent +0.03 shift over 12 images and 3 seeds -> helped
    assert "train=all | test: augmentation: no significant difference." in findings
    assert "train=all | other hospital: augmentation helped." in findings
    assert "Augmentation helped in 1 of 2 conditions, hurt in 0, and made no significant difference in 1" in findings
    assert "augmented+flip" in findings  # the ablation is reported too
    assert "a free-text note" in md


def test_no_gain_claimed_when_ci_includes_zero(results, tmp_path):
    cond = results["conditions"][1]
    cond["paired"]["ci95"] = [-0.001, 0.05]  # positive mean, CI touching 0
    md = open(write_report(results, tmp_path)[0]).read()
    assert "other hospital: augmentation helped" not in md
    assert "other hospital: augmentation: no significant difference" in md
    assert "includes 0" in md


def test_html_is_self_contained_and_md_links_relative(results, tmp_path):
    md_path, html_path = write_report(results, tmp_path)
    html = open(html_path).read()
    assert html.startswith("<!DOCTYPE html>")
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert len(srcs) == 2
    assert srcs[0].startswith("data:image/png;base64,")
    assert srcs[1] == "figures/not_there.png"  # missing files stay referenced, never crash
    assert "http://" not in html and "https://" not in html
    md = open(md_path).read()
    assert "![curves train=all](figures/curves.png)" in md
    linked = write_report(results, tmp_path, embed_images=False, html_name="linked.html")[1]
    assert '<img src="figures/curves.png"' in open(linked).read()


def test_single_seed_and_json_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    res = {"conditions": [_condition("train=all | one seed", 0.02, rng, n_seeds=1)]}
    del res["conditions"][0]["ablation"]  # optional, like config, figures, notes and wall time
    res = json.loads(json.dumps(res).replace("NaN", "null"))  # as read back from metrics.json
    md = open(write_report(res, tmp_path)[0]).read()
    assert "n/a" in md  # the t interval over one seed is undefined
    assert "Other comparisons" not in md and "## Figures" not in md and "## Configuration" not in md
    assert f"{res['conditions'][0]['arms']['baseline']['mean']:.4f}" in md


def test_a_missing_field_fails_naming_it_instead_of_printing_na(results, tmp_path):
    saved = json.loads(json.dumps(results))
    del saved["conditions"][1]["arms"]["augmented"]["n_images"]
    with pytest.raises(ValueError, match=r"metrics.json: conditions\[1\].arms\['augmented'\] has no field 'n_images'"):
        write_report(saved, tmp_path)
    saved = json.loads(json.dumps(results))
    del saved["conditions"][0]["paired"]["wilcoxon_p"]
    with pytest.raises(ValueError, match=r"conditions\[0\].paired has no field 'wilcoxon_p'"):
        write_report(saved, tmp_path)


def test_metrics_json_round_trip_and_the_unversioned_format(results, tmp_path):
    from lung_keras.report import SCHEMA_VERSION
    from lung_keras.report import ComparisonResult
    from lung_keras.report import read_results
    from lung_keras.report import write_results

    typed = ComparisonResult.from_dict(results)
    write_results(typed, tmp_path / "metrics.json")
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved.pop("schema_version") == SCHEMA_VERSION
    assert saved == json.loads(json.dumps(results))  # the keys and values of the first, unversioned format
    (tmp_path / "old.json").write_text(json.dumps(saved))  # a metrics.json written before schema_version
    old = read_results(tmp_path / "old.json")
    assert old == typed and old["conditions"][1]["paired"]["wilcoxon_p_holm"] == typed.conditions[1].paired.holm["wilcoxon_p"]
    assert open(write_report(old, tmp_path / "a")[0]).read() == open(write_report(results, tmp_path / "b")[0]).read()
    with pytest.raises(ValueError, match="schema_version 99"):
        ComparisonResult.from_dict({**saved, "schema_version": 99})
