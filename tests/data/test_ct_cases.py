"""CT folders with a manifest, `check_ct`, and `lung-keras data check` on CT, on the real shared cases (linked
into tmp folders, never copied into the repository) and on broken copies of them."""

import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from lung_keras.data import LEFT_LUNG
from lung_keras.data import RIGHT_LUNG
from lung_keras.data import CTError
from lung_keras.data import check_ct
from lung_keras.data import ct_layout
from lung_keras.data import find_ct_cases
from lung_keras.data import load_ct_case
from lung_keras.data import read_dicom_series
from lung_keras.data import read_rtstruct_mask

SHARED = pathlib.Path(__file__).resolve().parents[3] / "shared" / "data"
ACRIN = SHARED / "ct_acrin_flt_breast_001" / "dicom"
RTSTRUCT = ACRIN / "RS.ACRIN-FLT-Breast_001.CT_1.dcm"
CIP = SHARED / "ct_cip_copdgene_64"
LUNG_KERAS = pathlib.Path(sys.executable).with_name("lung-keras")

pytestmark = pytest.mark.skipif(not (ACRIN.is_dir() and CIP.is_dir()),
                                reason=f"shared CT data not found in {SHARED} (place ../shared beside the checkout)")


def write_manifest(folder, rows, header="patient,image,mask,diagnosis"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.csv").write_text("\n".join([header, *rows]) + "\n")
    return folder


@pytest.fixture
def ct_folder(tmp_path):
    """Two patients: ACRIN linked as a folder (DICOM + RTSTRUCT), CIP by absolute paths (NRRD + label map)."""
    root = tmp_path / "ct"
    root.mkdir()
    (root / "acrin").symlink_to(ACRIN, target_is_directory=True)
    return write_manifest(root, [
        f"acrin,acrin,acrin/{RTSTRUCT.name},Abnormal ",
        f"cip,{CIP / 'ct-64.nrrd'},{CIP / 'wholeLung-64.nrrd'},",
    ])


def linked_series(folder, skip=()):
    """The ACRIN slices (and its RTSTRUCT) linked into `folder`, without the slice numbers in `skip`."""
    folder.mkdir(parents=True)
    for path in ACRIN.iterdir():
        if path.name not in {f"1-{n:03d}.dcm" for n in skip}:
            (folder / path.name).symlink_to(path)
    return folder


def lung_keras(*args):
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "jax")}
    return subprocess.run([str(LUNG_KERAS), "data", "check", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


# ---------------------------------------------------------------------------------------------- the manifest


def test_find_ct_cases_reads_the_manifest(ct_folder):
    acrin, cip = find_ct_cases(ct_folder)
    assert (acrin.patient, acrin.id, acrin.diagnosis, acrin.mask_kind) == ("acrin", "acrin", "abnormal", "rtstruct")
    assert (cip.patient, cip.diagnosis, cip.mask_kind) == ("cip", "unknown", "labels")
    assert acrin.image == ct_folder / "acrin" and cip.image == CIP / "ct-64.nrrd"  # relative to the folder
    assert acrin.source == f"{ct_folder / 'manifest.csv'}:2"
    assert ct_layout(ct_folder) == "ct manifest"


def test_load_ct_case_gives_image_and_mask_on_one_grid(ct_folder):
    acrin, cip = find_ct_cases(ct_folder)
    with pytest.raises(CTError, match="not in the series") as error:
        load_ct_case(acrin)  # one right-lung contour is on a slice absent from this copy
    assert error.value.kind == "contour on no slice"
    with pytest.warns(UserWarning, match="skipped 1 contour"):
        image, mask = load_ct_case(acrin, missing_slices="skip")
    assert mask.same_grid(image) and set(np.unique(mask.array)) == {0, LEFT_LUNG, RIGHT_LUNG}
    image, mask = load_ct_case(cip, keep_sides=False)
    assert image.shape == (79, 64, 64) and mask.same_grid(image) and set(np.unique(mask.array)) == {0, 1}
    sided = dataclasses.replace(cip, mask=CIP / "lm-64.nrrd", labels={LEFT_LUNG: (9, 10, 11), RIGHT_LUNG: (12, 13, 14)},
                                low_byte=True)
    assert set(np.unique(load_ct_case(sided)[1].array)) == {0, LEFT_LUNG, RIGHT_LUNG}


MANIFEST_ERRORS = [
    # [rows, header, message naming the line and the problem]
    [["a,absent_folder,mask.dcm"], None, r"manifest\.csv:2: .*image .*absent_folder of patient 'a' does not exist"],
    [[f"a,{CIP / 'ct-64.nrrd'},{CIP / 'wholeLung-64.nrrd'}", f"a,{CIP / 'ct-64.nrrd'},{CIP / 'lm-64.nrrd'}"], None,
     r"manifest\.csv:3: patient 'a' already listed on line 2"],
    [[f",{CIP / 'ct-64.nrrd'},{CIP / 'wholeLung-64.nrrd'}"], None, r"manifest\.csv:2: empty patient id"],
    [[f"a,{CIP / 'ct-64.nrrd'},{CIP / 'wholeLung-64.nrrd'},TB"], None, r"manifest\.csv:2: diagnosis 'TB' is not one of"],
    [[f"a,{CIP / 'License.txt'},{CIP / 'wholeLung-64.nrrd'}"], None, r"License\.txt of patient 'a' is neither a DICOM"],
    [[f"a,{CIP / 'ct-64.nrrd'}"], "patient,image", r"missing column\(s\) mask"],
    [[], None, "no case listed"],
]


@pytest.mark.parametrize("rows, header, message", MANIFEST_ERRORS)
def test_manifest_problems_name_the_line(tmp_path, rows, header, message):
    folder = write_manifest(tmp_path / "ct", rows, header or "patient,image,mask,diagnosis")
    with pytest.raises(CTError, match=message):
        find_ct_cases(folder)


def test_every_manifest_problem_is_listed(tmp_path):
    folder = write_manifest(tmp_path / "ct", ["a,nothere,nomask.nrrd", "a,x,y", ",x,y"])
    with pytest.raises(CTError, match=r"4 problem\(s\)") as error:
        find_ct_cases(folder)
    lines = re.findall(r"manifest\.csv:(\d+): ", str(error.value))
    assert lines == ["2", "2", "3", "4"]  # two missing files on line 2, a repeated patient, an empty id
    with pytest.raises(CTError, match="no manifest.csv"):
        find_ct_cases(tmp_path)


# ---------------------------------------------------------------------------------------------- check_ct


def test_check_ct_lists_missing_slices_and_off_grid_masks(tmp_path):
    gap = linked_series(tmp_path / "gap", skip=(80,))
    report = check_ct(gap)
    assert report.layout == "dicom series" and not report.ok
    (problem,) = report.problems
    assert problem.kind == "missing slices" and problem.path == str(gap)
    assert "1 slice(s) absent between 1-081.dcm and 1-079.dcm" in problem.detail

    import pydicom

    uneven = linked_series(tmp_path / "uneven")
    ds = pydicom.dcmread(ACRIN / "1-100.dcm")
    ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + 1.0  # one slice 1 mm off its place
    (uneven / "1-100.dcm").unlink()
    ds.save_as(uneven / "1-100.dcm")
    (problem,) = check_ct(uneven).problems
    assert problem.kind == "inconsistent spacing" and "1-100.dcm" in problem.detail

    off = write_manifest(tmp_path / "off", [f"mixed,{ACRIN},{CIP / 'wholeLung-64.nrrd'}"])
    (problem,) = check_ct(off).problems
    assert problem.kind == "mask off grid" and "manifest.csv:2" in problem.detail
    assert "differs from image" in problem.detail


def test_check_ct_contour_on_no_slice_is_an_error_or_a_warning(ct_folder):
    strict = check_ct(ct_folder)
    (problem,) = strict.problems
    assert problem.kind == "contour on no slice" and problem.fatal and problem.path == str(ct_folder / "acrin" / RTSTRUCT.name)
    assert [c.patient for c in strict.valid_samples] == ["cip"]
    lenient = check_ct(ct_folder, missing_slices="skip")
    assert lenient.ok and [p.fatal for p in lenient.problems] == [False] and len(lenient.valid_samples) == 2


def test_contour_beyond_the_image_is_off_grid(tmp_path):
    image = read_dicom_series(ACRIN)
    # The same slices with 1 mm pixels cropped to 256x256 from the corner: the lungs reach past the image.
    small = dataclasses.replace(image, array=image.array[:, :256, :256], spacing=(image.spacing[0], 1.0, 1.0))
    with pytest.raises(CTError, match="reaches beyond the 256x256 image") as error:
        read_rtstruct_mask(RTSTRUCT, small, missing_slices="skip")
    assert error.value.kind == "mask off grid"


# ------------------------------------------------------------------------------------- lung-keras data check


def test_data_check_command_on_a_ct_folder(ct_folder):
    strict = lung_keras(ct_folder)
    assert strict.returncode == 1, strict.stderr
    assert f"{ct_folder} (ct manifest layout): 2 pairs, 1 valid" in strict.stdout
    assert "error: " in strict.stdout and "contour on no slice" in strict.stdout and "manifest.csv:2" in strict.stdout
    ok = lung_keras(ct_folder, "--missing-slices", "skip", "--json")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert (report["layout"], report["ok"], report["num_valid"], report["errors"], report["warnings"]) == (
        "ct manifest", True, 2, 0, 1)
    assert report["problems"][0]["kind"] == "contour on no slice" and not report["problems"][0]["fatal"]


def test_data_check_command_names_a_missing_slice(tmp_path):
    gap = linked_series(tmp_path / "series", skip=(90,))
    result = lung_keras(gap, "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["layout"] == "dicom series" and report["errors"] == 1
    (problem,) = report["problems"]
    assert problem["path"] == str(gap) and problem["kind"] == "missing slices" and problem["fatal"]
    assert "between 1-091.dcm and 1-089.dcm" in problem["detail"]
    volume = lung_keras(CIP / "ct-64.nrrd")  # a lone volume: readable, no mask to check
    assert volume.returncode == 0 and "(ct volume layout): 1 pairs, 1 valid" in volume.stdout
