"""CT slice datasets: windowing arithmetic, in-plane grids, slices with neighbours, patient splits, and the
geometry round trip DICOM -> slices -> volume -> NIfTI -> read back, on the real shared cases."""

import pathlib
import warnings

import numpy as np
import pytest

from lung_keras.data import LEFT_LUNG
from lung_keras.data import RIGHT_LUNG
from lung_keras.data import CTCase
from lung_keras.data import Volume
from lung_keras.data import concatenate_slices
from lung_keras.data import export_slices
from lung_keras.data import find_pairs
from lung_keras.data import in_plane_grid
from lung_keras.data import make_slices
from lung_keras.data import read_dicom_series
from lung_keras.data import read_nifti
from lung_keras.data import read_rtstruct_mask
from lung_keras.data import slice_volume
from lung_keras.data import slices_to_volume
from lung_keras.data import split_patients
from lung_keras.data import window_hu
from lung_keras.data import write_nifti

SHARED = pathlib.Path(__file__).resolve().parents[3] / "shared" / "data"
ACRIN = SHARED / "ct_acrin_flt_breast_001" / "dicom"
RTSTRUCT = ACRIN / "RS.ACRIN-FLT-Breast_001.CT_1.dcm"
CIP = SHARED / "ct_cip_copdgene_64"


def dice(a, b):
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    return 2 * (a & b).sum() / (a.sum() + b.sum())


@pytest.fixture(scope="module")
def acrin():
    if not ACRIN.is_dir():
        pytest.skip(f"shared CT data not found: {ACRIN} (place ../shared beside the checkout)")
    image = read_dicom_series(ACRIN)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the right lung's last basal contour is on a slice not in this copy
        mask = read_rtstruct_mask(RTSTRUCT, image, missing_slices="skip")
    return image, mask


def phantom(values, spacing=(2.0, 1.0, 1.0)):
    """A `(z, y, x)` Volume of `values` at the origin, axial identity orientation."""
    values = np.asarray(values)
    return Volume(values, spacing, (0.0, 0.0, 0.0), np.asarray([[0, 0, 1], [0, 1, 0], [1, 0, 0]], float), "phantom")


# ------------------------------------------------------------------------------------------------ windowing

WINDOW_CASES = [
    # [windows, HU, expected]; lung window L -600 W 1500: 0 at -1350, 1 at 150, y = (x + 1350) / 1500
    [[(-600, 1500)], -1350.0, 0.0],
    [[(-600, 1500)], -1000.0, 350 / 1500],  # air: 0.2333
    [[(-600, 1500)], -600.0, 0.5],
    [[(-600, 1500)], 0.0, 0.9],  # water
    [[(-600, 1500)], 150.0, 1.0],
    [[(-600, 1500)], -3024.0, 0.0],  # outside the ACRIN scan circle: clipped
    [[(-600, 1500)], 1000.0, 1.0],  # bone: clipped
    # mediastinum L 40 W 400: 0 at -160, 1 at 240
    [[(40, 400)], 40.0, 0.5],
    [[(40, 400)], 100.0, 0.65],
]


@pytest.mark.parametrize("windows, hu, expected", WINDOW_CASES)
def test_window_hu_worked_numbers(windows, hu, expected):
    out = window_hu(np.array([[hu]]), windows)
    assert out.dtype == np.float32 and out.shape == (1, 1)
    np.testing.assert_allclose(out[0, 0], expected, atol=1e-6)


def test_window_hu_several_windows_are_channels_window_after_window():
    x = np.array([[[-1000.0, 40.0]]])  # one pixel, two channels (e.g. two neighbouring slices)
    out = window_hu(x, [(-600, 1500), (40, 400)])
    np.testing.assert_allclose(out[0, 0], [350 / 1500, 1390 / 1500, 0.0, 0.5], atol=1e-6)


def test_window_hu_is_the_windowing_layer_arithmetic():
    from lung_keras.preprocessing import Windowing

    hu = np.random.default_rng(0).uniform(-3024, 3000, size=(2, 8, 8, 3)).astype(np.float32)
    windows = [(-600, 1500), (40, 400)]
    layer = np.asarray(Windowing(windows=windows)(hu))
    np.testing.assert_array_equal(window_hu(hu, windows), layer)  # bit for bit in float32


# ---------------------------------------------------------------------------------------------- in-plane grid

