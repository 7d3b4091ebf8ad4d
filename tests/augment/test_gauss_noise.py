import numpy as np
import pytest

import augment_checks as C
from lung_keras.augment import GaussNoise


# [noise fraction, input, expected]; uint8 noise is truncated toward 0 before adding (albucore)
TEST_CASES = [
    [0.1, np.array([0.5, 0.95], "float32"), np.array([0.6, 1.0], "float32")],
    [0.1, np.array([100, 250], "uint8"), np.array([125, 255], "uint8")],  # +25.5 -> +25
    [-0.1, np.array([100, 10], "uint8"), np.array([75, 0], "uint8")],  # -25.5 -> -25
]


@pytest.mark.parametrize("noise, x, expected", TEST_CASES)
def test_injected_transformation(noise, x, expected):
    layer = GaussNoise(p=1.0)
    t = {
        "apply": np.array([True]),
        "std": np.array([0.1], "float32"),
        "mean": np.array([0.0], "float32"),
        "noise": np.full((1, 1, x.size, 1), noise, "float32"),
    }
    out = C.to_np(layer.transform_images(x.reshape(1, 1, -1, 1), t))
    assert out.dtype == x.dtype
    np.testing.assert_allclose(out.reshape(-1), expected, atol=1e-6)


def test_samples_not_applied_are_bit_identical():
    # `apply` is folded into the noise scale (0) and open clip bounds (no select over the images).
    # Applied sample: clip(x + 0.1): -0.5 -> 0, 0.25 -> 0.35, 1.7 -> 1; uint8: +25.5 truncated to +25.
    x = np.array([[-0.5, 0.25, 1.7], [-0.5, 0.25, 1.7]], "float32").reshape(2, 1, 3, 1)
    t = {"apply": np.array([True, False]), "std": np.full(2, 0.1, "float32"), "mean": np.zeros(2, "float32"),
         "noise": np.full((2, 1, 3, 1), 0.1, "float32")}
    out = C.to_np(GaussNoise(p=0.5).transform_images(x, t))
    np.testing.assert_allclose(out[0].reshape(-1), [0.0, 0.35, 1.0], atol=1e-6)
    np.testing.assert_array_equal(out[1], x[1])
    x8 = np.array([[0, 100, 250], [0, 100, 250]], "uint8").reshape(2, 1, 3, 1)
    out8 = C.to_np(GaussNoise(p=0.5).transform_images(x8, t))
    assert out8[0].reshape(-1).tolist() == [25, 125, 255]
    np.testing.assert_array_equal(out8[1], x8[1])


def test_noise_is_gaussian_with_the_sampled_std():
    # TensorFlow draws it by Box-Muller (cos and sin halves), other backends by keras.random.normal:
    # either way each sample's noise / std must be N(0, 1), and the two halves independent.
    # KS against N(0, 1) on 2 x 64 x 64 values per sample (measured p 0.2-0.9); asserted p > 0.001.
    from scipy import stats

    from lung_keras.augment.gauss_noise import standard_normal

    std = np.array([0.05, 0.3], "float32")
    z = C.to_np(standard_normal((2, 64, 65, 1), 7, std))
    assert z.shape == (2, 64, 65, 1)
    for k in range(2):
        assert stats.kstest(z[k].ravel() / std[k], "norm").pvalue > 1e-3
    top, bottom = z[:, :32].ravel(), z[:, 32:].ravel()
    assert abs(np.corrcoef(top, bottom)[0, 1]) < 0.05
    odd = C.to_np(standard_normal((1, 5, 3, 2), 1))  # odd height: the halves overlap by one row, cut off
    assert odd.shape == (1, 5, 3, 2) and np.isfinite(odd).all()


def test_noise_statistics():
    n = 8
    t = GaussNoise(std_range=(0.1, 0.1), mean_range=(0.05, 0.05), p=1.0, seed=0).get_random_transformation(
        np.zeros((n, 32, 32, 3), "uint8")
    )
    assert set(t) == {"apply", "std", "mean", "noise"}
    noise = C.to_np(t["noise"])
    assert noise.shape == (n, 32, 32, 3)
    assert abs(noise.std() - 0.1) < 0.005 and abs(noise.mean() - 0.05) < 0.005
    shared = GaussNoise(per_channel=False, p=1.0, seed=0).get_random_transformation(np.zeros((2, 8, 8, 3), "uint8"))
    assert C.to_np(shared["noise"]).shape == (2, 8, 8, 1)
    coarse = GaussNoise(noise_scale_factor=0.25, p=1.0, seed=0).get_random_transformation(np.zeros((2, 32, 32, 1)))
    c = C.to_np(coarse["noise"])
    # drawn at 8x8 and resized: neighbouring pixels are strongly correlated
    assert np.corrcoef(c[:, :, :-1].ravel(), c[:, :, 1:].ravel())[0, 1] > 0.8


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"std_range": (0.2, 1.5)}, r"Received: std_range=\(0.2, 1.5\)"),
        ({"std_range": 0.2}, "Received: std_range=0.2"),
        ({"std_range": (0.4, 0.2)}, r"must satisfy low <= high. Received: std_range=\(0.4, 0.2\)"),
        ({"mean_range": (-2, 0)}, r"Received: mean_range=\(-2, 0\)"),
        ({"noise_scale_factor": 0}, "Received: noise_scale_factor=0"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussNoise(**kwargs)


