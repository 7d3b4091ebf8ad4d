"""Fixed-parameter pixel parity with Albumentations 2.0.8 on real Montgomery chest X-rays (128x128, uint8 grey).

Randomness is removed with degenerate ranges (`Rotate(limit=(30, 30))`, `p=1`) so both libraries apply the
same parameters; ElasticTransform and GaussNoise get injected noise (see test_injected_parity.py).

Tolerances (value units of uint8, 0-255; or of float32 images in [0, 1]) are stated per case:
  max_interior: max |ours - albumentations| over pixels >= `margin` from the image border;
  mean_all: mean |ours - albumentations| over all pixels;
  mask_agree: minimal fraction of mask pixels equal in both (nearest interpolation).
The figures measured when the tests were written are in the comments (`measured:`).
"""

import numpy as np
import pytest

from tests.parity.utils import agreement
from tests.parity.utils import diffs
from tests.parity.utils import run_albu
from tests.parity.utils import run_ours

A = pytest.importorskip("albumentations")
aug = pytest.importorskip("lung_keras.augment")


def _layer(name, **kwargs):
    from lung_keras.augment.bridge import _layer_class

    return _layer_class(name)(**kwargs)


# [name, kwargs (same for both libraries), margin, max_interior, mean_all, mask_agree]
GEOMETRIC_CASES = [
    # Flips are exact permutations.
    ["HorizontalFlip", {}, 0, 0, 0, 1.0],
    ["VerticalFlip", {}, 0, 0, 0, 1.0],
    # Rotate: cv2.warpAffine snaps source positions to 1/32 px and blends uint8 with fixed-point weights; ours
    # computes in float32, so a few edge pixels differ by up to 5 grey levels.
    # measured: max 4-5, mean 0.075-0.086, mask agreement 1.0 (all five border modes).
    ["Rotate", {"limit": (30, 30)}, 1, 6, 0.15, 0.999],
    ["Rotate", {"limit": (-12.5, -12.5), "border_mode": 1}, 1, 6, 0.15, 0.999],  # BORDER_REPLICATE
    ["Rotate", {"limit": (20, 20), "border_mode": 2}, 1, 6, 0.15, 0.999],  # BORDER_REFLECT
    ["Rotate", {"limit": (20, 20), "border_mode": 4}, 1, 6, 0.15, 0.999],  # BORDER_REFLECT_101
    ["Rotate", {"limit": (20, 20), "border_mode": 3}, 1, 6, 0.15, 0.999],  # BORDER_WRAP
    # nearest: measured 99.87% of pixels identical (centres on the x == y diagonals tie at 45 deg and
    # round to the other neighbour), mean 0.010, mask agreement 1.0
    ["Rotate", {"limit": (45, 45), "interpolation": 0, "fill": 77, "fill_mask": 3}, 0, 255, 0.05, 0.998],
    # Affine with every parameter fixed (scalars are (v, v) in Albumentations' Affine).
    # measured: max 4-5, mean 0.071-0.086, 99.26% of pixels within 1 grey level, mask agreement 1.0
    ["Affine", {"scale": 0.85, "translate_percent": 0.05, "rotate": 10, "shear": 5}, 1, 6, 0.15, 0.999],
    ["Affine", {"scale": {"x": 1.1, "y": 0.9}, "translate_px": {"x": 4, "y": -3}, "shear": {"x": -6, "y": 3}}, 1, 6, 0.15, 0.999],
    ["Affine", {"rotate": -25, "border_mode": 2}, 1, 6, 0.15, 0.999],
]


@pytest.mark.parametrize("name,kwargs,margin,max_interior,mean_all,mask_agree", GEOMETRIC_CASES)
def test_geometric_fixed_parity(cxr, name, kwargs, margin, max_interior, mean_all, mask_agree):
    images, masks = cxr
    ours_i, ours_m = run_ours(_layer(name, p=1.0, seed=0, **kwargs), images, masks)
    ref_i, ref_m = run_albu(getattr(A, name)(p=1.0, **kwargs), images, masks)
    assert ours_i.dtype == np.uint8 and ours_m.dtype == np.uint8
    mx, mean = diffs(ours_i, ref_i, margin)
    agree = agreement(ours_m, ref_m)
    print(f"{name} {kwargs}: max_interior={mx:.0f} mean_all={mean:.3f} mask_agree={agree:.5f}")
    if kwargs.get("interpolation") == 0:
        # Nearest: a pixel centre exactly on a rounding boundary may pick the neighbour; bound by mean + agreement.
        assert agreement(ours_i, ref_i) >= mask_agree
    else:
        assert mx <= max_interior
        assert np.mean(np.abs(ours_i.astype(int) - ref_i.astype(int)) <= 1) >= 0.98
    assert mean <= mean_all
    assert agree >= mask_agree