GRID_CASES = [
    # [spacing, size, expected size, scale, shift]; source 512 px of 0.976562 mm (the ACRIN slices)
    [None, None, (512, 512), 1.0, 0.0],
    # 256 px over the same 500 mm: 2 source px per slice px; slice px 0 covers source px 0 and 1 -> centre 0.5
    [None, 256, (256, 256), 2.0, 0.5],
    # 2 mm: round(500 / 2) = 250 px, scale 2.048; centred: 255.5 - 2.048 * 124.5 = 0.5239
    [2.0, None, (250, 250), 2.048, 0.5239],
    # 1.5 mm and 256 px: a 384 mm field of view, centred: 255.5 - 1.536 * 127.5 = 59.66
    [1.5, 256, (256, 256), 1.536, 59.66],
]


@pytest.mark.parametrize("spacing, size, out, scale, shift", GRID_CASES)
def test_in_plane_grid_worked_numbers(spacing, size, out, scale, shift):
    volume = phantom(np.zeros((1, 512, 512), np.int16), (4.25, 0.9765625, 0.9765625))
    grid = in_plane_grid(volume, spacing, size)
    assert grid.size == out
    np.testing.assert_allclose(grid.scale, (scale, scale), atol=1e-4)
    np.testing.assert_allclose(grid.shift, (shift, shift), atol=1e-3)
    assert grid.identity == (spacing is None and size is None)
    if spacing is not None:
        np.testing.assert_allclose(grid.spacing, (spacing, spacing))


def test_in_plane_grid_refuses_bad_arguments():
    volume = phantom(np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="spacing"):
        in_plane_grid(volume, spacing=0)
    with pytest.raises(ValueError, match="size"):
        in_plane_grid(volume, size=(0, 4))


# ---------------------------------------------------------------------------------------- slices of a phantom


def test_neighbours_are_channels_with_edge_slices_repeated():
    # Slice z holds -1000 + 100 z HU everywhere, so each channel tells which slice it came from.
    hu = (-1000.0 + 100.0 * np.arange(4))[:, None, None] * np.ones((4, 2, 2))
    s = slice_volume(phantom(hu), patient="p", neighbours=1, windows=None)
    assert s.images.shape == (4, 2, 2, 3) and s.images.dtype == np.float32
    np.testing.assert_array_equal(s.images[:, 0, 0], [[-1000, -1000, -900], [-1000, -900, -800],
                                                      [-900, -800, -700], [-800, -700, -700]])
    windowed = slice_volume(phantom(hu), patient="p", neighbours=1, windows=[(-600, 1500), (40, 400)])
    assert windowed.images.shape == (4, 2, 2, 6)  # 3 slices through the lung window, then the mediastinum's
    np.testing.assert_allclose(windowed.images[0, 0, 0], [350 / 1500, 350 / 1500, 450 / 1500, 0, 0, 0], atol=1e-6)


def test_empty_slices_skip_and_sides():
    hu = np.full((4, 3, 3), -800.0)
    labels = np.zeros((4, 3, 3), np.uint8)
    labels[1, 1, 0], labels[1, 1, 2], labels[2, 0, 0] = LEFT_LUNG, RIGHT_LUNG, RIGHT_LUNG
    image, mask = phantom(hu), phantom(labels)
    kept = slice_volume(image, mask, "p", empty_slices="keep")
    assert len(kept) == 4 and kept.masks.shape == (4, 3, 3, 1) and set(np.unique(kept.masks)) == {0, 1}
    skipped = slice_volume(image, mask, "p", empty_slices="skip", keep_sides=True)
    assert skipped.slice_index.tolist() == [1, 2] and skipped.ids == ["p_z001", "p_z002"]
    assert skipped.masks[0, 1, :, 0].tolist() == [LEFT_LUNG, 0, RIGHT_LUNG]
    with pytest.raises(ValueError, match="needs a mask"):
        slice_volume(image, None, "p", empty_slices="skip")
    with pytest.raises(ValueError, match="empty_slices"):
        slice_volume(image, mask, "p", empty_slices="drop")
    with pytest.raises(ValueError, match="neighbours"):
        slice_volume(image, mask, "p", neighbours=-1)


def test_mask_off_the_image_grid_is_refused():
    from lung_keras.data import CTError

    image = phantom(np.zeros((2, 4, 4)))
    shifted = Volume(np.ones((2, 4, 4), np.uint8), image.spacing, (5.0, 0.0, 0.0), image.direction, "shifted")
    with pytest.raises(CTError, match="differs from image"):
        slice_volume(image, shifted, "p")


def test_slices_to_volume_image_as_mask_geometry_identity():
    # Nearest there and back at an integer downsampling: each 2x2 block of a block-constant phantom survives.
    labels = np.kron(np.arange(16, dtype=np.uint8).reshape(1, 4, 4), np.ones((1, 2, 2), np.uint8))
    volume = phantom(np.repeat(labels, 3, axis=0))
    s = slice_volume(volume, volume, "p", size=4, windows=None, keep_sides=True)
    assert s.masks.shape == (3, 4, 4, 1)
    back = slices_to_volume(s.masks, s.slice_index, s.grids["p"])
    np.testing.assert_array_equal(back.array, volume.array)
    assert back.same_grid(volume)


