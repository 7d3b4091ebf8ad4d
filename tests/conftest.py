"""Shared fixtures: the real Montgomery set and small synthetic datasets."""

import os
import pathlib

import numpy as np
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _montgomery_path():
    env = os.environ.get("LUNG_KERAS_DATA")
    candidates = [pathlib.Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data" / "montgomery_cxr")
    for path in candidates:
        if (path / "images").is_dir() and (path / "masks").is_dir():
            return path
    return None


@pytest.fixture(scope="session")
def montgomery_dir():
    """The real Montgomery chest X-ray set (128x128), read in place, never copied into the repo."""
    path = _montgomery_path()
    if path is None:
        pytest.skip("Montgomery data not found: set LUNG_KERAS_DATA or place ../shared beside the checkout")
    return path


def copy_real_pairs(montgomery_dir, dest, normal=6, abnormal=6):
    """Copy the first `normal` normal and `abnormal` tuberculosis Montgomery pairs into `dest` (a tmp folder)."""
    import shutil

    images = sorted((montgomery_dir / "images").glob("*.png"))
    picked = [p for p in images if p.stem.endswith("_0")][:normal] + [p for p in images if p.stem.endswith("_1")][:abnormal]
    for p in picked:
        for sub in ("images", "masks"):
            (dest / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(montgomery_dir / sub / p.name, dest / sub / p.name)
    return dest


def write_png(path, array):
    from PIL import Image

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path)
    return path


@pytest.fixture
def make_pair_dataset(tmp_path):
    """Factory writing a small `images/` + `masks/` dataset with known content."""

    def _make(n=6, size=(40, 48), name="ds", mask_suffix=""):
        root = tmp_path / name
        rng = np.random.default_rng(0)
        h, w = size
        for i in range(n):
            image = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
            mask = np.zeros((h, w), np.uint8)
            mask[h // 4 : 3 * h // 4, w // 5 : w // 2] = 255
            diagnosis = i % 2
            stem = f"case_{i:03d}_{diagnosis}"
            write_png(root / "images" / f"{stem}.png", image)
            write_png(root / "masks" / f"{stem}{mask_suffix}.png", mask)
        return root

    return _make
