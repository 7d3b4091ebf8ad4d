"""CT readers on the real shared cases (DICOM series + RTSTRUCT, NRRD) and on small broken copies of them."""

import pathlib
import shutil

import numpy as np
import pytest

from lung_keras.data import LEFT_LUNG
from lung_keras.data import RIGHT_LUNG
from lung_keras.data import CTError
from lung_keras.data import Volume
from lung_keras.data import even_odd_fill
from lung_keras.data import read_dicom_series
from lung_keras.data import read_label_mask
from lung_keras.data import read_nifti
from lung_keras.data import read_nrrd
from lung_keras.data import read_rtstruct_mask
from lung_keras.data import read_volume
from lung_keras.data import rtstruct_roi_names

SHARED = pathlib.Path(__file__).resolve().parents[3] / "shared" / "data"
ACRIN = SHARED / "ct_acrin_flt_breast_001" / "dicom"
RTSTRUCT = ACRIN / "RS.ACRIN-FLT-Breast_001.CT_1.dcm"
CIP = SHARED / "ct_cip_copdgene_64"
CIP_LUNGS = {LEFT_LUNG: (9, 10, 11), RIGHT_LUNG: (12, 13, 14)}  # Chest Imaging Platform region codes (low byte)


@pytest.fixture(scope="module")
def acrin():
    if not ACRIN.is_dir():
        pytest.skip(f"shared CT data not found: {ACRIN} (place ../shared beside the checkout)")
    return read_dicom_series(ACRIN)


@pytest.fixture(scope="module")
def acrin_mask(acrin):
    with pytest.warns(UserWarning, match="skipped 1 contour"):
        return read_rtstruct_mask(RTSTRUCT, acrin, missing_slices="skip")


@pytest.fixture(scope="module")
def cip():
    if not CIP.is_dir():
        pytest.skip(f"shared CT data not found: {CIP} (place ../shared beside the checkout)")
    return read_nrrd(CIP / "ct-64.nrrd")


# ------------------------------------------------------------------------------------------------ DICOM


def test_dicom_series_geometry(acrin):
    # 41 slices 1-067 .. 1-107, 512x512, 0.977 mm pixels; positions every 4.25 mm (SliceThickness says 5 mm).
    assert acrin.shape == (41, 512, 512) and acrin.array.dtype == np.float32
    np.testing.assert_allclose(acrin.spacing, (4.25, 0.976562, 0.976562), atol=1e-4)
    # Axial, identity orientation: origin = the lowest slice's ImagePositionPatient (z -465.5 .. -295.5 mm).
    np.testing.assert_allclose(acrin.origin, (-250.0, -250.0, -465.5))
    np.testing.assert_allclose(acrin.direction, [[0, 0, 1], [0, 1, 0], [1, 0, 0]])
    # The last voxel's centre: z = -465.5 + 40 * 4.25 = -295.5, x = y = -250 + 511 * 0.976562 = 249.02.
    np.testing.assert_allclose(acrin.index_to_world([40, 511, 511]), (249.023, 249.023, -295.5), atol=1e-2)
    np.testing.assert_allclose(acrin.world_to_index([249.023, 249.023, -295.5]), (40, 511, 511), atol=1e-3)


def test_dicom_series_sorted_by_position_not_file_name(acrin):
    import pydicom

    # Sorted by ImagePositionPatient, each slice's UID is where its file says it is.
    z = [float(pydicom.dcmread(ACRIN / f"1-{n:03d}.dcm", stop_before_pixels=True).ImagePositionPatient[2]) for n in (67, 107)]
    for n, zz in zip((67, 107), z):
        ds = pydicom.dcmread(ACRIN / f"1-{n:03d}.dcm", stop_before_pixels=True)
        k = int(round((zz - acrin.origin[2]) / acrin.spacing[0]))
        assert acrin.slice_uids[k] == str(ds.SOPInstanceUID)
    assert np.all(np.diff([acrin.index_to_world([k, 0, 0])[2] for k in range(41)]) > 0)


