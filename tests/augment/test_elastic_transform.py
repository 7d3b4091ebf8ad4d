import numpy as np
import pytest

import augment_checks as C
from lung_keras.augment import ElasticTransform
from lung_keras.augment import functional as F


def test_injected_constant_displacement_shifts():
    # dx = +1 everywhere: output[:, x] = input[:, x + 1]; last column reads outside -> fill
    x = C.smooth_image(1, c=2)
    d = np.zeros((1, C.H, C.W, 2), "float32")
    d[..., 0] = 1.0
    layer = ElasticTransform(fill=9, p=1.0)
    out = C.to_np(layer.transform_images(x, {"apply": np.array([True]), "displacement": d}))
    np.testing.assert_array_equal(out[:, :, :-1], x[:, :, 1:])
    assert np.all(out[:, :, -1] == 9)


def test_displacement_matches_albumentations_recipe():
    # Same noise through our smoothing and through Albumentations' recipe written
    # out in numpy: stack (dx; dy) vertically, Gaussian blur with replicate border
    # (OpenCV kernel size round(8 sigma + 1) | 1), scale by alpha.
    rng = np.random.default_rng(0)
    h, w, sigma, alpha = 12, 9, 2.0, 5.0
    noise = rng.uniform(-1, 1, (1, h, w, 2)).astype("float32")
    ours = C.to_np(F.elastic_displacement(noise, alpha, sigma))[0]
    k = F.cv2_gaussian_kernel(sigma)
    r = len(k) // 2
    stacked = np.concatenate([noise[0, ..., 0], noise[0, ..., 1]], axis=0).astype(np.float64)

    def blur_axis(a, axis):
        idx = np.clip(np.arange(-r, a.shape[axis] + r), 0, a.shape[axis] - 1)
        padded = np.take(a, idx, axis=axis)
        out = np.zeros_like(a)
        for i, weight in enumerate(k):
            out += weight * np.take(padded, np.arange(i, i + a.shape[axis]), axis=axis)
        return out

    ref = blur_axis(blur_axis(stacked, 0), 1) * alpha
    np.testing.assert_allclose(ours[..., 0], ref[:h], atol=1e-5)
    np.testing.assert_allclose(ours[..., 1], ref[h:], atol=1e-5)


def test_transformation_keys_and_zero_field_when_off():
    layer = ElasticTransform(alpha=20, sigma=3, p=1.0, seed=0)
    t = layer.get_random_transformation(np.zeros((3, 8, 10, 1), "uint8"))
    assert set(t) == {"apply", "displacement"}
    assert C.to_np(t["displacement"]).shape == (3, 8, 10, 2)
    off = ElasticTransform(p=0.0).get_random_transformation(np.zeros((3, 8, 10, 1), "uint8"))
    assert np.all(C.to_np(off["displacement"]) == 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"alpha": -1}, "Received: alpha=-1"),
        ({"sigma": 0.5}, "Received: sigma=0.5"),
        ({"noise_distribution": "laplace"}, "Received: noise_distribution='laplace'"),
        ({"same_dxdy": 1}, "Received: same_dxdy=1"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ElasticTransform(**kwargs)


