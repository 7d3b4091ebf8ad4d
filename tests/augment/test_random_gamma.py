import numpy as np
import pytest

import augment_checks as C
from lung_keras.augment import RandomGamma


# [gamma, input, expected]
TEST_CASES = [
    # float: x ** gamma
    [2.0, np.array([0.5, 1.0, 0.0], "float32"), np.array([0.25, 1.0, 0.0], "float32")],
    [0.5, np.array([0.25], "float32"), np.array([0.5], "float32")],
    # uint8: floor((x / 255) ** g * 255): 128 -> 64.25 -> 64 ; 255 -> 255
    [2.0, np.array([128, 255], "uint8"), np.array([64, 255], "uint8")],
    # 64 -> (64/255) ** 0.5 * 255 = 127.75 -> 127
    [0.5, np.array([64], "uint8"), np.array([127], "uint8")],
]


@pytest.mark.parametrize("gamma, x, expected", TEST_CASES)
def test_injected_transformation(gamma, x, expected):
    layer = RandomGamma(p=1.0)
    t = {"apply": np.array([True]), "gamma": np.array([gamma], "float32")}
    out = C.to_np(layer.transform_images(x.reshape(1, 1, -1, 1), t))
    assert out.dtype == x.dtype
    np.testing.assert_allclose(out.reshape(-1), expected, atol=1e-6)


def test_gamma_limit_is_percent():
    t = RandomGamma(gamma_limit=(80, 120), p=1.0, seed=0).get_random_transformation(np.zeros((500, 2, 2, 1)))
    g = C.to_np(t["gamma"])
    assert 0.8 <= g.min() < 0.82 and 1.18 < g.max() <= 1.2
    assert RandomGamma(gamma_limit=150).gamma_limit == (1.0, 150.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"gamma_limit": (0.5, 2)}, r"Received: gamma_limit=\(0.5, 2\)"), ({"gamma_limit": None}, "Received: gamma_limit=None")],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandomGamma(**kwargs)


