"""The one-pass loader: decode once (checked on the way), keep at the training size in memory or a disk cache."""

import os
import pathlib
import warnings

import numpy as np
import pytest

from lung_keras import data as lk_data
from lung_keras.data.store import build_store
from lung_keras.data.store import resolve_cache
from tests.conftest import copy_real_pairs
from tests.conftest import write_png


@pytest.mark.parametrize("cache", ["memory", "disk"])
def test_store_gives_the_arrays_of_the_two_pass_loader(montgomery_dir, tmp_path, cache):
    dataset = lk_data.load_dataset(montgomery_dir)
    x, y = lk_data.load_arrays(dataset.samples[:40], (96, 80))
    store = build_store(montgomery_dir, (96, 80), cache=cache, cache_dir=tmp_path, workers=2)
    assert store.ids == dataset.ids  # same valid samples, same order
    xs, ys = store.arrays(dataset.samples[:40])
    assert xs.dtype == np.float32 and ys.dtype == np.float32
    np.testing.assert_array_equal(xs, x)
    np.testing.assert_array_equal(ys, y)
    assert (store.location is not None) == (cache == "disk")


def test_disk_cache_is_reused_and_keyed_by_the_files(montgomery_dir, tmp_path):
    data = copy_real_pairs(montgomery_dir, tmp_path / "data", normal=4, abnormal=4)
    first = build_store(data, (64, 64), cache="disk", cache_dir=tmp_path / "cache")
    assert not first.from_cache
    again = build_store(data, (64, 64), cache="disk", cache_dir=tmp_path / "cache")
    assert again.from_cache and again.location == first.location
    np.testing.assert_array_equal(again.arrays()[0], first.arrays()[0])
    # Another size is another cache; a rewritten file is another key (never stale arrays).
    assert build_store(data, (32, 32), cache="disk", cache_dir=tmp_path / "cache").location != first.location
    image = sorted((data / "images").glob("*.png"))[0]
    write_png(image, np.full((128, 128), 7, np.uint8))
    changed = build_store(data, (64, 64), cache="disk", cache_dir=tmp_path / "cache")
    assert not changed.from_cache and changed.location != first.location
    np.testing.assert_allclose(changed.arrays([image.stem])[0], 7 / 255, rtol=1e-6)


def test_truncated_cache_is_ignored_with_a_warning(montgomery_dir, tmp_path):
    data = copy_real_pairs(montgomery_dir, tmp_path / "data", normal=3, abnormal=3)
    store = build_store(data, (64, 64), cache="disk", cache_dir=tmp_path / "cache")
    reference = store.arrays()[0]
    store.close()
    path = store.location / "images.npy"
    os.truncate(path, os.path.getsize(path) - 100)
    with pytest.warns(UserWarning, match="unreadable cache"):
        again = build_store(data, (64, 64), cache="disk", cache_dir=tmp_path / "cache")
    assert not again.from_cache
    np.testing.assert_array_equal(again.arrays()[0], reference)


def _bad_dataset(make_pair_dataset):
    root = make_pair_dataset(n=6)
    (root / "images" / "case_001_1.png").write_bytes(b"not a png")
    soft = np.zeros((40, 48), np.uint8)
    soft[5:30, 5:20] = 255
    soft[5:30, 20:22] = 128  # an anti-aliased edge: three levels
    write_png(root / "masks" / "case_002_0.png", soft)
    write_png(root / "images" / "case_009_0.png", np.ones((40, 48), np.uint8))  # no mask
    return root


def test_problems_are_those_of_data_check_and_nothing_is_cached(make_pair_dataset, tmp_path):
    root = _bad_dataset(make_pair_dataset)
    expected = [str(p) for p in lk_data.check_dataset(root).problems]
    with pytest.raises(lk_data.DatasetError) as info:
        build_store(root, (32, 32), cache="disk", cache_dir=tmp_path / "cache")
    assert [str(p) for p in info.value.report.problems] == expected
    message = str(info.value)
    assert "case_001_1.png" in message and "unreadable" in message
    assert "case_002_0.png" in message and "mask not binary" in message
    assert "case_009_0.png" in message and "image without mask" in message
    assert not any((tmp_path / "cache").glob("*"))  # no cache folder, no temporary left behind