# [name, kwargs, max_all_uint8, max_all_float32]
PHOTOMETRIC_CASES = [
    # clip(x * alpha + beta): alpha = 1 + contrast, beta = brightness * max (or * image mean).
    # uint8: Albumentations builds a LUT and rounds; exact expected. float: float32 arithmetic.
    ["RandomBrightnessContrast", {"brightness_limit": (0.1, 0.1), "contrast_limit": (0.2, 0.2)}, 1, 1e-5],
    ["RandomBrightnessContrast", {"brightness_limit": (-0.15, -0.15), "contrast_limit": (-0.1, -0.1), "brightness_by_max": False}, 1, 1e-5],
    # gamma: uint8 LUT `(i/255) ** g * 255` truncated by astype(uint8); measured: exact.
    ["RandomGamma", {"gamma_limit": (70, 70)}, 1, 1e-5],
    ["RandomGamma", {"gamma_limit": (135, 135)}, 1, 1e-5],
    # blur: cv2.sepFilter2D with BORDER_REFLECT_101; uint8 output rounded. kernel 5, sigma 1.2 / auto kernel.
    ["GaussianBlur", {"blur_limit": (5, 5), "sigma_limit": (1.2, 1.2)}, 1, 1e-4],
    ["GaussianBlur", {"blur_limit": 0, "sigma_limit": (2.0, 2.0)}, 1, 1e-4],
    # GaussNoise with std 0 is a deterministic shift by mean * max_value.
    ["GaussNoise", {"std_range": (0.0, 0.0), "mean_range": (0.1, 0.1)}, 1, 1e-5],
]


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize("name,kwargs,max_uint8,max_float", PHOTOMETRIC_CASES)
def test_photometric_fixed_parity(cxr, name, kwargs, max_uint8, max_float, dtype):
    images, masks = cxr
    if dtype == "float32":
        images = images.astype(np.float32) / 255.0
    ours_i, ours_m = run_ours(_layer(name, p=1.0, seed=0, **kwargs), images, masks)
    ref_i, _ = run_albu(getattr(A, name)(p=1.0, **kwargs), images, masks)
    assert ours_i.dtype == images.dtype
    np.testing.assert_array_equal(ours_m, masks)  # photometric layers never touch the mask
    mx, mean = diffs(ours_i, ref_i)
    print(f"{name} {kwargs} {dtype}: max_all={mx:.6f} mean_all={mean:.6f}")
    assert mx <= (max_uint8 if dtype == "uint8" else max_float)
    if dtype == "uint8":
        assert np.mean(ours_i == ref_i) >= 0.99  # at most 1% of pixels off by one


# [steps, max_interior, mean_all, p95_interior, mask_agree]
FUSED_CASES = [
    # One resample in both libraries (a flip is an exact permutation): tolerance as Rotate, plus photometric.
    # measured: max 7, mean 0.089, interior p95 1, mask agreement 1.0.
    [[("HorizontalFlip", {}), ("Rotate", {"limit": (12, 12)}),
      ("RandomBrightnessContrast", {"brightness_limit": (0.05, 0.05), "contrast_limit": (0.1, 0.1)}),
      ("RandomGamma", {"gamma_limit": (90, 90)})], 8, 0.25, 1, 0.999],
    # Two geometric steps: Albumentations resamples twice (two bilinear blurs, uint8 rounding in between), the
    # fused Compose once, so ours is sharper; only loose agreement is expected.
    # measured: mean 3.48 (all pixels), interior p95 8, mask agreement 0.9939.
    [[("HorizontalFlip", {}), ("Rotate", {"limit": (12, 12)}), ("Affine", {"scale": 0.9, "translate_percent": 0.04}),
      ("RandomBrightnessContrast", {"brightness_limit": (0.05, 0.05), "contrast_limit": (0.1, 0.1)}),
      ("RandomGamma", {"gamma_limit": (90, 90)})], 255, 4.0, 12, 0.99],
]


@pytest.mark.parametrize("steps,max_interior,mean_all,p95,mask_agree", FUSED_CASES)
def test_fused_compose_matches_albumentations_compose(cxr, steps, max_interior, mean_all, p95, mask_agree):
    """A fixed policy through our fused Compose vs the same A.Compose."""
    images, masks = cxr
    compose = _layer("Compose", transforms=[_layer(n, p=1.0, **k) for n, k in steps], p=1.0, seed=0)
    ref = A.Compose([getattr(A, n)(p=1.0, **k) for n, k in steps], seed=0)
    ours_i, ours_m = run_ours(compose, images, masks)
    ref_i, ref_m = run_albu(ref, images, masks)
    mx, mean = diffs(ours_i, ref_i, margin=2)
    err = np.abs(ours_i.astype(float) - ref_i.astype(float))[:, 2:-2, 2:-2]
    agree = agreement(ours_m, ref_m)
    print(f"fused vs A.Compose ({len(steps)} steps): max={mx} mean={mean:.3f} p95={np.percentile(err, 95):.1f} mask={agree:.5f}")
    assert mx <= max_interior
    assert mean <= mean_all
    assert np.percentile(err, 95) <= p95
    assert agree >= mask_agree


def test_image_as_mask_geometry_identity(cxr):
    """Albumentations' best test: the image fed as its own mask (nearest) comes out with identical geometry."""
    images, _ = cxr
    for name, kwargs in [
        ("Rotate", {"limit": 35, "interpolation": 0}),
        ("Affine", {"scale": (0.8, 1.2), "rotate": (-20, 20), "shear": (-8, 8), "translate_percent": (-0.1, 0.1), "interpolation": 0}),
        ("ElasticTransform", {"alpha": 40, "sigma": 6, "interpolation": 0}),
        ("HorizontalFlip", {}),
        ("VerticalFlip", {}),
    ]:
        layer = _layer(name, p=1.0, seed=3, **kwargs)
        out_i, out_m = run_ours(layer, images, images.copy())
        np.testing.assert_array_equal(out_i, out_m, err_msg=name)
        assert not np.array_equal(out_i, images), name  # something moved