def test_dicom_hounsfield_units(acrin):
    # Stored values with slope 1, intercept -1024: outside the scanned circle -3024 HU, air about -1000 HU.
    hu = acrin.array
    assert hu.min() == -3024.0
    corner_air = hu[:, 40:50, 250:260]  # in the scan circle, in front of the chest
    assert -1030 < np.median(corner_air) < -970
    assert np.median(hu[:, 256, 256]) > -200  # mediastinum (soft tissue) at the centre


def test_dicom_missing_slice_and_bad_spacing_are_errors_naming_files(acrin, tmp_path):
    gap = tmp_path / "gap"
    gap.mkdir()
    for n in range(67, 75):
        if n != 70:
            shutil.copy(ACRIN / f"1-{n:03d}.dcm", gap)
    with pytest.raises(CTError, match=r"missing slices: 1 slice\(s\) absent between 1-\d+\.dcm and 1-\d+\.dcm") as error:
        read_dicom_series(gap)
    assert error.value.kind == "missing slices"  # what `lung-keras data check` calls it

    import pydicom

    uneven = tmp_path / "uneven"
    uneven.mkdir()
    for n in range(67, 72):
        shutil.copy(ACRIN / f"1-{n:03d}.dcm", uneven)
    ds = pydicom.dcmread(uneven / "1-071.dcm")
    ds.ImagePositionPatient[2] = float(ds.ImagePositionPatient[2]) + 1.0  # one slice 1 mm off
    ds.save_as(uneven / "1-071.dcm")
    with pytest.raises(CTError, match="inconsistent slice spacing.*1-071.dcm") as error:
        read_dicom_series(uneven)
    assert error.value.kind == "inconsistent spacing"

    with pytest.raises(CTError, match="no DICOM image slice"):
        empty = tmp_path / "empty"
        empty.mkdir()
        shutil.copy(RTSTRUCT, empty)
        read_dicom_series(empty)


# ---------------------------------------------------------------------------------------------- RTSTRUCT


def test_rtstruct_lungs_with_sides(acrin, acrin_mask):
    assert rtstruct_roi_names(RTSTRUCT) == ["BODY", "RT LUNG", "LT LUNG", "HEART", "CTV"]
    mask = acrin_mask.array
    assert acrin_mask.same_grid(acrin) and mask.dtype == np.uint8
    assert set(np.unique(mask)) == {0, LEFT_LUNG, RIGHT_LUNG}
    left, right = mask == LEFT_LUNG, mask == RIGHT_LUNG
    # README: contours on 41 (left) and 40 (right) of the 41 slices.
    assert left.any(axis=(1, 2)).sum() == 41 and right.any(axis=(1, 2)).sum() == 40
    # The right lung is on the image's left (smaller column index) and at smaller patient x (LPS: +x = left).
    assert np.nonzero(right)[2].mean() < 256 < np.nonzero(left)[2].mean()
    # README (its own rasteriser): mean -652 HU (right) / -618 HU (left), 81 % below -500 HU. Pixel-centre
    # even-odd filling here gives -665 / -629 HU and 83 %: a few boundary voxels fewer (partial volume).
    hu = acrin.array
    assert abs(hu[right].mean() - (-652)) < 30 and abs(hu[left].mean() - (-618)) < 30
    assert 0.75 < (hu[mask > 0] < -500).mean() < 0.9


def test_rtstruct_default_refuses_contours_on_absent_slices(acrin):
    # The structure set was drawn on 90 slices; this copy holds 41: one RT LUNG contour references a slice
    # that is not here (z = -469.75 mm, just below the first slice).
    with pytest.raises(CTError, match=r"RS\.ACRIN.*'RT LUNG' at z = -469\.75 mm references slice .* not in the series"):
        read_rtstruct_mask(RTSTRUCT, acrin)
    # The left lung has no such contour: read as is.
    left = read_rtstruct_mask(RTSTRUCT, acrin, pattern="lt lung")
    assert set(np.unique(left.array)) == {0, LEFT_LUNG}


