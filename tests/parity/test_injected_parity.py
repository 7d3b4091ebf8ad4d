"""Pixel parity with injected random parameters: the same noise goes into Albumentations 2.0.8 and lung_keras.

ElasticTransform: the same normalized noise -> displacement fields (Albumentations' `generate_displacement_fields`,
with its dx/dy seam in the vertical blur) and the same fields -> resampled image/mask (`cv2.remap`).
GaussNoise: the same noise map added to the image.
"""

import keras
import numpy as np
import pytest

from tests.parity.utils import agreement
from tests.parity.utils import diffs
from tests.parity.utils import run_albu
from tests.parity.utils import run_ours

A = pytest.importorskip("albumentations")
pytest.importorskip("lung_keras.augment.elastic_transform")
from albumentations.augmentations.geometric import functional as AF  # noqa: E402

from lung_keras.augment import functional as F  # noqa: E402
from lung_keras.augment.elastic_transform import ElasticTransform  # noqa: E402
from lung_keras.augment.gauss_noise import GaussNoise  # noqa: E402


class _FixedNoise:
    """Stands in for Albumentations' numpy Generator: returns the given noise."""

    def __init__(self, noise):
        self.noise = noise

    def standard_normal(self, shape, dtype=np.float32):
        assert tuple(shape) == self.noise.shape, (shape, self.noise.shape)
        return self.noise.astype(dtype).copy()


def _normalized_noise(shape, seed):
    noise = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return noise / np.abs(noise).max()


# [alpha, sigma, approximate, same_dxdy, max abs field diff in pixels]
FIELD_CASES = [
    [40.0, 6.0, False, False, 1e-3],
    [1.0, 50.0, False, False, 1e-4],  # Albumentations' defaults: kernel larger than the image, replicate border
    [30.0, 4.0, True, False, 1e-3],  # approximate: fixed 17x17 kernel
    [30.0, 5.0, False, True, 1e-3],
]


@pytest.mark.parametrize("alpha,sigma,approximate,same_dxdy,tol", FIELD_CASES)
def test_elastic_displacement_fields_match(alpha, sigma, approximate, same_dxdy, tol):
    h, w = 48, 40
    noise = _normalized_noise((1 if same_dxdy else 2, h, w), seed=1)
    dx, dy = AF.generate_displacement_fields(
        (h, w), alpha, sigma, same_dxdy=same_dxdy, kernel_size=(17, 17) if approximate else (0, 0),
        random_generator=_FixedNoise(noise), noise_distribution="gaussian",
    )
    ours_noise = np.stack([noise[0], noise[-1]], axis=-1)[None]
    ours = keras.ops.convert_to_numpy(F.elastic_displacement(ours_noise, alpha, sigma, approximate, same_dxdy))[0]
    err = max(np.abs(ours[..., 0] - dx).max(), np.abs(ours[..., 1] - dy).max())
    print(f"elastic field alpha={alpha} sigma={sigma}: max |diff| = {err:.2e} px (field scale {np.abs(dx).max():.2f})")
    assert err <= tol


@pytest.mark.parametrize("interpolation", [1, 0])
def test_elastic_resampling_matches(cxr, interpolation):
    """Same displacement into `cv2.remap` (Albumentations) and our gather resampler.

    Tolerance as Rotate (cv2.remap snaps to 1/32 px, fixed-point blending): measured max 5 (bilinear) on interior
    pixels, mean < 0.1; mask agreement >= 0.999.
    """
    images, masks = cxr
    n, h, w, _ = images.shape
    rng = np.random.default_rng(2)
    fields = []
    for k in range(n):
        noise = _normalized_noise((2, h, w), seed=10 + k)
        dx, dy = AF.generate_displacement_fields((h, w), 60.0, 5.0, False, (0, 0), _FixedNoise(noise), "gaussian")
        fields.append(np.stack([dx, dy], axis=-1))
    fields = np.stack(fields).astype(np.float32)
    assert np.abs(fields).max() > 1.0 and rng is not None  # a real deformation
    t_albu = A.ElasticTransform(alpha=60, sigma=5, interpolation=interpolation, p=1.0)
    ref_i, ref_m = [], []
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    for k in range(n):
        params = {"map_x": xs + fields[k, ..., 0], "map_y": ys + fields[k, ..., 1], "shape": (h, w)}
        ri, rm = run_albu(t_albu, images[k : k + 1], masks[k : k + 1], **params)
        ref_i.append(ri[0])
        ref_m.append(rm[0])
    ref_i, ref_m = np.stack(ref_i), np.stack(ref_m)
    layer = ElasticTransform(alpha=60, sigma=5, interpolation=interpolation, p=1.0)
    transformation = {"apply": np.ones((n,), bool), "displacement": fields}
    ours_i, ours_m = run_ours(layer, images, masks, transformation=transformation)
    mx, mean = diffs(ours_i, ref_i, margin=1)
    agree = agreement(ours_m, ref_m)
    print(f"elastic resample interp={interpolation}: max_interior={mx} mean_all={mean:.3f} mask_agree={agree:.5f}")
    if interpolation == 1:
        assert mx <= 6
    assert mean <= 0.15
    assert np.mean(ours_i == ref_i) >= 0.9 if interpolation == 1 else np.mean(ours_i == ref_i) >= 0.998
    assert agree >= 0.999


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_gauss_noise_injected(cxr, dtype):
    """Same noise map (fraction of max value) added by both: uint8 measured exact, float32 within 1e-6."""
    images, masks = cxr
    if dtype == "float32":
        images = images.astype(np.float32) / 255.0
    n, h, w, c = images.shape
    noise = (np.random.default_rng(3).standard_normal((n, h, w, c)) * 0.1 + 0.02).astype(np.float32)
    max_value = 255.0 if dtype == "uint8" else 1.0
    t_albu = A.GaussNoise(std_range=(0.1, 0.1), mean_range=(0.02, 0.02), p=1.0)
    ref = np.stack(
        [run_albu(t_albu, images[k : k + 1], noise_map=noise[k] * max_value)[0][0] for k in range(n)]
    )
    layer = GaussNoise(std_range=(0.1, 0.1), mean_range=(0.02, 0.02), p=1.0)
    transformation = {"apply": np.ones((n,), bool), "std": np.full((n,), 0.1, "float32"),
                      "mean": np.full((n,), 0.02, "float32"), "noise": noise}
    ours, ours_m = run_ours(layer, images, masks, transformation=transformation)
    np.testing.assert_array_equal(ours_m, masks)
    mx, mean = diffs(ours, ref)
    print(f"GaussNoise injected {dtype}: max_all={mx} mean_all={mean}")
    assert ours.dtype == images.dtype
    assert mx <= (1 if dtype == "uint8" else 1e-6)
    if dtype == "uint8":
        assert np.mean(ours == ref) >= 0.99
