"""Small test data and markers shared by the tests in tests/augment (imported, not collected).

The layer contract itself is checked once, over every layer, in test_layer_contract.py.
"""

import importlib.util

import numpy as np
import pytest

import keras
from keras import ops

BACKEND = keras.backend.backend()
requires_tf = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="tf.data needs TensorFlow installed"
)
requires_tf_backend = pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow backend behaviour")

H, W = 24, 20  # not square: catches swapped axes


def to_np(x):
    return ops.convert_to_numpy(x)


def smooth_image(n=4, h=H, w=W, c=1, dtype="uint8", seed=0):
    """Random but spatially smooth images (so every geometric change is visible)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    imgs = []
    for _ in range(n * c):
        a, b, ph = rng.uniform(0.15, 0.5, 3)
        g = 0.5 + 0.25 * np.sin(a * xx + ph) + 0.2 * np.cos(b * yy) + 0.05 * rng.standard_normal((h, w))
        imgs.append(np.clip(g, 0, 1))
    x = np.stack(imgs).reshape(n, c, h, w).transpose(0, 2, 3, 1)
    if dtype == "uint8":
        return np.round(x * 255).astype("uint8")
    return x.astype(dtype)


def blob_masks(n=4, h=H, w=W, dtype="uint8", values=(0, 1)):
    """Masks with two labelled ellipses per sample (labels = values[1], values[-1])."""
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    out = np.full((n, h, w, 1), values[0], dtype=dtype)
    for i in range(n):
        left = ((xx - w * 0.3) / (w * 0.2)) ** 2 + ((yy - h * (0.4 + 0.1 * i)) / (h * 0.3)) ** 2 < 1
        right = ((xx - w * 0.7) / (w * 0.18)) ** 2 + ((yy - h * 0.5) / (h * 0.28)) ** 2 < 1
        out[i, left, 0] = values[1]
        out[i, right, 0] = values[-1]
    return out


def batch(dtype="uint8", n=4, c=1, mask_dtype="uint8", seed=0):
    return {"images": smooth_image(n, c=c, dtype=dtype, seed=seed), "segmentation_masks": blob_masks(n, dtype=mask_dtype)}
