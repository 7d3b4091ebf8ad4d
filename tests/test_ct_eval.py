"""Volume scores per patient and per lung, the score tables, and `lung-keras evaluate --method threshold` in a
fresh process on the shared ACRIN (DICOM + RTSTRUCT) and CIP (NRRD + label map) cases."""

import csv
import json
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from lung_keras.ct_eval import VolumeScores
from lung_keras.ct_eval import ct_cases
from lung_keras.ct_eval import format_table
from lung_keras.ct_eval import has_sides
from lung_keras.ct_eval import mask_contours
from lung_keras.ct_eval import read_scores
from lung_keras.ct_eval import score_volume
from lung_keras.ct_eval import summarize_scores
from lung_keras.ct_eval import write_rtstruct
from lung_keras.ct_eval import write_scores
from lung_keras.data import Volume

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
ACRIN = SHARED / "ct_acrin_flt_breast_001" / "dicom"
ACRIN_RS = ACRIN / "RS.ACRIN-FLT-Breast_001.CT_1.dcm"
CIP = SHARED / "ct_cip_copdgene_64"


def _grid(shape=(1, 2, 4), spacing=(2.0, 1.0, 1.0)):
    """An axial grid: columns run to the patient's left (+x), so column 3 is the leftmost."""
    return Volume(np.zeros(shape, np.float32), spacing, (0.0, 0.0, 0.0), np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0.]]))


@pytest.mark.parametrize("mask, expected", [
    [np.array([0, 1, 1]), False],  # whole lung (1 is also LEFT_LUNG, but 2 never occurs)
    [np.array([0, 1, 2]), True],
    [np.array([0, 2, 2]), False],  # one side only
    [np.array([0, 1, 2, 3]), False],  # another label: not a left/right mask
    [np.zeros(3), False],
])
def test_has_sides(mask, expected):
    assert has_sides(mask) is expected


def test_score_volume_worked():
    image = _grid()
    # Reference: right lung (2) in columns 0-1, left (1) in columns 2-3, both rows: 4 voxels each.
    ref = np.array([[[2, 2, 1, 1], [2, 2, 1, 1]]], np.uint8)
    # Prediction: one label; misses column 0 of row 0 and adds nothing: 7 voxels.
    pred = np.array([[[0, 1, 1, 1], [1, 1, 1, 1]]], np.uint8)
    s = score_volume(pred, ref, image, "p", "m")
    # Whole: 2 * 7 / (7 + 8) = 0.9333. Sides by geometry: the mask's centre of mass is at x = (1+2+3 + 0+1+2+3)/7
    # = 1.714 mm, so columns 2-3 (x = 2, 3) are left, columns 0-1 right. Left: 4 of 4 -> 1.0; right:
    # predicted 3, reference 4, 3 shared -> 2 * 3 / 7 = 0.8571.
    assert s.dice == pytest.approx(14 / 15)
    assert (s.dice_left, s.dice_right) == (pytest.approx(1.0), pytest.approx(6 / 7))
    # Volumes: voxel 2 x 1 x 1 mm = 0.002 mL.
    assert (s.predicted_ml, s.reference_ml, s.shape) == (pytest.approx(0.014), pytest.approx(0.016), (1, 2, 4))


def test_score_volume_without_sides_and_on_mismatched_grids():
    image = _grid()
    ref = np.array([[[1, 1, 0, 0], [1, 1, 0, 0]]], np.uint8)
    s = score_volume(ref, ref, image)
    assert s.dice == 1.0 and math.isnan(s.dice_left) and math.isnan(s.dice_right)
    with pytest.raises(ValueError, match=r"prediction.shape=\(1, 2, 3\)"):
        score_volume(np.zeros((1, 2, 3)), ref, image)


