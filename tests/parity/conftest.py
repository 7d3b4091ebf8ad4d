"""Fixtures for parity tests against Albumentations 2.0.8 on real Montgomery chest X-rays."""

import numpy as np
import pytest

A = pytest.importorskip("albumentations")
pytest.importorskip("scipy")

NUM_IMAGES = 3


def _read(path, mode):
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert(mode))


@pytest.fixture(scope="session")
def cxr(montgomery_dir):
    """`(images, masks)`: 3 real 128x128 grey chest X-rays `(3, 128, 128, 1)` uint8 and lung masks (0/1 uint8)."""
    names = sorted(p.name for p in (montgomery_dir / "images").glob("*.png"))
    picked = [names[i] for i in np.linspace(0, len(names) - 1, NUM_IMAGES).astype(int)]
    images = np.stack([_read(montgomery_dir / "images" / n, "L") for n in picked])[..., None]
    masks = (np.stack([_read(montgomery_dir / "masks" / n, "L") for n in picked]) > 127).astype(np.uint8)[..., None]
    return images, masks
