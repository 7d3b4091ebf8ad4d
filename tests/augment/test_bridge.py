"""Albumentations bridge: policy format (A.save/A.load), converters, round trips, unsupported input."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest

from lung_keras.augment import bridge

A = pytest.importorskip("albumentations")

# [transform name, Albumentations kwargs]: each row is checked against `A.<name>(**kwargs).to_dict()`.
FORMAT_CASES = [
    ["HorizontalFlip", {"p": 1.0}],
    ["VerticalFlip", {}],
    ["Rotate", {}],
    # scalar limit is symmetric: 30 -> [-30.0, 30.0]; border_mode 2 = cv2.BORDER_REFLECT; per-channel fill
    ["Rotate", {"limit": 30, "border_mode": 2, "fill": (1, 2, 3)}],
    ["Rotate", {"limit": (10, 30), "interpolation": 0, "fill_mask": 3, "p": 0.7}],
    ["Rotate", {"limit": (30, 10)}],  # Albumentations sorts a range given high-first: [10.0, 30.0]
    ["RandomBrightnessContrast", {"brightness_limit": (0.3, 0.1)}],
    ["Affine", {}],
    # Affine scalars repeat: scale=0.9 -> x and y [0.9, 0.9] (not 1 +- 0.9); default translate is translate_px 0
    ["Affine", {"scale": 0.9, "translate_percent": 0.1, "rotate": 10, "shear": 5}],
    ["Affine", {"scale": (0.9, 1.2), "translate_percent": (-0.1, 0.2), "rotate": (-10, 5), "shear": (-5, 6)}],
    ["Affine", {"scale": {"x": (0.9, 1.1), "y": 1.0}, "translate_percent": {"x": 0.1, "y": (-0.2, 0.1)}}],
    ["Affine", {"scale": {"x": 0.9}, "shear": {"x": 4, "y": 0}}],  # missing axis takes the default (1.0 / 0.0)
    ["Affine", {"translate_px": 5}],
    ["Affine", {"translate_px": (-5, 3), "border_mode": 1}],
    ["ElasticTransform", {}],
    ["ElasticTransform", {"alpha": 30, "sigma": 6, "border_mode": 1, "interpolation": 2}],
    ["RandomBrightnessContrast", {}],
    ["RandomBrightnessContrast", {"brightness_limit": 0.1, "contrast_limit": (0.1, 0.3), "brightness_by_max": False}],
    ["RandomGamma", {}],
    ["RandomGamma", {"gamma_limit": 110}],  # scalar -> (1, 110): Albumentations' OnePlus range
    ["RandomGamma", {"gamma_limit": (90, 110)}],
    ["GaussNoise", {}],
    ["GaussNoise", {"std_range": (0.1, 0.2), "mean_range": (0.0, 0.1), "per_channel": False}],
    ["GaussianBlur", {}],
    ["GaussianBlur", {"blur_limit": 5, "sigma_limit": 1.0}],  # -> blur_limit [0, 5], sigma_limit [0.0, 1.0]
    ["GaussianBlur", {"blur_limit": (3, 7), "sigma_limit": (0.2, 1.0)}],
]


def _a_dict(name, kwargs):
    return bridge._jsonable(getattr(A, name)(**kwargs).to_dict()["transform"])


@pytest.mark.parametrize("name,kwargs", FORMAT_CASES)
def test_normalize_matches_albumentations_to_dict(name, kwargs):
    ours = bridge.normalize_transform_dict({"__class_fullname__": name, **kwargs})
    ref = _a_dict(name, kwargs)
    assert ours == ref
    assert list(ours) == list(ref)  # same key order, so the JSON text matches too


def test_normalize_is_idempotent_and_accepts_full_class_path():
    d = bridge.normalize_transform_dict(
        {"__class_fullname__": "albumentations.augmentations.geometric.rotate.Rotate", "limit": 15}
    )
    assert d["__class_fullname__"] == "Rotate" and d["limit"] == [-15.0, 15.0]
    assert bridge.normalize_transform_dict(d) == d


def test_normalize_compose_matches_albumentations():
    a = A.Compose([A.HorizontalFlip(), A.OneOf([A.RandomGamma(), A.GaussianBlur()], p=0.3)], p=0.9)
    raw = {
        "__class_fullname__": "Compose",
        "p": 0.9,
        "transforms": [
            {"__class_fullname__": "HorizontalFlip"},
            {
                "__class_fullname__": "OneOf",
                "p": 0.3,
                "transforms": [{"__class_fullname__": "RandomGamma"}, {"__class_fullname__": "GaussianBlur"}],
            },
        ],
    }
    assert bridge.normalize_transform_dict(raw) == bridge._jsonable(a.to_dict()["transform"])


def test_unsupported_transform_lists_supported():
    with pytest.raises(ValueError, match="Unsupported Albumentations transform 'CLAHE'.*Supported transforms: .*Rotate"):
        bridge.normalize_transform_dict({"__class_fullname__": "CLAHE"})


def test_unknown_argument_lists_arguments():
    with pytest.raises(ValueError, match=r"Rotate: unknown argument 'angle'.*'limit'"):
        bridge.normalize_transform_dict({"__class_fullname__": "Rotate", "angle": 3})


@pytest.mark.parametrize(
    "transform,match",
    [
        [{"__class_fullname__": "GaussNoise", "std_range": (0.3, 0.1)}, "first value must not exceed"],
        [{"__class_fullname__": "Rotate", "border_mode": 7}, "unknown border_mode 7"],
        [{"__class_fullname__": "Rotate", "interpolation": "fancy"}, "unknown interpolation 'fancy'"],
        [{"__class_fullname__": "Affine", "translate_px": 2, "translate_percent": 0.1}, "not both"],
        [{"__class_fullname__": "GaussNoise", "std_range": 0.1}, "pair of numbers"],
    ],
)
def test_invalid_argument_values(transform, match):
    with pytest.raises(ValueError, match=match):
        bridge.normalize_transform_dict(transform)


def test_policy_format_needs_no_albumentations(tmp_path):
    """Reading/normalizing A.save files must work where albumentations (and cv2) cannot be imported."""
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"__version__": "2.0.8", "transform": {"__class_fullname__": "Rotate", "limit": 10}}))
    code = (
        "import sys; sys.modules['albumentations'] = None; sys.modules['cv2'] = None\n"
        "import json\n"
        "from lung_keras.augment import bridge\n"
        f"d = json.load(open({str(path)!r}))\n"
        "print(bridge.normalize_transform_dict(d['transform'])['limit'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[-10.0, 10.0]"


def test_jsonable_converts_numpy_and_tuples():
    assert bridge._jsonable({"a": (np.float32(1.5), np.int64(2))}) == {"a": [1.5, 2]}
