"""A tiny real comparison run (`tiny_compare`, shared with the Arms view tests: tests/conftest.py): report,
metrics.json and their agreement; a leave-one-out ablation run of its own."""

import json
import re

import numpy as np
import pytest

pytest.importorskip("lung_keras.report")

from lung_keras import data
from lung_keras.compare import CompareConfig
from lung_keras.compare import run_comparison
from lung_keras.report import read_results


@pytest.mark.slow
def test_report_files_and_structure(tiny_compare):
    out, results = tiny_compare
    for name in ("report.md", "report.html", "metrics.json"):
        assert (out / name).is_file()
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(results.to_dict()))
    assert saved["schema_version"] == 2 and read_results(out / "metrics.json").conditions == results.conditions
    # The policy in Albumentations' A.save form beside its Keras config; the baseline has none.
    from lung_keras.augment.bridge import policy_from_dict

    albumentations = policy_from_dict(saved["config"]["policy_albumentations"])
    assert [type(t).__name__ for t in albumentations.transforms] == [
        t["class_name"] for t in saved["config"]["policy"]["config"]["transforms"]]
    assert saved["config"]["arm_policies_albumentations"]["baseline"] is None
    names = [c["name"] for c in results["conditions"]]
    # Healthy-only: test normal and abnormal cases separately, for every train size.
    assert names == [
        "train=6 healthy-only | test (abnormal)", "train=6 healthy-only | test (normal)",
        "train=6 healthy-only | extra: hospital_b", "train=6 healthy-only | extra: hospital_c",
        "train=all healthy-only | test (abnormal)", "train=all healthy-only | test (normal)",
        "train=all healthy-only | extra: hospital_b", "train=all healthy-only | extra: hospital_c",
    ]
    folder_layout = results["conditions"][3]["arms"]["augmented"]
    assert folder_layout["n_images"] == 3 and len(folder_layout["per_image"]["per_seed"]) == 2
    extra = results["conditions"][2]["arms"]["baseline"]
    assert extra["n_images"] == 4 and len(extra["per_image"]["ids"]) == 4
    for c in results["conditions"]:
        assert set(c["arms"]) == {"baseline", "augmented"}
        assert c["arms"]["baseline"]["n_seeds"] == 2
        assert c["paired"]["definition"] == "augmented - baseline"
        # Identical test images for every arm (paired by id).
        assert c["arms"]["baseline"]["per_image"]["ids"] == c["arms"]["augmented"]["per_image"]["ids"]
    # TensorBoard logs per run, named by condition / arm-seed.
    assert (out / "runs" / "train=all-healthy-only" / "augmented-seed1" / "logs").is_dir()
    for rel in results["figures"].values():
        assert (out / rel).is_file(), rel


@pytest.mark.slow
def test_report_leads_with_the_new_hospital_results(tiny_compare):
    out, results = tiny_compare
    findings = (out / "report.md").read_text().split("## Findings", 1)[1].split("\n## ", 1)[0].split("\n### ")[0]
    assert findings.lstrip().startswith("New data from another hospital")
    c = next(c for c in results["conditions"] if c["name"] == "train=all healthy-only | extra: hospital_b")
    assert f"hospital_b (4 images, train=all healthy-only): augmented {c['arms']['augmented']['mean']:.4f}" in findings
    bullets = [line for line in findings.splitlines() if line.startswith("- ")]
    assert all("| extra:" in b for b in bullets[:4]) and not any("| extra:" in b for b in bullets[4:])


@pytest.mark.slow
def test_postprocessed_dice_is_reported_beside_the_raw_dice(tiny_compare):
    out, results = tiny_compare
    report = (out / "report.md").read_text()
    assert "## Post-processing" in report
    for c in results["conditions"]:
        assert set(c["postprocessed"]) == set(c["arms"])
        post = c["postprocessed"]["augmented"]
        assert post["per_image"]["ids"] == c["arms"]["augmented"]["per_image"]["ids"]
        assert f"{post['mean']:.4f}" in report


@pytest.mark.slow
def test_report_numbers_equal_metrics_json(tiny_compare):
    out, results = tiny_compare
    report = (out / "report.md").read_text()
    for c in results["conditions"]:
        for arm in ("baseline", "augmented"):
            assert f"{c['arms'][arm]['mean']:.4f}" in report
        assert f"{c['paired']['mean_diff']:+.4f}" in report or f"{c['paired']['mean_diff']:.4f}" in report
    # Per-arm mean is the mean of per-seed means, each the mean of that seed's per-image Dice.
    c = results["conditions"][-2]
    per_seed = np.array(c["arms"]["augmented"]["per_image"]["per_seed"])
    np.testing.assert_allclose(per_seed.mean(1), c["arms"]["augmented"]["per_seed_mean"], atol=1e-12)
    assert c["arms"]["augmented"]["mean"] == pytest.approx(per_seed.mean())


