"""Offline expansion (`expand_dataset`), `preview`, and the `augment` / `preview` CLI subcommands."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from lung_keras.augment import Compose
from lung_keras.augment import HorizontalFlip
from lung_keras.augment import RandomBrightnessContrast
from lung_keras.augment import Rotate
from lung_keras.augment import bridge
from lung_keras.augment import offline
from lung_keras.cli import build_parser


def _policy(seed=None):
    return Compose(
        [
            HorizontalFlip(p=0.5),
            Rotate(limit=15, p=1.0),
            RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=1.0),
        ],
        p=1.0,
        seed=seed,
    )


def _policy_file(tmp_path):
    path = tmp_path / "policy.json"
    bridge.save_policy(_policy(), path)
    return path


def _rows(manifest):
    with open(manifest, newline="") as f:
        return list(csv.DictReader(f))


def test_expand_dataset_writes_pairs_and_manifest(make_pair_dataset, tmp_path):
    data = make_pair_dataset(n=3, size=(40, 48))
    out = tmp_path / "out"
    manifest = offline.expand_dataset(data, out, copies=2, policy=_policy_file(tmp_path), seed=1, progress=False)
    rows = _rows(manifest)
    assert [r["id"] for r in rows] == [f"case_{i:03d}_{i % 2}_aug{k:03d}" for i in range(3) for k in range(2)]
    assert {r["source_id"] for r in rows} == {f"case_{i:03d}_{i % 2}" for i in range(3)}
    assert [r["copy"] for r in rows] == ["0", "1"] * 3
    assert list(rows[0]) == list(offline.MANIFEST_COLUMNS)
    for r in rows:
        params = json.loads(r["params"])
        assert isinstance(params, dict) and params, r["params"]  # the sampled parameters are recorded
        steps = params["steps"]
        assert [s["transform"] for s in steps] == ["HorizontalFlip", "Rotate", "RandomBrightnessContrast"]
        assert -15.0 <= steps[1]["angle"] <= 15.0 and steps[1]["apply"] is True  # Rotate p=1
        image = np.asarray(Image.open(out / "images" / f"{r['id']}.png"))
        mask = np.asarray(Image.open(out / "masks" / f"{r['id']}.png"))
        assert image.shape == mask.shape == (40, 48) and image.dtype == mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 255}  # masks stay binary (nearest resampling, fill 0)
    # copies of one source differ (different draws), and the policy is saved beside the data
    a = np.asarray(Image.open(out / "images" / f"{rows[0]['id']}.png"))
    b = np.asarray(Image.open(out / "images" / f"{rows[1]['id']}.png"))
    assert not np.array_equal(a, b)
    assert bridge.load_policy(out / "policy.json").get_config()["p"] == 1.0


def test_expand_dataset_is_reproducible_with_seed(make_pair_dataset, tmp_path):
    data = make_pair_dataset(n=2, size=(32, 32))
    policy = _policy_file(tmp_path)
    m1 = offline.expand_dataset(data, tmp_path / "o1", copies=2, policy=policy, seed=7, progress=False)
    m2 = offline.expand_dataset(data, tmp_path / "o2", copies=2, policy=policy, seed=7, progress=False)
    m3 = offline.expand_dataset(data, tmp_path / "o3", copies=2, policy=policy, seed=8, progress=False)
    assert _rows(m1) == _rows(m2)
    assert _rows(m1) != _rows(m3)
    for r in _rows(m1):
        a = np.asarray(Image.open(tmp_path / "o1" / "images" / f"{r['id']}.png"))
        b = np.asarray(Image.open(tmp_path / "o2" / "images" / f"{r['id']}.png"))
        np.testing.assert_array_equal(a, b)


def test_expand_dataset_refuses_non_empty_out_dir(make_pair_dataset, tmp_path):
    data = make_pair_dataset(n=2, size=(32, 32))
    out = tmp_path / "out"
    out.mkdir()
    keep = out / "precious.txt"
    keep.write_text("keep me")
    with pytest.raises(FileExistsError, match=str(out)):
        offline.expand_dataset(data, out, copies=1, policy=_policy(), seed=0, progress=False)
    assert keep.read_text() == "keep me" and sorted(p.name for p in out.iterdir()) == ["precious.txt"]
    manifest = offline.expand_dataset(data, out, copies=1, policy=_policy(), seed=0, progress=False, force=True)
    assert len(_rows(manifest)) == 2 and keep.read_text() == "keep me"  # force overwrites, deletes nothing


@pytest.mark.parametrize("copies", [0, -1, 1.5])
def test_expand_dataset_rejects_bad_copies(make_pair_dataset, tmp_path, copies):
    with pytest.raises(ValueError, match="copies"):
        offline.expand_dataset(make_pair_dataset(n=1), tmp_path / "o", copies=copies, policy=_policy(), progress=False)


def test_expand_dataset_on_montgomery(montgomery_dir, tmp_path):
    """Real data: every new pair keeps the source's diagnosis and has a non-empty lung mask."""
    import shutil

    subset = tmp_path / "subset"
    for folder in ("images", "masks"):
        (subset / folder).mkdir(parents=True)
        for p in sorted((montgomery_dir / folder).glob("*.png"))[:3]:
            shutil.copy(p, subset / folder / p.name)  # a temporary subset; the repo never holds the data
    shutil.copy(montgomery_dir / "manifest.csv", subset / "manifest.csv")
    manifest = offline.expand_dataset(subset, tmp_path / "out", copies=2, policy=_policy(), seed=0, progress=False)
    source = {r["id"]: r["diagnosis"] for r in _rows(montgomery_dir / "manifest.csv")}
    rows = _rows(manifest)
    assert len(rows) == 6
    for r in rows:
        assert r["diagnosis"] == source[r["source_id"]]
        mask = np.asarray(Image.open(tmp_path / "out" / "masks" / f"{r['id']}.png"))
        assert 0.05 < (mask > 0).mean() < 0.6


def test_preview_writes_grid_png(make_pair_dataset, tmp_path):
    data = make_pair_dataset(n=3, size=(40, 40))
    out = offline.preview(_policy_file(tmp_path), data, tmp_path / "p" / "grid.png", num_samples=2, num_draws=3)
    with Image.open(out) as im:
        w, h = im.size
        arr = np.asarray(im.convert("RGB")).astype(int)
    assert w > h > 0  # 2 rows x 4 columns (original + 3 draws)
    green = (arr[..., 1] > 150) & (arr[..., 0] < 100) & (arr[..., 2] < 100)
    assert green.sum() > 50  # mask contours drawn


def _parser():
    return build_parser()


def test_cli_augment_and_preview(make_pair_dataset, tmp_path, capsys):
    data = make_pair_dataset(n=2, size=(32, 32))
    policy = _policy_file(tmp_path)
    out = tmp_path / "out"
    argv = ["augment", "--data", str(data), "--out", str(out), "--copies", "2", "--policy", str(policy), "--seed", "3"]
    args = _parser().parse_args(argv + ["--quiet"])
    assert args.func(args) == 0
    assert len(_rows(out / "manifest.csv")) == 4
    args = _parser().parse_args(argv + ["--quiet"])
    assert args.func(args) == 2  # refuses to overwrite without --force
    assert "not empty" in capsys.readouterr().err
    args = _parser().parse_args(argv + ["--quiet", "--force"])
    assert args.func(args) == 0
    png = tmp_path / "preview.png"
    args = _parser().parse_args(["preview", "--policy", str(policy), "--data", str(data), "--out", str(png)])
    assert args.func(args) == 0 and png.stat().st_size > 0
