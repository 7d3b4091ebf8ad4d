import dataclasses
import pathlib

import numpy as np
import pytest

from lung_keras import data
from tests.conftest import write_png


def test_split_is_seeded_stratified_and_disjoint(montgomery_dir):
    ds = data.load_dataset(montgomery_dir, pixel_checks=False)
    a = data.split_dataset(ds, seed=3)
    b = data.split_dataset(ds, seed=3)
    c = data.split_dataset(ds, seed=4)
    assert a == b and a != c
    ids = a["train"] + a["val"] + a["test"]
    assert len(ids) == len(set(ids)) == 138
    diag = {s.id: s.diagnosis for s in ds.samples}
    for split, expected_normal in (("val", 12), ("test", 12)):  # round(80 * 0.15) = 12
        assert sum(diag[i] == "normal" for i in a[split]) == expected_normal
        assert sum(diag[i] == "abnormal" for i in a[split]) == 9  # round(58 * 0.15) = 9
    assert len(a["train"]) == 138 - 21 - 21


def test_split_rejects_bad_fractions(make_pair_dataset):
    ds = data.load_dataset(make_pair_dataset(n=4))
    with pytest.raises(ValueError, match="fractions"):
        data.split_dataset(ds, (0.5, 0.5, 0.5))


def _samples(n=20):
    """`n` in-memory samples `s00`.. (every third abnormal)."""
    from lung_keras.data.sources import Sample

    return [Sample(f"s{i:02d}", pathlib.Path("x"), (), "abnormal" if i % 3 == 0 else "normal")
            for i in range(n)]


PINNED_SPLITS = [
    # [seed, fractions, stratify, expected]: computed by the per-sample rule before groups existed; samples
    # without a group must keep splitting exactly so (the same ids in the same splits for the same seed).
    [0, (0.7, 0.15, 0.15), True, {
        "train": ["s00", "s01", "s02", "s03", "s07", "s08", "s09", "s11", "s13", "s14", "s15", "s17", "s18", "s19"],
        "val": ["s05", "s10", "s12"], "test": ["s04", "s06", "s16"]}],
    [7, (0.6, 0.2, 0.2), True, {
        "train": ["s01", "s03", "s06", "s07", "s08", "s09", "s10", "s11", "s12", "s14", "s18", "s19"],
        "val": ["s02", "s05", "s15", "s17"], "test": ["s00", "s04", "s13", "s16"]}],
    [7, (0.6, 0.2, 0.2), False, {
        "train": ["s00", "s01", "s02", "s04", "s05", "s06", "s07", "s09", "s11", "s17", "s18", "s19"],
        "val": ["s10", "s14", "s15", "s16"], "test": ["s03", "s08", "s12", "s13"]}],
    [3, (0.5, 0.0, 0.5), True, {
        "train": ["s00", "s02", "s04", "s09", "s10", "s11", "s12", "s14", "s16", "s17"], "val": [],
        "test": ["s01", "s03", "s05", "s06", "s07", "s08", "s13", "s15", "s18", "s19"]}],
]


@pytest.mark.parametrize("seed, fractions, stratify, expected", PINNED_SPLITS)
def test_split_of_samples_without_groups_is_pinned(seed, fractions, stratify, expected):
    assert data.split_dataset(_samples(), fractions, seed=seed, stratify=stratify) == expected


def _grouped(n_groups=10, per_group=(3, 5, 1, 4)):
    """Samples of `n_groups` patients `p0`.. (every third abnormal), patient i holding `per_group[i % 4]` slices."""
    from lung_keras.data.sources import Sample

    return [Sample(f"p{g}_z{k:03d}", pathlib.Path("x"), (), "abnormal" if g % 3 == 0 else "normal", group=f"p{g}")
            for g in range(n_groups) for k in range(per_group[g % len(per_group)])]


def _groups_of(split, samples):
    group = {s.id: s.group for s in samples}
    return {name: {group[i] for i in ids} for name, ids in split.items()}


def test_grouped_split_keeps_each_group_in_one_split_seeded_and_stratified():
    samples = _grouped(10)
    split = data.split_dataset(samples, (0.6, 0.2, 0.2), seed=5)
    assert sorted(sum(split.values(), [])) == sorted(s.id for s in samples)
    groups = _groups_of(split, samples)
    assert not groups["train"] & groups["val"] and not groups["train"] & groups["test"] \
        and not groups["val"] & groups["test"]
    # Every slice of a group follows it.
    for name, ids in split.items():
        assert sorted(ids) == sorted(s.id for s in samples if s.group in groups[name])
    # Units are groups, stratified: 4 abnormal (p0 p3 p6 p9) -> 1 val, 1 test (round(4 * 0.2) = 1); 6 normal ->
    # 1 val, 1 test (round(6 * 0.2) = 1); the rest train: 6 groups / 2 / 2.
    assert [len(groups[k]) for k in ("train", "val", "test")] == [6, 2, 2]
    for name in ("val", "test"):
        assert sorted(int(g[1:]) % 3 == 0 for g in groups[name]) == [False, True]
    assert data.split_dataset(samples, (0.6, 0.2, 0.2), seed=5) == split
    assert any(data.split_dataset(samples, (0.6, 0.2, 0.2), seed=s) != split for s in range(6, 10))