def test_config_validation():
    with pytest.raises(ValueError, match="train_sizes"):
        CompareConfig(train_sizes=("ten",))
    assert CompareConfig(train_sizes=("10", "ALL")).train_sizes == (10, "all")
    # The shared training settings are a TrainConfig (its defaults and checks); None means its default.
    from lung_keras.train import TrainConfig

    config = CompareConfig(epochs=2, healthy_only=True, normalization=None, seeds=1)
    assert config.train == TrainConfig(epochs=2, healthy_only=True, verbose=0)
    assert config.record()["epochs"] == 2 and config.record()["seeds"] == 1
    with pytest.raises(ValueError, match="strategy='gpus'"):
        CompareConfig(strategy="gpus")
    with pytest.raises(TypeError, match=r"unknown settings \['seed'\]"):
        CompareConfig(seed=3)  # set per run by the comparison


def _two_step_policy():
    from lung_keras import augment

    return augment.Compose([augment.Rotate(limit=10, p=0.7), augment.RandomGamma(gamma_limit=(80, 120), p=0.5)],
                           p=0.9, fuse=False, seed=3)


def test_leave_one_out_arms_keep_the_policy_settings():
    from lung_keras.compare import leave_one_out
    from lung_keras.compare import plan_arms
    from lung_keras.compare import with_flip

    policy = _two_step_policy()
    arms = leave_one_out(policy)
    assert list(arms) == ["without Rotate", "without RandomGamma"]
    label, without_rotate = arms["without Rotate"]
    assert label == "Rotate" and [type(t).__name__ for t in without_rotate.transforms] == ["RandomGamma"]
    assert (without_rotate.p, without_rotate.fuse, without_rotate.seed) == (0.9, False, 3)
    assert tuple(without_rotate.transforms[0].get_config()["gamma_limit"]) == (80, 120)
    flip = with_flip(policy)
    assert [type(t).__name__ for t in flip.transforms] == ["HorizontalFlip", "Rotate", "RandomGamma"]
    assert (flip.p, flip.fuse) == (0.9, False)  # the flip arm differs from the policy by the flip only
    plan = plan_arms(CompareConfig(ablate=True), policy)
    assert list(plan.arms) == ["baseline", "augmented", "augmented+flip", "without Rotate", "without RandomGamma"]
    assert plan.others == [("without Rotate", "augmented", "Rotate"), ("without RandomGamma", "augmented", "RandomGamma")]
    with pytest.raises(ValueError, match="two or more transforms"):
        leave_one_out(policy.transforms[0])


def test_arms_and_ablate_validation(tmp_path):
    with pytest.raises(ValueError, match="cannot be combined"):
        CompareConfig(arms=("a.json",), ablate=True)
    with pytest.raises(ValueError, match="distinct names"):
        CompareConfig(arms=("x/a.json", "y/a.yaml"))


@pytest.mark.slow
def test_ablation_run_reports_each_transform(montgomery_dir, tmp_path):
    ds = data.load_dataset(montgomery_dir, pixel_checks=False)
    config = CompareConfig(out=str(tmp_path), seeds=1, epochs=1, image_size=32, base_filters=4, depth=2, subset=24,
                           healthy_only=True, flip_ablation=True, ablate=True, verbose=0)
    results = run_comparison(config, dataset=ds, policy=_two_step_policy())
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["config"]["arms"] == ["baseline", "augmented", "augmented+flip", "without Rotate",
                                       "without RandomGamma"]
    steps = {arm: [t["class_name"] for t in cfg["config"]["transforms"]]
             for arm, cfg in saved["config"]["arm_policies"].items() if cfg}
    assert steps == {"augmented": ["Rotate", "RandomGamma"], "augmented+flip": ["HorizontalFlip", "Rotate", "RandomGamma"],
                     "without Rotate": ["RandomGamma"], "without RandomGamma": ["Rotate"]}
    for c in results["conditions"]:
        assert c["ablation"]["definition"] == "augmented+flip - augmented"
        labels = [p["label"] for p in c["comparisons"]]
        assert labels == ["Rotate", "RandomGamma"]
        assert c["comparisons"][0]["definition"] == "augmented - without Rotate"
        assert "wilcoxon_p_holm" in c["comparisons"][0]
    report = (tmp_path / "report.md").read_text()
    assert "## What each transform changes" in report
    assert "| Rotate | test (abnormal) |" in report and "| RandomGamma | test (normal) |" in report
