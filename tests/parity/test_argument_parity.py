"""Range arguments given high-first: sorted where Albumentations 2.0.8 sorts them, an error where it raises.

Each case builds the Albumentations transform and ours with the same reversed range. Where Albumentations
accepts it, our layer must sample exactly what it samples with the sorted range (same seed); where
Albumentations rejects it, ours must raise a ValueError naming the argument.
"""

import numpy as np
import pytest

import lung_keras.augment as L
from tests.parity.conftest import A

REVERSED = [
    ("Rotate", "limit", (30, 10), (10, 30)),
    ("RandomBrightnessContrast", "brightness_limit", (0.2, -0.1), (-0.1, 0.2)),
    ("RandomBrightnessContrast", "contrast_limit", (0.3, 0.1), (0.1, 0.3)),
    ("GaussNoise", "std_range", (0.4, 0.2), None),
    ("GaussNoise", "mean_range", (0.1, -0.1), None),
    ("Affine", "scale", (1.2, 0.8), (0.8, 1.2)),
    ("Affine", "scale", {"x": (1.2, 0.8)}, {"x": (0.8, 1.2)}),
    ("Affine", "translate_percent", (0.1, -0.1), (-0.1, 0.1)),
    ("Affine", "translate_px", (4, -4), (-4, 4)),
    ("Affine", "rotate", (20, -10), (-10, 20)),
    ("Affine", "shear", {"x": (20, -20), "y": (5, -5)}, {"x": (-20, 20), "y": (-5, 5)}),
    ("RandomGamma", "gamma_limit", (120, 80), (80, 120)),
    ("GaussianBlur", "blur_limit", (7, 3), (3, 7)),
    ("GaussianBlur", "sigma_limit", (2.0, 0.5), (0.5, 2.0)),
]


def _albumentations_accepts(name, arg, value):
    try:
        getattr(A, name)(**{arg: value})
    except Exception:  # pydantic's ValidationError is a ValueError subclass; any rejection counts
        return False
    return True


@pytest.mark.parametrize("name, arg, reversed_value, sorted_value", REVERSED, ids=lambda v: str(v))
def test_reversed_ranges_follow_albumentations(name, arg, reversed_value, sorted_value):
    accepted = _albumentations_accepts(name, arg, reversed_value)
    assert accepted == (sorted_value is not None)  # the table states what Albumentations 2.0.8 does
    layer_cls = getattr(L, name)
    if not accepted:
        with pytest.raises(ValueError, match=f"Received: {arg}="):
            layer_cls(**{arg: reversed_value})
        return
    images = np.zeros((64, 16, 16, 1), "uint8")
    got = layer_cls(**{arg: reversed_value}, p=1.0).get_random_transformation(images, seed=3)
    want = layer_cls(**{arg: sorted_value}, p=1.0).get_random_transformation(images, seed=3)
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(want[key]), err_msg=key)
    # the draws do vary (the range was not collapsed)
    varying = [k for k in want if k != "apply" and np.asarray(want[k]).size > 1 and np.ptp(np.asarray(want[k], "float64")) > 0]
    assert varying
