import numpy as np
import pytest

import augment_checks as C
from lung_keras.augment import Rotate
from lung_keras.augment import functional as F


@pytest.mark.parametrize("interpolation", [0, 1])
def test_injected_90_degrees_is_rot90(interpolation):
    # About the centre ((W-1)/2, (H-1)/2) a quarter turn maps pixel centres onto
    # pixel centres, so both interpolations must reproduce np.rot90 exactly
    # (positive angle = counter-clockwise on screen, like np.rot90 k=1).
    x = C.smooth_image(2, h=9, w=9, c=2)
    layer = Rotate(limit=(90, 90), interpolation=interpolation, p=1.0)
    angle = np.array([90.0, -90.0], "float32")
    t = {"apply": np.array([True, True]), "angle": angle, "matrix": F.rotation_matrix(angle, 9, 9)}
    out = C.to_np(layer.transform_images(x, t))
    np.testing.assert_array_equal(out[0], np.rot90(x[0], k=1, axes=(0, 1)))
    np.testing.assert_array_equal(out[1], np.rot90(x[1], k=-1, axes=(0, 1)))


def test_injected_apply_false_is_identity():
    x = C.smooth_image(2)
    layer = Rotate(p=1.0)
    t = layer.get_random_transformation(x)
    t["apply"] = np.array([False, True])
    t["matrix"] = F.select_matrix(np.array([False, True]), t["matrix"])
    out = C.to_np(layer.transform_images(x, t))
    np.testing.assert_array_equal(out[0], x[0])
    assert not np.array_equal(out[1], x[1])


def test_transformation_keys_and_angle_range():
    t = Rotate(limit=(10, 20), p=1.0, seed=0).get_random_transformation(np.zeros((500, 8, 8, 1), "uint8"))
    assert set(t) == {"apply", "angle", "matrix"}
    angle = C.to_np(t["angle"])
    assert angle.min() >= 10 and angle.max() <= 20
    assert 14 < angle.mean() < 16
    assert C.to_np(t["matrix"]).shape == (500, 3, 3)


def test_constant_border_fills_corners():
    x = np.full((1, 16, 16, 1), 200, "uint8")
    m = np.ones((1, 16, 16, 1), "uint8")
    out = Rotate(limit=(45, 45), fill=17, fill_mask=5, p=1.0)({"images": x, "segmentation_masks": m}, training=True)
    assert C.to_np(out["images"])[0, 0, 0, 0] == 17
    assert C.to_np(out["segmentation_masks"])[0, 0, 0, 0] == 5
    assert C.to_np(out["images"])[0, 8, 8, 0] == 200


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"limit": "a"}, "Received: limit='a'"),
        ({"interpolation": 2}, "Received: interpolation=2"),
        ({"border_mode": 5}, "Received: border_mode=5"),
        ({"crop_border": True}, "Received: crop_border=True"),
        ({"p": 1.5}, "Received: p=1.5"),
        ({"fill": "x"}, "Received: fill='x'"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Rotate(**kwargs)