def test_skip_invalid_leaves_out_the_bad_pairs_with_a_warning(make_pair_dataset):
    root = _bad_dataset(make_pair_dataset)
    with pytest.warns(UserWarning, match="Skipping 3 problem"):
        store = build_store(root, (32, 32), skip_invalid=True)
    assert store.ids == ["case_000_0", "case_003_1", "case_004_0", "case_005_1"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert store.ids == lk_data.load_dataset(root, skip_invalid=True).ids
    assert store.arrays()[0].shape == (4, 32, 32, 1)


def test_soft_masks_follow_the_binarize_threshold(make_pair_dataset):
    root = _bad_dataset(make_pair_dataset)
    (root / "images" / "case_001_1.png").unlink()
    (root / "masks" / "case_001_1.png").unlink()
    (root / "images" / "case_009_0.png").unlink()
    store = build_store(root, (40, 48), binarize_threshold=0.6)
    mask = store.arrays(["case_002_0"])[1][0, ..., 0]
    assert mask[10, 10] == 1 and mask[10, 20] == 0  # 128 < 0.6 * 255: background


def test_auto_cache_goes_to_disk_above_the_limit(monkeypatch):
    from lung_keras.data import store as store_module

    samples = [object()] * 10
    assert resolve_cache("auto", samples, (64, 64), 1) == "memory"
    monkeypatch.setattr(store_module, "AUTO_DISK_BYTES", 10 * 64 * 64 * 8 - 1)
    assert store_module.resolve_cache("auto", samples, (64, 64), 1) == "disk"
    with pytest.raises(ValueError, match="Received: cache='ram'"):
        resolve_cache("ram", samples, (64, 64), 1)


def test_tf_dataset_streams_every_row_once_per_epoch_seeded(montgomery_dir, tmp_path):
    pytest.importorskip("tensorflow")
    store = build_store(montgomery_dir, (32, 32), cache="disk", cache_dir=tmp_path)
    samples = store.samples[:20]
    x, _ = store.arrays(samples)

    def epoch(ds):
        return np.concatenate([b[0].numpy() for b in ds])

    ds = store.tf_dataset(samples, batch_size=6, shuffle=True, seed=3)
    first, second = epoch(ds), epoch(ds)
    assert first.shape == x.shape
    key = lambda a: sorted(map(bytes, a.reshape(len(a), -1)))  # noqa: E731
    assert key(first) == key(x) == key(second)  # every row once per epoch
    assert not np.array_equal(first, second)  # reshuffled each epoch
    again = store.tf_dataset(samples, batch_size=6, shuffle=True, seed=3)
    np.testing.assert_array_equal(epoch(again), first)  # seeded
    doubled = store.tf_dataset(samples, batch_size=8, repeat=2)
    assert sum(int(b[0].shape[0]) for b in doubled) == 40


def test_py_dataset_batches_every_backend(montgomery_dir):
    store = build_store(montgomery_dir, (32, 32))
    samples = store.samples[:10]
    ds = store.py_dataset(samples, batch_size=4, shuffle=True, seed=0)
    assert len(ds) == 3
    rows = np.concatenate([ds[i][0] for i in range(len(ds))])
    x, _ = store.arrays(samples)
    assert sorted(map(bytes, rows.reshape(10, -1))) == sorted(map(bytes, x.reshape(10, -1)))
    order = ds.order.copy()
    ds.on_epoch_end()
    assert not np.array_equal(order, ds.order)
    assert len(store.py_dataset(samples, batch_size=4, drop_remainder=True)) == 2


def test_two_processes_building_the_same_cache_share_it(montgomery_dir, tmp_path):
    """Workers of a multi-worker run decode the same files into a shared cache folder at the same time."""
    from lung_keras.data import store as store_module

    data = copy_real_pairs(montgomery_dir, tmp_path / "data", normal=3, abnormal=3)
    first = build_store(data, (32, 32), cache="disk", cache_dir=tmp_path / "cache")
    reference = first.arrays()[0]
    # A second process finishing the same key later: its folder is dropped, the published one kept and read.
    late = tmp_path / "cache" / ".late"
    late.mkdir()
    (late / "index.json").write_text("{}")
    store_module._publish(late, first.location)
    assert not late.exists()
    again = build_store(data, (32, 32), cache="disk", cache_dir=tmp_path / "cache")
    assert again.from_cache
    np.testing.assert_array_equal(again.arrays()[0], reference)


@pytest.mark.slow
def test_evaluate_cli_decodes_once_into_the_disk_cache_and_reuses_it(montgomery_dir, tmp_path):
    """`lung-keras evaluate --data-cache disk` in fresh processes: the second run reads the cache, same scores."""
    import json
    import subprocess
    import sys

    from lung_keras.models import unet

    data = copy_real_pairs(montgomery_dir, tmp_path / "data", normal=3, abnormal=3)
    unet((32, 32, 1), base_filters=4, depth=2).save(tmp_path / "model.keras")
    lung_keras = [str(pathlib.Path(sys.executable).with_name("lung-keras"))]

    def evaluate(out):
        proc = subprocess.run(lung_keras + ["evaluate", "--model", str(tmp_path / "model.keras"), "--data", str(data),
                                            "--out", str(tmp_path / out), "--data-cache", "disk", "--cache-dir",
                                            str(tmp_path / "cache"), "--workers", "2", "--json"],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout)

    first = evaluate("a")
    caches = list((tmp_path / "cache").iterdir())
    assert len(caches) == 1 and (caches[0] / "index.json").is_file()
    stamp = (caches[0] / "images.npy").stat().st_mtime_ns
    second = evaluate("b")
    assert (caches[0] / "images.npy").stat().st_mtime_ns == stamp  # read, not written again
    assert first["n"] == second["n"] == 6 and first["mean_dice"] == second["mean_dice"]
