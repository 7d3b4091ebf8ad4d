import numpy as np
import pytest

import augment_checks as C
from lung_keras.augment import GaussNoise, HorizontalFlip, OneOf, RandomGamma, VerticalFlip


def test_exactly_one_child_per_sample():
    x = C.smooth_image(64, h=6, w=7)
    out = C.to_np(OneOf([HorizontalFlip(p=1.0), VerticalFlip(p=1.0)], p=1.0, seed=0)(x, training=True))
    h = np.array([np.array_equal(o, xi[:, ::-1]) for o, xi in zip(out, x)])
    v = np.array([np.array_equal(o, xi[::-1]) for o, xi in zip(out, x)])
    assert np.all(h ^ v)  # never both, never neither
    assert 16 < h.sum() < 48


def test_choice_weighted_by_child_p():
    # children p = 0.1 and 0.3 -> chosen 25% / 75%; the chosen one is always applied
    layer = OneOf([GaussNoise(p=0.1), RandomGamma(p=0.3)], p=1.0, seed=0)
    t = layer.get_random_transformation(np.zeros((2000, 2, 2, 1), "float32"))
    choice = C.to_np(t["choice"])
    assert abs(np.mean(choice == 0) - 0.25) < 0.04
    np.testing.assert_array_equal(C.to_np(t["steps"][0]["apply"]), choice == 0)
    np.testing.assert_array_equal(C.to_np(t["steps"][1]["apply"]), choice == 1)


def test_all_zero_child_p_is_identity():
    x = C.smooth_image(4)
    out = OneOf([GaussNoise(p=0.0), RandomGamma(p=0.0)], p=1.0)(x, training=True)
    np.testing.assert_array_equal(C.to_np(out), x)


def test_invalid_arguments():
    with pytest.raises(ValueError, match=r"Received: transforms=\[\]"):
        OneOf([])
    with pytest.raises(ValueError, match="Received: transform=3"):
        OneOf([HorizontalFlip(), 3])