def test_slices_to_volume_fills_slices_without_prediction():
    volume = phantom(np.ones((5, 2, 2), np.uint8))
    back = slices_to_volume(np.ones((2, 2, 2, 1), np.float32), [1, 3], volume)
    assert back.array.dtype == np.float32
    np.testing.assert_array_equal(back.array[:, 0, 0], [0, 1, 0, 1, 0])
    with pytest.raises(ValueError, match="slice_index"):
        slices_to_volume(np.ones((1, 2, 2)), [5], volume)
    with pytest.raises(ValueError, match="predictions"):
        slices_to_volume(np.ones((1, 3, 3)), [0], volume)


# ------------------------------------------------------------------------------------------ patient splits


def test_split_patients_is_seeded_disjoint_and_complete():
    cases = [CTCase(f"p{i:02d}", pathlib.Path("x"), pathlib.Path("y"), "normal" if i % 2 else "abnormal")
             for i in range(20)]
    split = split_patients(cases, (0.6, 0.2, 0.2), seed=3)
    names = {k: [c.patient for c in v] for k, v in split.items()}
    assert sorted(sum(names.values(), [])) == sorted(c.patient for c in cases)
    assert [len(v) for v in names.values()] == [12, 4, 4]
    assert not set(names["train"]) & set(names["test"])
    again = split_patients(cases, (0.6, 0.2, 0.2), seed=3)
    assert {k: [c.patient for c in v] for k, v in again.items()} == names
    assert split_patients(cases, (0.6, 0.2, 0.2), seed=4) != split
    # Patient ids alone (no diagnosis) split like the cases without stratification.
    plain = split_patients(cases, (0.6, 0.2, 0.2), seed=3, stratify=False)
    assert split_patients([c.patient for c in cases], (0.6, 0.2, 0.2), seed=3) == {
        k: [c.patient for c in v] for k, v in plain.items()}
    # Stratified: each split holds as many normal as abnormal patients (10 of each: 6/2/2).
    assert all(sum(c.diagnosis == "normal" for c in v) * 2 == len(v) for v in split.values())


def test_no_slice_of_a_test_patient_in_training(acrin):
    """Two real patients (ACRIN DICOM + RTSTRUCT, CIP NRRD + label map) at one 8 mm grid, split by patient."""
    if not CIP.is_dir():
        pytest.skip(f"shared CT data not found: {CIP}")
    image, mask = acrin
    parts = [slice_volume(image, mask, "acrin", spacing=8.0, size=48, empty_slices="skip")]
    parts.append(make_slices([CTCase("cip", CIP / "ct-64.nrrd", CIP / "wholeLung-64.nrrd")], spacing=8.0, size=48,
                             empty_slices="skip"))
    slices = concatenate_slices(parts)
    assert set(slices.patient_ids) == {"acrin", "cip"} and slices.images.shape[1:] == (48, 48, 1)
    split = split_patients(slices, (0.5, 0.0, 0.5), seed=0)
    train, test = split["train"], split["test"]
    assert split["val"] is None
    assert len(train) + len(test) == len(slices)
    assert set(train.patients) .isdisjoint(set(test.patients))
    assert set(train.ids).isdisjoint(test.ids)
    (held_out,) = set(test.patients)
    assert all(i.startswith(f"{held_out}_z") for i in test.ids) and not any(i.startswith(f"{held_out}_z")
                                                                            for i in train.ids)
    # The training store holds the training patient's slices only.
    store = train.to_store()
    assert len(store) == len(train) and store.image_size == (48, 48) and store.channels == 1
    images, masks = store.arrays()
    assert images.dtype == np.float32 and 0 <= images.min() and images.max() <= 1
    assert set(np.unique(masks)) == {0.0, 1.0} and masks.mean() > 0.05  # every slice holds lung
    assert not any(s.id.startswith(f"{held_out}_z") for s in store.samples)


# ------------------------------------------------------------------------------------ the real DICOM series


def test_slices_of_the_acrin_series_hold_its_hu_windowed(acrin):
    image, mask = acrin
    s = slice_volume(image, mask, "acrin", keep_sides=True)
    assert s.images.shape == (41, 512, 512, 1) and s.masks.shape == (41, 512, 512, 1)
    np.testing.assert_array_equal(s.images[..., 0], window_hu(image.array))
    np.testing.assert_array_equal(s.masks[..., 0], mask.array)
    # README: lung voxels mean -652 HU (right) / -618 HU (left): about 0.465 / 0.488 in the lung window.
    lung = s.images[..., 0][mask.array == LEFT_LUNG]
    assert abs(float(lung.mean()) - (-618 + 1350) / 1500) < 0.01
    # Outside the scanned circle (-3024 HU) is 0, air (-1000 HU) about 0.233.
    assert s.images[20, 0, 0, 0] == 0.0


