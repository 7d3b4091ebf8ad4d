import numpy as np
import pytest

import augment_checks as C
from lung_keras.augment import GaussianBlur
from lung_keras.augment import functional as F


def _kernel(taps, size):
    k = np.zeros((1, size), "float32")
    r = len(taps) // 2
    k[0, size // 2 - r : size // 2 + r + 1] = taps
    return k


def test_injected_kernel_on_a_delta():
    # kernel [1/4, 1/2, 1/4] both ways: a centred delta becomes the outer product
    layer = GaussianBlur(sigma_limit=(1, 1), p=1.0)
    x = np.zeros((1, 5, 5, 1), "float32")
    x[0, 2, 2, 0] = 1.0
    t = {"apply": np.array([True]), "kernel": _kernel([0.25, 0.5, 0.25], layer.max_kernel_size)}
    out = C.to_np(layer.transform_images(x, t))[0, :, :, 0]
    expected = np.zeros((5, 5))
    expected[1:4, 1:4] = np.outer([0.25, 0.5, 0.25], [0.25, 0.5, 0.25])
    np.testing.assert_allclose(out, expected, atol=1e-7)


def test_injected_kernel_reflect_101_border():
    # row [1, 0, 0, 0]: reflect_101 mirrors index -1 to 1, so out[0] = 0.5*1 + 0.25*0 + 0.25*0 = 0.5
    # and out[1] = 0.25*1 + 0.5*0 + 0.25*0 = 0.25 (vertical pass on a constant column is a no-op)
    layer = GaussianBlur(p=1.0)
    x = np.zeros((1, 3, 4, 1), "float32")
    x[0, :, 0, 0] = 1.0
    t = {"apply": np.array([True]), "kernel": _kernel([0.25, 0.5, 0.25], layer.max_kernel_size)}
    out = C.to_np(layer.transform_images(x, t))[0, :, :, 0]
    np.testing.assert_allclose(out, np.tile([0.5, 0.25, 0.0, 0.0], (3, 1)), atol=1e-7)


def test_uint8_rounds_like_opencv():
    layer = GaussianBlur(p=1.0)
    x = np.zeros((1, 1, 5, 1), "uint8")
    x[0, 0, 2, 0] = 3  # neighbours get 0.75 -> 1, centre 1.5 -> 2 (half to even)
    t = {"apply": np.array([True]), "kernel": _kernel([0.25, 0.5, 0.25], layer.max_kernel_size)}
    out = C.to_np(layer.transform_images(x, t)).reshape(-1)
    np.testing.assert_array_equal(out, [0, 1, 2, 1, 0])


def test_kernel_sizes_follow_albumentations():
    # blur_limit=0: size int(sigma * 3.5) * 2 + 1 ; drawn even sizes are bumped to odd
    assert F.gaussian_kernel_size(3.0, 0) == 21
    assert F.gaussian_kernel_size(0.5, 0) == 3
    assert F.gaussian_kernel_size(1.0, 4) == 5
    t = GaussianBlur(blur_limit=(3, 7), sigma_limit=(1, 2), p=1.0, seed=0).get_random_transformation(
        np.zeros((300, 4, 4, 1), "uint8")
    )
    assert set(t) == {"apply", "sigma", "ksize", "kernel"}
    sizes = C.to_np(t["ksize"])
    assert set(np.unique(sizes).tolist()) == {3, 5, 7}
    kernel = C.to_np(t["kernel"])
    np.testing.assert_allclose(kernel.sum(axis=1), 1.0, atol=1e-6)
    assert kernel.shape[1] == GaussianBlur(blur_limit=(3, 7), sigma_limit=(1, 2)).max_kernel_size


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"blur_limit": 2.5}, "Received: blur_limit=2.5"),
        ({"blur_limit": (-3, 3)}, r"Received: blur_limit=\(-3, 3\)"),
        ({"sigma_limit": (-1, 1)}, r"Received: sigma_limit=\(-1, 1\)"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianBlur(**kwargs)


