"""Training on CT slices, end to end: a slice store of three patients is split by patient, trained with the same
`train` as the X-ray folders, logged for the Segmentation dashboard, and shown windowed by `display`.

The three patients come from the two real shared volumes: the CIP COPDGene CT (NRRD + label map) and the ACRIN
DICOM series (+ RTSTRUCT) cut by slab into two pseudo-patients, `acrin-upper` (its upper half of lung slices)
and `acrin-lower` (the rest). Slices are 32x32 at 12 mm; the model is a depth-2 U-Net of 4 base filters trained
one epoch with the CT recipe's augmentation (`ct_policy`), so the test checks wiring, not learning.
"""

import dataclasses
import json
import pathlib
import warnings

import numpy as np
import pytest

from lung_keras.data import CTCase
from lung_keras.data import concatenate_slices
from lung_keras.data import make_slices
from lung_keras.data import read_dicom_series
from lung_keras.data import read_rtstruct_mask
from lung_keras.data import slice_volume

SHARED = pathlib.Path(__file__).resolve().parents[3] / "shared" / "data"
ACRIN = SHARED / "ct_acrin_flt_breast_001" / "dicom"
RTSTRUCT = ACRIN / "RS.ACRIN-FLT-Breast_001.CT_1.dcm"
CIP = SHARED / "ct_cip_copdgene_64"
PATIENTS = ("acrin-lower", "acrin-upper", "cip")


def _by_slab(slices, names):
    """One patient's `SliceSet` cut into two pseudo-patients at its middle lung slice (upper z first)."""
    (patient,) = slices.patient_ids
    cut = len(slices) // 2
    parts = []
    for name, rows in zip(names, (np.arange(cut), np.arange(cut, len(slices)))):
        parts.append(dataclasses.replace(
            slices, images=slices.images[rows], masks=slices.masks[rows],
            patients=np.asarray([name] * len(rows), dtype=object), slice_index=slices.slice_index[rows],
            grids={name: slices.grids[patient]}, diagnosis={name: slices.diagnosis[patient]}))
    return parts


@pytest.fixture(scope="module")
def ct_slices():
    if not ACRIN.is_dir() or not CIP.is_dir():
        pytest.skip(f"shared CT data not found: {SHARED} (place ../shared beside the checkout)")
    image = read_dicom_series(ACRIN)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the right lung's last basal contour is on a slice not in this copy
        mask = read_rtstruct_mask(RTSTRUCT, image, missing_slices="skip")
    acrin = slice_volume(image, mask, "acrin", spacing=12.0, size=32, empty_slices="skip")
    cip = make_slices([CTCase("cip", CIP / "ct-64.nrrd", CIP / "wholeLung-64.nrrd")], spacing=12.0, size=32,
                      empty_slices="skip")
    slices = concatenate_slices([*_by_slab(acrin, ("acrin-upper", "acrin-lower")), cip])
    assert sorted(slices.patient_ids) == list(PATIENTS) and slices.images.shape[1:] == (32, 32, 1)
    return slices


