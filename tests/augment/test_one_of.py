import numpy as np
import pytest

import augment_checks as C
from lung_keras.augment import GaussNoise, HorizontalFlip, OneOf, RandomGamma, Rotate, VerticalFlip


def factory(**kw):
    return OneOf([Rotate(limit=30, fill_mask=7, p=1.0), RandomGamma(gamma_limit=(50, 150), p=1.0)], **kw)


def test_serialization():
    C.check_serialization(factory)


def test_symbolic_and_eager():
    C.check_symbolic_and_eager(factory)


def test_shapes_and_dtypes():
    C.check_shapes_and_dtypes(factory)


def test_inference_identity():
    C.check_inference_identity(factory)


def test_seeds():
    C.check_seeds(factory)


def test_p():
    C.check_p(factory)
    C.check_p_frequency(factory)


def test_mask_invariants():
    C.check_mask_invariants(factory)


def test_image_as_mask():
    C.check_image_as_mask(
        lambda **kw: OneOf([HorizontalFlip(), Rotate(limit=(20, 30), interpolation=0, p=2 / 3)], **kw)
    )


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


@C.requires_tf
def test_tf_data():
    C.check_tf_data(factory)


def test_fit():
    C.check_fit(factory)
