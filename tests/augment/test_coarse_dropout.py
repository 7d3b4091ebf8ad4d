import numpy as np
import pytest

import augment_checks as C
from lung_keras.augment import CoarseDropout


def _holes(*boxes):
    """(1, K, 4) int32 [x_min, y_min, x_max, y_max]."""
    return np.array([boxes], "int32")


# [holes, active, fill (per hole), expected 4x6 image from zeros] -- worked by hand
TEST_CASES = [
    # one 2x3 hole at x 1..3, y 0..1 filled with 9
    [_holes((1, 0, 4, 2)), [True], [9.0], [[0, 9, 9, 9, 0, 0], [0, 9, 9, 9, 0, 0], [0] * 6, [0] * 6]],
    # two overlapping holes: the later one (fill 5) covers the earlier (fill 9) where they overlap
    [_holes((0, 0, 3, 3), (2, 2, 5, 4)), [True, True], [9.0, 5.0],
     [[9, 9, 9, 0, 0, 0], [9, 9, 9, 0, 0, 0], [9, 9, 5, 5, 5, 0], [0, 0, 5, 5, 5, 0]]],
    # an inactive hole (beyond the sampled count) leaves the image alone
    [_holes((0, 0, 3, 3), (2, 2, 5, 4)), [True, False], [9.0, 5.0],
     [[9, 9, 9, 0, 0, 0], [9, 9, 9, 0, 0, 0], [9, 9, 9, 0, 0, 0], [0] * 6]],
]


@pytest.mark.parametrize("holes, active, fill, expected", TEST_CASES)
def test_injected_transformation(holes, active, fill, expected):
    layer = CoarseDropout(num_holes_range=(1, 2), p=1.0)
    t = {"apply": np.array([True]), "holes": holes, "active": np.array([active]),
         "fill": np.array(fill, "float32").reshape(1, -1, 1)}
    out = C.to_np(layer.transform_images(np.zeros((1, 4, 6, 1), "uint8"), t))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, ..., 0], np.array(expected))


def test_sampled_holes_follow_the_ranges():
    n, h, w = 2000, 50, 80
    layer = CoarseDropout(num_holes_range=(2, 4), hole_height_range=(0.1, 0.3), hole_width_range=(5, 12), p=1.0,
                          seed=0)
    t = layer.get_random_transformation(np.zeros((n, h, w, 1), "uint8"))
    holes, active = C.to_np(t["holes"]), C.to_np(t["active"])
    counts = active.sum(1)
    assert set(np.unique(counts)) == {2, 3, 4} and abs(counts.mean() - 3) < 0.1
    heights, widths = holes[..., 3] - holes[..., 1], holes[..., 2] - holes[..., 0]
    assert heights.min() == int(h * 0.1) and heights.max() <= int(h * 0.3)  # int(50 * u), u in [0.1, 0.3)
    assert widths.min() == 5 and widths.max() == 12  # integers: inclusive range
    assert (holes[..., 0] >= 0).all() and (holes[..., 2] <= w).all()
    assert (holes[..., 1] >= 0).all() and (holes[..., 3] <= h).all()


@pytest.mark.parametrize("dtype, top", [("uint8", 255), ("float32", 1.0)])
def test_random_uniform_fill_spans_the_dtype_range(dtype, top):
    layer = CoarseDropout(fill="random_uniform", p=1.0, seed=1)
    fill = C.to_np(layer.get_random_transformation(np.zeros((2000, 8, 8, 1), dtype))["fill"])
    assert fill.min() >= 0 and fill.max() <= top and fill.max() > 0.98 * top
    if dtype == "uint8":
        assert np.array_equal(fill, np.floor(fill))


def test_random_fill_is_per_pixel():
    x = np.zeros((1, 32, 32, 1), "float32")
    out = C.to_np(CoarseDropout(num_holes_range=(1, 1), hole_height_range=(16, 16), hole_width_range=(16, 16),
                                fill="random", p=1.0, seed=2)(x, training=True))
    assert len(np.unique(out[out > 0])) > 200


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_holes_range": (0, 2)}, "num_holes_range"),
        ({"num_holes_range": (1.5, 2)}, "integers"),
        ({"hole_height_range": (0.3, 0.1)}, "hole_height_range"),
        ({"fill": "inpaint_telea"}, "inpainting is not supported"),
        ({"fill": None}, "Received: fill=None"),
        ({"fill_mask": 0}, "fill_mask"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CoarseDropout(**kwargs)