def test_write_scores_tables_round_trip(tmp_path):
    rows = [VolumeScores("a", "threshold", 0.9, 0.8, 1.0, 10.0, 11.0, (2, 3, 4)),
            VolumeScores("b", "threshold", 0.7, float("nan"), float("nan"), 5.0, 6.0, (1, 1, 1)),
            VolumeScores("a", "net", 0.5, 0.4, 0.6, 1.0, 11.0, (2, 3, 4))]
    csv_path, json_path = write_scores(rows, tmp_path, extra={"wall_seconds": 1.5})
    with open(csv_path, newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["patient"] for r in table] == ["a", "b", "a"]
    assert table[1]["dice_left"] == "" and table[0]["shape"] == "2x3x4"  # NaN: an empty cell
    record = json.loads(json_path.read_text())
    assert record["schema_version"] == 1 and record["wall_seconds"] == 1.5
    assert record["rows"][1]["dice_left"] is None  # NaN: null
    # Per method, the mean over the patients that have the value: threshold whole (0.9 + 0.7) / 2, left 0.8 (a only).
    assert record["summary"]["threshold"] == {"n": 2, "mean_dice": pytest.approx(0.8), "mean_dice_left": 0.8,
                                              "mean_dice_right": 1.0}
    assert record["summary"] == summarize_scores(rows)
    back = read_scores(json_path)
    assert back[0] == rows[0] and back[2] == rows[2] and math.isnan(back[1].dice_left)
    assert "| b | threshold | 0.7000 | n/a | n/a | 5 | 6 |" in format_table(rows)


def test_write_scores_refuses_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"Received: rows=\[\]"):
        write_scores([], tmp_path)


def test_ct_cases_arguments(tmp_path):
    with pytest.raises(ValueError, match="both left and right labels"):
        ct_cases(tmp_path, left_labels=[9])
    with pytest.raises(FileNotFoundError, match="no such file"):
        ct_cases(tmp_path / "absent.nrrd")
    (tmp_path / "manifest.csv").write_text("patient,image,mask\n")
    with pytest.raises(ValueError, match="do not pass a mask too"):
        ct_cases(tmp_path, mask=tmp_path / "m.nrrd")


# [mask, expected polygons as (row, col) corners]
CONTOUR_CASES = [
    # One pixel: its four corners, half a pixel around its centre (1, 1).
    [[[0, 0, 0], [0, 1, 0], [0, 0, 0]], [[(0.5, 0.5), (0.5, 1.5), (1.5, 1.5), (1.5, 0.5)]]],
    # A 2x3 block: four corners only (collinear edge points merged).
    [[[1, 1, 1], [1, 1, 1]], [[(-0.5, -0.5), (-0.5, 2.5), (1.5, 2.5), (1.5, -0.5)]]],
    [[[0, 0], [0, 0]], []],
]


@pytest.mark.parametrize("mask, expected", CONTOUR_CASES)
def test_mask_contours_worked(mask, expected):
    got = mask_contours(np.array(mask))
    assert sorted(sorted(map(tuple, p.tolist())) for p in got) == sorted(sorted(p) for p in expected)


def test_mask_contours_fill_back_exactly():
    # Random masks (holes, islands, pixels touching at a corner): the even-odd fill of the contours is the mask.
    from lung_keras.data import even_odd_fill

    rng = np.random.default_rng(0)
    for _ in range(50):
        mask = rng.random((7, 9)) < 0.5
        polygons = mask_contours(mask)
        np.testing.assert_array_equal(even_odd_fill(polygons, mask.shape), mask)


def test_write_rtstruct_needs_a_dicom_grid(tmp_path):
    mask = _grid().with_array(np.ones((1, 2, 4), np.uint8))
    with pytest.raises(ValueError, match="references DICOM slices"):
        write_rtstruct(mask, tmp_path / "rs.dcm")


# -------------------------------------------------------------------- the command, in a fresh process