def test_rtstruct_pattern_and_merged_sides(acrin, acrin_mask):
    with pytest.warns(UserWarning):
        merged = read_rtstruct_mask(RTSTRUCT, acrin, missing_slices="skip", keep_sides=False)
    np.testing.assert_array_equal(merged.array, (acrin_mask.array > 0).astype(np.uint8))
    with pytest.raises(CTError, match="no ROI name matches 'liver'; ROIs: BODY, RT LUNG, LT LUNG, HEART, CTV"):
        read_rtstruct_mask(RTSTRUCT, acrin, pattern="liver")
    with pytest.raises(CTError, match="not a DICOM RT Structure Set"):
        read_rtstruct_mask(ACRIN / "1-067.dcm", acrin)


def test_rtstruct_contour_on_no_slice_of_another_series(acrin, tmp_path):
    # The same contours against a series that holds only slices 1-067 .. 1-070: contours reference slices
    # that are absent, and the error names the structure set and the series.
    part = tmp_path / "part"
    part.mkdir()
    for n in range(67, 71):
        shutil.copy(ACRIN / f"1-{n:03d}.dcm", part)
    with pytest.raises(CTError, match=r"RS\.ACRIN-FLT-Breast_001\.CT_1\.dcm: a contour of ROI .*not in the series .*part"):
        read_rtstruct_mask(RTSTRUCT, read_dicom_series(part), pattern="lt lung")


# [polygons as (row, col) vertices, shape, expected filled pixels] — pixel centres at integer indices.
FILL_CASES = [
    # Square with corners at 0.5 .. 3.5 covers centres 1, 2, 3 in both axes: 9 pixels.
    [[[(0.5, 0.5), (0.5, 3.5), (3.5, 3.5), (3.5, 0.5)]], (5, 5), {(r, c) for r in (1, 2, 3) for c in (1, 2, 3)}],
    # Even-odd: the same square with an inner square around the centre (2, 2) cuts a one-pixel hole.
    [
        [[(0.5, 0.5), (0.5, 3.5), (3.5, 3.5), (3.5, 0.5)], [(1.5, 1.5), (1.5, 2.5), (2.5, 2.5), (2.5, 1.5)]],
        (5, 5),
        {(r, c) for r in (1, 2, 3) for c in (1, 2, 3)} - {(2, 2)},
    ],
    # Triangle (0,0)-(0,4)-(4,0) (index units): centres with r + c < 4 strictly inside, plus the edges at
    # r = 0 and c = 0 by the half-open rule (a centre on a left edge is in, on a right edge out).
    [[[(0.0, 0.0), (0.0, 4.0), (4.0, 0.0)]], (5, 5), {(r, c) for r in range(4) for c in range(4) if r + c < 4}],
]


@pytest.mark.parametrize("polygons, shape, expected", FILL_CASES)
def test_even_odd_fill(polygons, shape, expected):
    out = even_odd_fill([np.asarray(p, float) for p in polygons], shape)
    assert {tuple(int(v) for v in rc) for rc in np.argwhere(out)} == expected


# ------------------------------------------------------------------------------------------- NRRD, NIfTI


def test_nrrd_geometry_and_hu(cip):
    # 64x64x79 voxels (x, y, z in the file) -> (z, y, x) = (79, 64, 64); 4.17 x 4.17 x 3.99 mm; LPS.
    assert cip.shape == (79, 64, 64) and cip.array.dtype == np.int16
    np.testing.assert_allclose(cip.spacing, (3.98734177, 4.171872, 4.171872))
    np.testing.assert_allclose(cip.origin, (-128.413806, -264.413806, -360.25632911))
    np.testing.assert_allclose(cip.direction, [[0, 0, 1], [0, 1, 0], [1, 0, 0]])
    assert -1010 < np.median(cip.array[:, :3, :3]) < -985  # corner air about -998 HU


def test_label_maps_on_the_image_grid(cip):
    lungs = read_label_mask(CIP / "lm-64.nrrd", CIP_LUNGS, low_byte=True, image=cip)
    whole = read_label_mask(CIP / "wholeLung-64.nrrd", image=cip)
    assert set(np.unique(whole.array)) == {0, 1}
    np.testing.assert_array_equal(lungs.array > 0, whole.array > 0)  # the two label maps agree voxel for voxel
    left, right = lungs.array == LEFT_LUNG, lungs.array == RIGHT_LUNG
    # LPS: the patient's left is +x: the left lung's voxels lie at larger x than the right lung's.
    assert cip.index_to_world(np.argwhere(left))[:, 0].mean() > cip.index_to_world(np.argwhere(right))[:, 0].mean()
    assert -900 < cip.array[left].mean() < -850 and -900 < cip.array[right].mean() < -850  # lung mean -874 HU


