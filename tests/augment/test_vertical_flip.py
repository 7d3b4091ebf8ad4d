import numpy as np
import pytest

import augment_checks as C
from lung_keras.augment import VerticalFlip
from lung_keras.augment import functional as F


def test_injected_transformation_is_np_flipud():
    x = C.smooth_image(2, c=2)
    layer = VerticalFlip()
    apply = np.array([True, False])
    t = {"apply": apply, "matrix": F.select_matrix(apply, F.vertical_flip_matrix(2, C.H))}
    out = C.to_np(layer.transform_images(x, t))
    np.testing.assert_array_equal(out[0], x[0, ::-1])
    np.testing.assert_array_equal(out[1], x[1])
    # the exposed matrix (used by Compose fusion) encodes the same flip
    warped = C.to_np(F.warp(x, [("affine", t["matrix"])]))
    np.testing.assert_array_equal(warped, out)


def test_transformation_keys():
    t = VerticalFlip(p=1.0).get_random_transformation(np.zeros((3, 5, 6, 1), "uint8"))
    assert set(t) == {"apply", "matrix"}
    np.testing.assert_allclose(C.to_np(t["matrix"])[0], [[1, 0, 0], [0, -1, 4], [0, 0, 1]])


def test_invalid_p():
    with pytest.raises(ValueError, match="Received: p=-0.1"):
        VerticalFlip(p=-0.1)