def _lung_keras(*args):
    return subprocess.run([sys.executable, "-m", "lung_keras.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_evaluate_needs_a_model_or_the_threshold_method(tmp_path):
    from lung_keras.cli import build_parser

    args = build_parser().parse_args(["evaluate", "--data", str(tmp_path)])  # --model is optional now
    with pytest.raises(ValueError, match="evaluate needs --model"):
        args.func(args)
    args = build_parser().parse_args(["evaluate", "--method", "threshold", "--model", "m.keras", "--data", "d"])
    with pytest.raises(ValueError, match="--method threshold uses no model"):
        args.func(args)


@pytest.mark.slow
def test_evaluate_threshold_on_acrin_dicom_and_rtstruct(tmp_path):
    if not ACRIN.is_dir():
        pytest.skip(f"shared CT data not found: {ACRIN}")
    from lung_keras.data import read_dicom_series
    from lung_keras.data import read_nifti

    out = _lung_keras("evaluate", "--method", "threshold", "--data", str(ACRIN), "--mask", str(ACRIN_RS),
                      "--missing-slices", "skip", "--rtstruct", "--out", str(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    assert "skipped 1 contour" in out.stderr  # the right lung's contour on a slice absent from this copy
    summary = json.loads(out.stdout)
    (row,) = summary["rows"]
    # tests/test_baselines.py: 0.9705 whole; the sides from the RTSTRUCT's RT LUNG / LT LUNG.
    assert row["patient"] == "ct_acrin_flt_breast_001" and row["dice"] == pytest.approx(0.9705, abs=0.002)
    assert row["dice_left"] == pytest.approx(0.964, abs=0.005) and row["dice_right"] == pytest.approx(0.973, abs=0.005)
    assert row["reference_ml"] == pytest.approx(2299, rel=0.01)
    # The predicted mask reads back on the DICOM series' grid, left and right labelled.
    image = read_dicom_series(ACRIN)
    mask = read_nifti(tmp_path / "ct_acrin_flt_breast_001_mask.nii.gz")
    assert mask.same_grid(image)
    assert set(np.unique(mask.array).tolist()) == {0, 1, 2}
    assert (tmp_path / "scores.csv").is_file() and read_scores(tmp_path / "scores.json")[0].dice == row["dice"]
    # The RTSTRUCT written beside it references the series and reads back as the same voxels, sides included.
    from lung_keras.data import read_rtstruct_mask
    from lung_keras.data import rtstruct_roi_names

    rtstruct = tmp_path / "ct_acrin_flt_breast_001_mask_rtstruct.dcm"
    assert rtstruct_roi_names(rtstruct) == ["LT LUNG", "RT LUNG"]
    np.testing.assert_array_equal(read_rtstruct_mask(rtstruct, image).array, mask.array)


@pytest.mark.slow
def test_evaluate_threshold_on_a_cip_manifest_folder(tmp_path):
    if not CIP.is_dir():
        pytest.skip(f"shared CT data not found: {CIP}")
    from lung_keras.data import read_nifti
    from lung_keras.data import read_nrrd

    folder = tmp_path / "cases"
    folder.mkdir()
    (folder / "manifest.csv").write_text(f"patient,image,mask\ncip64,{CIP / 'ct-64.nrrd'},{CIP / 'lm-64.nrrd'}\n")
    out = _lung_keras("evaluate", "--method", "threshold", "--data", str(folder), "--left-labels", "9,10,11",
                      "--right-labels", "12,13,14", "--low-byte", "--out", str(tmp_path / "eval"))
    assert out.returncode == 0, out.stderr
    assert "cip64: threshold volume Dice 0.972" in out.stdout  # the 0.972 (tests/test_baselines.py)
    (row,) = read_scores(tmp_path / "eval" / "scores.json")
    assert row.dice == pytest.approx(0.9722, abs=0.002)
    assert row.dice_left == pytest.approx(0.969, abs=0.005) and row.dice_right == pytest.approx(0.975, abs=0.005)
    mask = read_nifti(tmp_path / "eval" / "cip64_mask.nii.gz")
    assert mask.same_grid(read_nrrd(CIP / "ct-64.nrrd"))
