"""`recipes/ct_slices.py`: the slab split, the settings' checks, and a tiny run in a fresh process (1 epoch, a
tiny U-Net) whose report has the promised structure with finite numbers."""

import json
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from lung_keras.ct_compare import CTSlicesConfig
from lung_keras.ct_compare import slab_split

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


# [num_slices, val_slices, gap, expected val, expected train]
SLAB_CASES = [
    # 10 slices, 2 validate from (10 - 2) // 2 = 4: val 4-5, gap 1 drops 3 and 6, the rest trains.
    [10, 2, 1, [4, 5], [0, 1, 2, 7, 8, 9]],
    [10, 2, 0, [4, 5], [0, 1, 2, 3, 6, 7, 8, 9]],
    # The ACRIN case: 41 slices, 8 validate (16-23), 15 and 24 dropped, 31 train.
    [41, 8, 1, list(range(16, 24)), list(range(0, 15)) + list(range(25, 41))],
]


@pytest.mark.parametrize("n, val_slices, gap, val, train", SLAB_CASES)
def test_slab_split(n, val_slices, gap, val, train):
    got_train, got_val = slab_split(n, val_slices, gap)
    assert got_val.tolist() == val and got_train.tolist() == train
    assert not set(got_train) & set(got_val)


def test_slab_split_leaves_something_to_train():
    with pytest.raises(ValueError, match="No training slice left"):
        slab_split(4, 4, 1)


@pytest.mark.parametrize("kwargs, match", [
    [{"arms": ("original", "flipped")}, "Received: arms="],
    [{"epochs": 0}, "Received: epochs=0"],
    [{"size": 100, "depth": 4}, "divisible by 2\\*\\*depth = 16. Received: size=100"],
    [{"spacing_mm": 0}, "Received: spacing_mm=0"],
])
def test_config_checks(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CTSlicesConfig(**kwargs)


@pytest.mark.slow
def test_tiny_recipe_run_in_a_fresh_process(tmp_path):
    if not (SHARED / "ct_acrin_flt_breast_001").is_dir() or not (SHARED / "ct_cip_copdgene_64").is_dir():
        pytest.skip(f"shared CT data not found in {SHARED}")
    out = tmp_path / "ct"
    run = subprocess.run(
        [sys.executable, str(REPO / "recipes" / "ct_slices.py"), "--out", str(out), "--seeds", "1", "--epochs", "1",
         "--repeats", "1", "--base-filters", "4", "--depth", "3", "--size", "64", "--spacing-mm", "6.0"],
        capture_output=True, text=True, timeout=600, cwd=REPO)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "wall time" in run.stdout

    results = json.loads((out / "results.json").read_text())
    assert results["schema_version"] == 1 and results["wall_seconds"] > 0
    assert results["data"]["train_patient"] == "ct_acrin_flt_breast_001" and results["data"]["test_patient"] == "ct-64"
    assert (results["data"]["train_slices"], results["data"]["val_slices"], results["data"]["test_slices"]) == (31, 8, 79)
    assert list(results["arms"]) == ["threshold", "original", "augmented", "original+2 largest",
                                     "augmented+2 largest"]
    for arm, entry in results["arms"].items():
        for key in ("test_dice_mean", "test_dice_left_mean", "test_dice_right_mean", "val_slab_dice_mean"):
            assert 0.0 <= entry[key] <= 1.0 and math.isfinite(entry[key]), (arm, key, entry[key])
    # The threshold baseline in the same table, at the value tests/test_baselines.py measures on the CIP volume.
    assert results["arms"]["threshold"]["test_dice_mean"] == pytest.approx(0.9722, abs=0.002)
    assert [r["method"] for r in results["test"]] == ["threshold", "original seed 0", "original+2 largest seed 0",
                                                      "augmented seed 0", "augmented+2 largest seed 0"]
    assert len(results["validation_slab"]) == 5 and results["limits"]

    # Each run saved an inference model taking HU (Windowing first) that agrees with the windowed pipeline.
    import keras

    for run_record in results["runs"]:
        assert run_record["saved_vs_windowed_max_abs_diff"] < 1e-4
        model = keras.saving.load_model(run_record["inference_model"])
        assert type(model.layers[1]).__name__ == "Windowing"
        hu = np.full((1, 64, 64, 1), -1000.0, np.float32)
        assert model.predict(hu, verbose=0).shape == (1, 64, 64, 1)

    report = (out / "report.md").read_text()
    assert "| method | test Dice | left | right | validation slab Dice | seeds |" in report
    assert "## Data limits" in report and "Wall time:" in report
    assert (out / "scores.csv").read_text().count("\n") == 1 + 10  # header + 5 test rows + 5 validation-slab rows
