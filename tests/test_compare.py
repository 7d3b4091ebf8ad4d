"""A tiny real comparison run: report, metrics.json and their agreement."""

import json
import re

import numpy as np
import pytest

pytest.importorskip("lung_keras.report")

from lung_keras import data
from lung_keras.compare import CompareConfig
from lung_keras.compare import run_comparison


@pytest.fixture(scope="module")
def tiny_compare(montgomery_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    ds = data.load_dataset(montgomery_dir, pixel_checks=False)
    # An extra test set in the other (NLM) layout at another size, standing in for another hospital's data.
    from PIL import Image

    extra = tmp_path_factory.mktemp("extra") / "hospital_b"
    for sample in ds.samples[-4:]:
        name = f"{sample.id}.png"
        for sub, src, resample in (("CXR_png", sample.image_path, Image.BILINEAR),
                                   ("ManualMask/leftMask", sample.mask_paths[0], Image.NEAREST),
                                   ("ManualMask/rightMask", sample.mask_paths[0], Image.NEAREST)):
            (extra / sub).mkdir(parents=True, exist_ok=True)
            img = Image.open(src).resize((40, 48), resample)
            if sub.endswith("rightMask"):
                img = Image.new("L", img.size)  # left + right merged gives the original mask
            img.save(extra / sub / name)
    config = CompareConfig(out=str(out), seeds=2, epochs=2, image_size=32, base_filters=4, depth=2, subset=30,
                           train_sizes=("6", "all"), healthy_only=True, flip_ablation=True,
                           extra_test=(str(extra),), verbose=0)
    return out, run_comparison(config, dataset=ds)


@pytest.mark.slow
def test_report_files_and_structure(tiny_compare):
    out, results = tiny_compare
    for name in ("report.md", "report.html", "metrics.json"):
        assert (out / name).is_file()
    assert json.loads((out / "metrics.json").read_text())["conditions"] == json.loads(
        json.dumps(results["conditions"])
    )
    names = [c["name"] for c in results["conditions"]]
    # Healthy-only: test normal and abnormal cases separately, for every train size.
    assert names == [
        "train=6 healthy-only | test (abnormal)", "train=6 healthy-only | test (normal)",
        "train=6 healthy-only | extra: hospital_b",
        "train=all healthy-only | test (abnormal)", "train=all healthy-only | test (normal)",
        "train=all healthy-only | extra: hospital_b",
    ]
    extra = results["conditions"][2]["arms"]["baseline"]
    assert extra["n_images"] == 4 and len(extra["per_image"]["ids"]) == 4
    for c in results["conditions"]:
        assert set(c["arms"]) == {"baseline", "augmented", "augmented+flip"}
        assert c["arms"]["baseline"]["n_seeds"] == 2
        assert c["paired"]["definition"] == "augmented - baseline"
        # Identical test images for every arm (paired by id).
        assert c["arms"]["baseline"]["per_image"]["ids"] == c["arms"]["augmented"]["per_image"]["ids"]
    # TensorBoard logs per run, named by condition / arm-seed.
    assert (out / "runs" / "train=all-healthy-only" / "augmented-seed1" / "logs").is_dir()
    for rel in results["figures"].values():
        assert (out / rel).is_file(), rel


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