def test_geometry_round_trip_dicom_slices_volume_nifti(acrin, tmp_path):
    """DICOM -> slices -> volume -> NIfTI -> read_nifti: the source grid and orientation, the mask unchanged."""
    import nibabel

    image, mask = acrin
    s = slice_volume(image, mask, "acrin", keep_sides=True)
    back = slices_to_volume(s.masks, s.slice_index, s.grids["acrin"])
    assert back.same_grid(image) and back.slice_uids == image.slice_uids
    path = write_nifti(back, tmp_path / "acrin_mask.nii.gz")
    read = read_nifti(path)
    assert read.same_grid(image, atol=1e-4)
    np.testing.assert_allclose(read.direction, image.direction, atol=1e-6)
    np.testing.assert_array_equal(read.array, mask.array)  # exact: no resampling, labels 1/2 kept
    np.testing.assert_allclose(read.index_to_world([40, 511, 511]), image.index_to_world([40, 511, 511]), atol=1e-3)
    # On disk it is RAS: the file's axes run towards the patient's left, posterior, superior.
    on_disk = nibabel.load(str(path))
    assert nibabel.aff2axcodes(on_disk.affine) == ("L", "P", "S")
    np.testing.assert_allclose(on_disk.affine[:3, 3], (250.0, 250.0, -465.5))  # LPS (-250, -250) negated


def test_round_trip_after_resampling_keeps_the_mask(acrin, tmp_path):
    image, mask = acrin
    s = slice_volume(image, mask, "acrin", spacing=1.5, size=256, keep_sides=True)
    assert s.images.shape == (41, 256, 256, 1)
    back = slices_to_volume(s.masks, s.slice_index, s.grids["acrin"])
    read = read_nifti(write_nifti(back, tmp_path / "m.nii"))
    assert read.same_grid(image, atol=1e-4)
    assert dice(read.array, mask.array) > 0.98
    for side in (LEFT_LUNG, RIGHT_LUNG):
        assert dice(read.array == side, mask.array == side) > 0.98
    # Probabilities go back linearly (order=1), then a threshold: as close to the source mask.
    probabilities = (s.masks > 0).astype(np.float32)
    linear = slices_to_volume(probabilities, s.slice_index, s.grids["acrin"], order=1)
    assert linear.array.dtype == np.float32 and dice(linear.array > 0.5, mask.array) > 0.98


def test_export_slices_is_a_folder_dataset(acrin, tmp_path):
    image, mask = acrin
    s = slice_volume(image, mask, "acrin", size=64, empty_slices="skip")
    folder = export_slices(s.subset(["acrin"]), tmp_path / "slices")
    listing = find_pairs(folder)
    assert [x.id for x in listing.samples] == s.ids and not listing.images_without_mask
    from lung_keras.data import read_image

    png = read_image(listing.samples[5].image_path, channels=1)
    np.testing.assert_allclose(png[..., 0], s.images[5, ..., 0], atol=0.5 / 255 + 1e-6)
    with pytest.raises(ValueError, match="not empty"):
        export_slices(s, folder)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        export_slices(slice_volume(image, mask, "acrin", size=64, neighbours=2), tmp_path / "five")


def test_exported_slices_keep_patients_whole_in_a_split(acrin, tmp_path):
    """The folder route (`export_slices` -> `train --data`) groups by the manifest's `patient` column too."""
    from lung_keras.data import split_dataset

    if not CIP.is_dir():
        pytest.skip(f"shared CT data not found: {CIP}")
    image, mask = acrin
    parts = [slice_volume(image, mask, f"acrin{i}", size=32, empty_slices="skip") for i in range(2)]
    parts.append(make_slices([CTCase("cip", CIP / "ct-64.nrrd", CIP / "wholeLung-64.nrrd")], size=32,
                             empty_slices="skip"))
    folder = export_slices(concatenate_slices(parts), tmp_path / "slices")
    samples = find_pairs(folder).samples
    assert {x.group for x in samples} == {"acrin0", "acrin1", "cip"}
    split = split_dataset(samples, fractions=(0.4, 0.3, 0.3), seed=0, stratify=False)
    patients = {name: {x.split("_z")[0] for x in ids} for name, ids in split.items()}
    assert all(len(p) == 1 for p in patients.values()), patients
    assert set().union(*patients.values()) == {"acrin0", "acrin1", "cip"}