def test_grouped_split_is_the_per_sample_rule_applied_to_groups():
    """One sample per group splits like those samples without groups (the same seeded allocation)."""
    plain = _samples()
    grouped = [dataclasses.replace(s, group=f"patient-{s.id}") for s in plain]
    for seed, fractions, stratify, expected in PINNED_SPLITS:
        assert data.split_dataset(grouped, fractions, seed=seed, stratify=stratify) == expected


def test_grouped_split_needs_enough_groups_not_samples():
    samples = _grouped(2, per_group=(40,))  # 80 samples, 2 patients: a 0.4/0.3/0.3 split needs 3 groups
    assert data.min_split_size((0.7, 0.15, 0.15)) == 4  # round(4 * 0.15) = 1 in val and test
    with pytest.raises(ValueError, match=r"Found 2 group\(s\) \(patients\) holding 80 sample\(s\).*at least 3 groups"):
        data.split_dataset(samples, (0.4, 0.3, 0.3), seed=0)
    with pytest.raises(ValueError, match=r"Found 2 group\(s\).*at least 4 groups"):
        data.split_dataset(samples, seed=0)


def test_grouped_split_refuses_a_group_of_two_diagnoses():
    samples = _grouped(6)
    samples[0] = dataclasses.replace(samples[0], diagnosis="normal")  # p0 is abnormal on its other slices
    with pytest.raises(ValueError, match=r"group 'p0': abnormal, normal"):
        data.split_dataset(samples, (0.5, 0.0, 0.5), seed=0)
    split = data.split_dataset(samples, (0.5, 0.0, 0.5), seed=0, stratify=False)  # no diagnosis needed
    groups = _groups_of(split, samples)
    assert len(groups["train"]) == len(groups["test"]) == 3 and not groups["train"] & groups["test"]


def test_filter_healthy(montgomery_dir):
    ds = data.load_dataset(montgomery_dir, pixel_checks=False)
    assert len(data.filter_diagnosis(ds.samples, "normal")) == 80


def test_arrays_any_source_size_and_binary_masks(tmp_path):
    # A 16-bit 300x200 radiograph with a 0/255 mask, resized to 64x96.
    image = (np.linspace(0, 65535, 300 * 200).reshape(300, 200)).astype(np.uint16)
    mask = np.zeros((300, 200), np.uint8)
    mask[50:250, 20:100] = 255
    write_png(tmp_path / "images" / "a.png", image)
    write_png(tmp_path / "masks" / "a.png", mask)
    ds = data.load_dataset(tmp_path)
    x, y = data.load_arrays(ds, (64, 96))
    assert x.shape == (1, 64, 96, 1) and x.dtype == np.float32
    assert 0.0 <= x.min() < 0.01 and 0.99 < x.max() <= 1.0
    assert set(np.unique(y)) == {0.0, 1.0}
    # Nearest-neighbour keeps the mask's area fraction (200*80 / (300*200) = 0.2667).
    assert abs(y.mean() - 0.2667) < 0.02


def test_real_arrays_match_files(montgomery_dir):
    from PIL import Image

    ds = data.load_dataset(montgomery_dir, pixel_checks=False).subset(["MCUCXR_0001_0"])
    x, y = data.load_arrays(ds, (128, 128))
    raw = np.asarray(Image.open(montgomery_dir / "images" / "MCUCXR_0001_0.png"), np.float32) / 255
    np.testing.assert_allclose(x[0, ..., 0], raw, atol=1e-6)
    raw_mask = np.asarray(Image.open(montgomery_dir / "masks" / "MCUCXR_0001_0.png")) > 127
    np.testing.assert_array_equal(y[0, ..., 0], raw_mask)


def test_tf_dataset_matches_numpy_path(montgomery_dir):
    pytest.importorskip("tensorflow")
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.data path needs the TensorFlow backend")
    ds = data.load_dataset(montgomery_dir, pixel_checks=False)
    samples = ds.samples[:6]
    x_np, y_np = data.load_arrays(samples, (64, 64))
    batches = list(data.make_tf_dataset(samples, (64, 64), batch_size=4).as_numpy_iterator())
    x_tf = np.concatenate([b[0] for b in batches])
    y_tf = np.concatenate([b[1] for b in batches])
    assert x_tf.shape == (6, 64, 64, 1) and y_tf.shape == (6, 64, 64, 1)
    # One reader (load_sample through tf.numpy_function): the same arrays, bit for bit.
    np.testing.assert_array_equal(x_tf, x_np)
    np.testing.assert_array_equal(y_tf, y_np)
    # Seeded shuffle: same seed, same order.
    order = lambda seed: [
        b[0].sum() for b in data.make_tf_dataset(samples, (32, 32), 2, shuffle=True, seed=seed).as_numpy_iterator()
    ]
    assert order(1) == order(1)
