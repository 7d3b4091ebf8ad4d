import numpy as np
import pytest

import augment_checks as C
from lung_keras.augment import RandomBrightnessContrast


# [kwargs, alpha, beta fraction, input, expected]; uint8 truncates like Albumentations' LUT
TEST_CASES = [
    # 100 * 1.5 + 0.1 * 255 = 175.5 -> 175
    [{}, 1.5, 0.1, np.array([100], "uint8"), np.array([175], "uint8")],
    # 200 * 1.5 + 25.5 = 325.5 -> clipped 255; 0 * 1.5 + 25.5 -> 25
    [{}, 1.5, 0.1, np.array([200, 0], "uint8"), np.array([255, 25], "uint8")],
    # contrast about 0 (not the mean): 0.4 * 0.5 - 0.05 = 0.15 ; 0.8 * 0.5 - 0.05 = 0.35
    [{}, 0.5, -0.05, np.array([0.4, 0.8], "float32"), np.array([0.15, 0.35], "float32")],
    # brightness_by_max=False: beta = 0.5 * mean(image) = 0.5 * 0.3 = 0.15 -> 0.2+0.15, 0.4+0.15
    [{"brightness_by_max": False}, 1.0, 0.5, np.array([0.2, 0.4], "float32"), np.array([0.35, 0.55], "float32")],
    # ensure_safe_range, alpha>0: beta -> clip(beta, 0, 1) = 0.2, alpha -> min(1.5, 0.8) = 0.8
    [{"ensure_safe_range": True}, 1.5, 0.2, np.array([1.0, 0.0], "float32"), np.array([1.0, 0.2], "float32")],
]


@pytest.mark.parametrize("kwargs, alpha, beta, x, expected", TEST_CASES)
def test_injected_transformation(kwargs, alpha, beta, x, expected):
    layer = RandomBrightnessContrast(p=1.0, **kwargs)
    images = x.reshape(1, 1, -1, 1)
    t = {"apply": np.array([True]), "alpha": np.array([alpha], "float32"), "beta": np.array([beta], "float32")}
    out = C.to_np(layer.transform_images(images, t))
    assert out.dtype == x.dtype
    np.testing.assert_allclose(out.reshape(-1), expected, atol=1e-6)


@pytest.mark.parametrize("kwargs", [{}, {"brightness_by_max": False}, {"ensure_safe_range": True}])
def test_samples_not_applied_are_bit_identical(kwargs):
    # `apply` is folded into per-sample alpha=1, beta=0 and open clip bounds (no select over the images):
    # a sample that is not applied must still come back exactly, even with values outside [0, 1].
    # Applied sample (brightness_by_max): clip(x * 1.5 + 0.1): -0.5 -> 0, 0.25 -> 0.475, 1.7 -> 1.
    x = np.array([[-0.5, 0.25, 1.7], [-0.5, 0.3333333, 1.7]], "float32").reshape(2, 1, 3, 1)
    t = {"apply": np.array([True, False]), "alpha": np.full(2, 1.5, "float32"), "beta": np.full(2, 0.1, "float32")}
    out = C.to_np(RandomBrightnessContrast(p=0.5, **kwargs).transform_images(x, t))
    np.testing.assert_array_equal(out[1], x[1])
    if not kwargs:
        np.testing.assert_allclose(out[0].reshape(-1), [0.0, 0.475, 1.0], atol=1e-6)
    x8 = np.array([[0, 100, 255], [0, 100, 255]], "uint8").reshape(2, 1, 3, 1)
    out8 = C.to_np(RandomBrightnessContrast(p=0.5, **kwargs).transform_images(x8, t))
    np.testing.assert_array_equal(out8[1], x8[1])


def test_transformation_keys_and_ranges():
    t = RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=(0.1, 0.2), p=1.0, seed=0).get_random_transformation(
        np.zeros((500, 4, 4, 1), "uint8")
    )
    assert set(t) == {"apply", "alpha", "beta"}
    alpha, beta = C.to_np(t["alpha"]), C.to_np(t["beta"])
    assert 1.1 <= alpha.min() and alpha.max() <= 1.2
    assert -0.3 <= beta.min() < -0.25 and 0.25 < beta.max() <= 0.3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"contrast_limit": [1, 2, 3]}, r"Received: contrast_limit=\[1, 2, 3\]"),
        ({"brightness_by_max": "yes"}, "Received: brightness_by_max='yes'"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandomBrightnessContrast(**kwargs)


