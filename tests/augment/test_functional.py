import numpy as np
import pytest

import augment_checks as C
from lung_keras.augment import functional as F


def _border(i, n, mode):
    """cv2.borderInterpolate written out; None = outside (constant)."""
    if 0 <= i < n:
        return i
    if mode == 0:
        return None
    if mode == 1:
        return min(max(i, 0), n - 1)
    if mode == 3:
        return i % n
    if mode == 2:
        m = i % (2 * n)
        return m if m < n else 2 * n - 1 - m
    m = i % (2 * n - 2)
    return m if m < n else 2 * n - 2 - m


def _reference_bilinear(img, x, y, mode, fill):
    h, w = img.shape
    out = np.zeros(x.shape)
    for k, (xx, yy) in enumerate(zip(x.ravel(), y.ravel())):
        x0, y0 = int(np.floor(xx)), int(np.floor(yy))
        fx, fy = xx - x0, yy - y0
        acc = 0.0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                bx, by = _border(x0 + dx, w, mode), _border(y0 + dy, h, mode)
                v = fill if bx is None or by is None else img[by, bx]
                acc += wy * wx * v
        out.flat[k] = acc
    return out


@pytest.mark.parametrize("mode", [0, 1, 2, 3, 4])
def test_bilinear_sampling_matches_opencv_border_rules(mode):
    # coordinates well outside the image on every side, several periods away
    rng = np.random.default_rng(mode)
    img = rng.uniform(0, 1, (5, 7)).astype("float32")
    x = rng.uniform(-20, 27, (1, 9, 11)).astype("float32")
    y = rng.uniform(-15, 20, (1, 9, 11)).astype("float32")
    ours = C.to_np(F.sample(img[None, ..., None], x, y, 1, mode, fill=0.25))[0, ..., 0]
    ref = _reference_bilinear(img, x[0], y[0], mode, 0.25)
    np.testing.assert_allclose(ours, ref, atol=2e-5)


@pytest.mark.parametrize("mode", [0, 1, 2, 3, 4])
def test_nearest_sampling_reads_input_values(mode):
    img = np.arange(35, dtype="int32").reshape(1, 5, 7, 1)
    x = np.array([[[-3.2, 0.4, 6.6, 9.0]]], "float32")
    y = np.array([[[2.0, -1.0, 4.4, 6.0]]], "float32")
    ours = C.to_np(F.sample(img, x, y, 0, mode, fill=-1))[0, 0, :, 0]
    expected = []
    for xx, yy in zip(x.ravel(), y.ravel()):
        bx, by = _border(int(np.round(xx)), 7, mode), _border(int(np.round(yy)), 5, mode)
        expected.append(-1 if bx is None or by is None else img[0, by, bx, 0])
    np.testing.assert_array_equal(ours, expected)


def test_uint8_and_float_paths_agree():
    img = C.smooth_image(2)
    matrix = F.rotation_matrix(np.array([13.0, -41.0], "float32"), C.H, C.W)
    as_uint8 = C.to_np(F.warp(img, [("affine", matrix)]))
    as_float = C.to_np(F.warp(img.astype("float32"), [("affine", matrix)]))
    np.testing.assert_array_equal(as_uint8, np.clip(np.round(as_float), 0, 255).astype("uint8"))


def test_warp_coordinates_composes_output_to_input_maps():
    # flip then shift: output x reads (W-1) - (x - 2) ... composed in application order
    h, w = 4, 6
    flip = F.horizontal_flip_matrix(1, w)
    shift = np.array([[[1, 0, -2], [0, 1, 0], [0, 0, 1]]], "float32")  # output x reads x - 2
    x, y = F.warp_coordinates([("affine", flip), ("affine", shift)], h, w)
    np.testing.assert_allclose(C.to_np(x)[0, 0], (w - 1) - (np.arange(w) - 2))
    field = np.zeros((1, h, w, 2), "float32")
    field[..., 1] = 0.5
    x, y = F.warp_coordinates([("field", field), ("affine", shift)], h, w)
    np.testing.assert_allclose(C.to_np(y)[0, :, 0], np.arange(h) + 0.5)