def test_mask_off_the_grid_is_an_error(cip, tmp_path):
    import nrrd

    data, header = nrrd.read(str(CIP / "wholeLung-64.nrrd"))
    header["space origin"] = np.asarray(header["space origin"]) + [0.0, 0.0, 10.0]
    nrrd.write(str(tmp_path / "shifted.nrrd"), data, header)
    with pytest.raises(CTError, match=r"shifted\.nrrd: mask grid .* differs from image .*ct-64\.nrrd") as error:
        read_label_mask(tmp_path / "shifted.nrrd", image=cip)
    assert error.value.kind == "mask off grid"


def test_write_nifti_refuses_another_suffix(cip, tmp_path):
    from lung_keras.data import write_nifti

    with pytest.raises(CTError, match=r"mask\.nrrd: a NIfTI file name ends with \.nii or \.nii\.gz"):
        write_nifti(cip, tmp_path / "mask.nrrd")
    back = read_nifti(write_nifti(cip, tmp_path / "ct.nii"))
    assert back.same_grid(cip) and back.array.dtype == np.int16
    np.testing.assert_array_equal(back.array, cip.array)


def test_nifti_reads_the_same_geometry_as_nrrd(cip, tmp_path):
    nibabel = pytest.importorskip("nibabel")
    # Written by nibabel directly: RAS affine = diag(-1, -1, 1) @ LPS affine; array in (x, y, z) order.
    lps = np.zeros((4, 4))
    lps[:3, :3] = (cip.direction * np.asarray(cip.spacing)[:, None]).T[:, ::-1]  # columns for x, y, z
    lps[:3, 3], lps[3, 3] = cip.origin, 1.0
    image = nibabel.Nifti1Image(cip.array.transpose(2, 1, 0), np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps)
    nibabel.save(image, tmp_path / "ct.nii.gz")
    back = read_volume(tmp_path / "ct.nii.gz")
    assert back.same_grid(cip) and back.array.dtype == np.int16
    np.testing.assert_array_equal(back.array, cip.array)
    assert isinstance(read_nifti(tmp_path / "ct.nii.gz"), Volume)


def test_read_volume_dispatch_and_unknown_format(cip, tmp_path):
    assert read_volume(CIP / "ct-64.nrrd").same_grid(cip)
    (tmp_path / "scan.mha").write_bytes(b"x")
    with pytest.raises(CTError, match=r"scan\.mha: unknown volume format"):
        read_volume(tmp_path / "scan.mha")
    with pytest.raises(CTError, match="no such file"):
        read_volume(tmp_path / "absent.nrrd.gz")


def test_contour_off_its_slice_plane_is_an_error(acrin):
    import dataclasses

    # The same slices moved 3 mm up: each contour still references its slice by UID, but lies
    # 3 / 4.25 = 0.7 slice spacings off that slice's plane: the structure set belongs to another geometry.
    moved = dataclasses.replace(acrin, origin=(acrin.origin[0], acrin.origin[1], acrin.origin[2] + 3.0))
    with pytest.raises(CTError, match=r"a contour of ROI 'LT LUNG' at z = .* mm lies on no slice"):
        read_rtstruct_mask(RTSTRUCT, moved, pattern="lt lung")


def test_single_slice_and_undecodable_pixels(tmp_path):
    if not ACRIN.is_dir():
        pytest.skip(f"shared CT data not found: {ACRIN}")
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(ACRIN / "1-080.dcm", one)
    volume = read_dicom_series(one)
    assert volume.shape == (1, 512, 512) and volume.spacing[0] == 5.0  # SliceThickness for a lone slice

    data = (ACRIN / "1-081.dcm").read_bytes()
    (one / "1-081.dcm").write_bytes(data[: len(data) - 200_000])  # pixel data cut short
    with pytest.raises(CTError, match=r"1-081\.dcm: cannot decode the pixel data"):
        read_dicom_series(one)