@pytest.fixture(scope="module")
def ct_run(ct_slices, tmp_path_factory):
    from lung_keras.ct_compare import ct_policy
    from lung_keras.train import TrainConfig
    from lung_keras.train import train

    out = tmp_path_factory.mktemp("ct-runs")
    # Three patients, one per split: 0.4/0.3/0.3 of 3 groups is 1/1/1 (round(0.9) = 1).
    config = TrainConfig(out_dir=str(out), name="ct", image_size=32, epochs=1, base_filters=4, depth=2,
                         batch_size=16, fractions=(0.4, 0.3, 0.3), display_samples=2, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(config, store=ct_slices.to_store(), policy=ct_policy(seed=0))  # the CT recipe's augmentation
    return result


def _patient(slice_id):
    return slice_id.rsplit("_z", 1)[0]


def test_slice_store_samples_carry_their_patient_as_group(ct_slices):
    store = ct_slices.to_store()
    assert {s.group for s in store.samples} == set(PATIENTS)
    assert all(s.id.startswith(f"{s.group}_z") for s in store.samples)


@pytest.mark.parametrize("healthy_only, train_size", [(False, None), (False, 7), (True, None), (True, 5)])
def test_make_splits_keeps_patients_whole_with_its_filters(healthy_only, train_size):
    """`train`'s split with `healthy_only` and `train_size` on 12 synthetic patients of 2..5 slices."""
    from lung_keras.data import Dataset
    from lung_keras.data.sources import Sample
    from lung_keras.train import TrainConfig
    from lung_keras.train import make_splits

    samples = [Sample(f"p{g:02d}_z{k:03d}", pathlib.Path("x"), (), "abnormal" if g % 4 == 0 else "normal",
                      group=f"p{g:02d}") for g in range(12) for k in range(2 + g % 4)]
    config = TrainConfig(healthy_only=healthy_only, train_size=train_size, split_seed=2)
    splits = make_splits(Dataset(pathlib.Path("slices"), samples), config)
    groups = {name: {s.group for s in getattr(splits, name)} for name in ("train", "val", "test")}
    assert not groups["train"] & groups["val"] and not groups["train"] & groups["test"] \
        and not groups["val"] & groups["test"]
    if train_size is not None:  # training slices drawn one by one, from training patients only
        assert len(splits.train) == train_size
    else:  # whole patients: every slice of a training patient trains
        assert len(splits.train) == sum(s.group in groups["train"] for s in samples)
    if healthy_only:
        assert {s.diagnosis for s in splits.train + splits.val} == {"normal"}
        assert {s.group for s in samples if s.diagnosis == "abnormal"} <= groups["test"]


@pytest.mark.slow
def test_train_on_slices_splits_by_patient(ct_slices, ct_run):
    run = ct_run["run_dir"]
    config = json.loads((run / "config.json").read_text())
    splits = config["splits"]
    assert sorted(sum(splits.values(), [])) == sorted(ct_slices.ids)  # every slice in exactly one split
    patients = {name: {_patient(i) for i in ids} for name, ids in splits.items()}
    assert all(len(p) == 1 for p in patients.values())  # one patient per split, none in two
    assert set().union(*patients.values()) == set(PATIENTS)
    assert config["split_groups"] == {name: sorted(p) for name, p in patients.items()}
    assert config["policy_config"]["class_name"] == "Compose"  # trained augmented, the policy recorded
    metrics = json.loads((run / "metrics.json").read_text())
    assert [r["id"] for r in metrics["test"]["per_image"]] == splits["test"]
    assert metrics["num_train"] == len(splits["train"]) and metrics["num_test"] == len(splits["test"])


@pytest.mark.slow
def test_train_on_slices_logs_the_dashboard(ct_run):
    pytest.importorskip("lung_keras_tb")
    from tensorboard import context

    from lung_keras_tb import plugin as plugin_lib
    from tests.tensorboard_plugins.seg_logs import make_provider

    run = ct_run["run_dir"]
    config = json.loads((run / "config.json").read_text())
    assert any((run / "logs" / "display").glob("events.*"))  # validation prediction grids per epoch
    assert any((run / "logs" / "train").glob("events.*")) and any((run / "logs" / "validation").glob("events.*"))
    # The Segmentation dashboard reads every test slice (the test patient's), with its Dice.
    body = plugin_lib.read_samples(make_provider(run.parent), context.RequestContext(), "", f"{run.name}/logs/test",
                                   "test")
    assert [s["id"] for s in body["samples"]] == config["splits"]["test"]
    np.testing.assert_allclose([s["dice"] for s in body["samples"]],
                               [r["dice"] for r in ct_run["metrics"]["test"]["per_image"]], atol=1e-6)


def test_display_shows_a_slice_windowed(ct_slices):
    from lung_keras.viz import display

    store = ct_slices.to_store()
    images, masks = store.arrays(store.samples[len(store) // 2 : len(store) // 2 + 1])
    figure = display([images[0], masks[0]])
    shown = np.asarray(figure.axes[0].images[0].get_array())
    # The lung-window values themselves (no rescaling): level -600, width 1500 -> [0, 1].
    np.testing.assert_allclose(shown, images[0, ..., 0], atol=1e-6)
    assert 0.0 <= shown.min() and shown.max() <= 1.0
    lung = masks[0, ..., 0] > 0
    # Lung (about -650 HU -> 0.47) is darker than the body around it (soft tissue about 40 HU -> 0.93).
    assert 0.25 < shown[lung].mean() < 0.65
    assert np.percentile(shown[~lung], 95) > 0.85 > shown[lung].mean() + 0.2
