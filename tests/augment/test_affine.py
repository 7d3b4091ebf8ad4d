import numpy as np
import pytest

import augment_checks as C
from lung_keras.augment import Affine


def test_dict_arguments_round_trip():
    layer = Affine(scale={"x": (0.9, 1.1)}, translate_px={"y": (-3, 3)}, keep_ratio=False, balanced_scale=True)
    restored = Affine.from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()
    # stored as Albumentations' `to_dict` holds it: both axes, the missing one at its default
    assert restored.scale == {"x": (0.9, 1.1), "y": (1.0, 1.0)}
    assert layer.get_config()["translate_px"] == {"x": [0, 0], "y": [-3, 3]}


def _inject(layer, x, **params):
    n = x.shape[0]
    full = {k: np.full((n,), v, "float32") for k, v in params.items()}
    defaults = dict(rotate=0.0, scale_x=1.0, scale_y=1.0, shear_x=0.0, shear_y=0.0, translate_x=0.0, translate_y=0.0)
    for k, v in defaults.items():
        full.setdefault(k, np.full((n,), v, "float32"))
    return layer.finalize_transformation(full, np.ones((n,), bool), {"height": x.shape[1], "width": x.shape[2], "batch": n})


def test_injected_translation_shifts_pixels():
    # translate (+3, -2) pixels: output[y, x] = input[y + 2, x - 3], zero fill elsewhere
    x = C.smooth_image(1, c=2)
    layer = Affine(p=1.0)
    out = C.to_np(layer.transform_images(x, _inject(layer, x, translate_x=3.0, translate_y=-2.0)))
    expected = np.zeros_like(x)
    expected[:, : C.H - 2, 3:] = x[:, 2:, : C.W - 3]
    np.testing.assert_array_equal(out, expected)


def test_injected_scale_two_reads_half_steps():
    # 5x5 image, centre c = 2, scale 2: output p reads input c + (p - c) / 2.
    # output (0, 0) -> input (1, 1) exactly; output (1, 1) -> (1.5, 1.5) = mean of 4 pixels.
    x = np.arange(25, dtype="float32").reshape(1, 5, 5, 1)
    layer = Affine(p=1.0)
    out = C.to_np(layer.transform_images(x, _inject(layer, x, scale_x=2.0, scale_y=2.0)))[0, :, :, 0]
    assert out[0, 0] == x[0, 1, 1, 0]  # 6
    assert out[1, 1] == pytest.approx((6 + 7 + 11 + 12) / 4)  # 9
    assert out[2, 2] == 12  # the centre is fixed


def test_injected_matrix_matches_albumentations_formula():
    # forward M = C T Sh R S C^-1 with shear negated (Albumentations convention)
    h, w = 10, 14
    cx, cy = w / 2 - 0.5, h / 2 - 0.5
    rot, sx, sy, shx, shy, tx, ty = 30.0, 1.2, 0.9, 10.0, -5.0, 2.0, -3.0
    r = np.deg2rad(rot)
    C_ = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]])
    Ci = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    S = np.diag([sx, sy, 1])
    R = np.array([[np.cos(r), np.sin(r), 0], [-np.sin(r), np.cos(r), 0], [0, 0, 1]])
    Sh = np.array([[1, np.tan(np.deg2rad(-shx)), 0], [np.tan(np.deg2rad(-shy)), 1, 0], [0, 0, 1]])
    T = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
    forward = C_ @ T @ Sh @ R @ S @ Ci
    x = np.zeros((1, h, w, 1), "float32")
    t = _inject(Affine(), x, rotate=rot, scale_x=sx, scale_y=sy, shear_x=shx, shear_y=shy, translate_x=tx, translate_y=ty)
    np.testing.assert_allclose(C.to_np(t["matrix"])[0], np.linalg.inv(forward), atol=1e-5)


def test_sampling_rules():
    n = 2000
    x = np.zeros((n, 20, 30, 1), "uint8")
    t = Affine(
        scale=(0.5, 2.0), translate_percent={"x": (-0.1, 0.1)}, balanced_scale=True, keep_ratio=True, p=1.0, seed=0
    ).get_random_transformation(x)
    sx, sy = C.to_np(t["scale_x"]), C.to_np(t["scale_y"])
    np.testing.assert_array_equal(sx, sy)  # keep_ratio
    assert abs(np.mean(sx < 1) - 0.5) < 0.05  # balanced: half below 1 despite [0.5, 2]
    tx, ty = C.to_np(t["translate_x"]), C.to_np(t["translate_y"])
    np.testing.assert_array_equal(tx, np.trunc(tx))  # whole pixels (int() truncation)
    assert tx.min() >= -3 and tx.max() <= 3 and np.all(ty == 0)
    t = Affine(translate_px=(-2, 2), p=1.0, seed=0).get_random_transformation(x)
    assert set(np.unique(C.to_np(t["translate_x"])).tolist()) == {-2, -1, 0, 1, 2}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"translate_percent": 0.1, "translate_px": 2}, "Received: translate_percent=0.1, translate_px=2"),
        ({"scale": {"z": 1.0}}, "Received: scale="),
        ({"fit_output": True}, "Received: fit_output=True"),
        ({"keep_ratio": True, "scale": {"x": (0.9, 1.1), "y": (1.0, 1.2)}}, "Received: scale="),
        ({"rotate": "x"}, "Received: rotate='x'"),
        ({"mask_interpolation": 4}, "Received: mask_interpolation=4"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Affine(**kwargs)


