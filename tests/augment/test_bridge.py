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
        [{"__class_fullname__": "GaussNoise", "std_range": (0.3, 0.1)},
         r"^GaussNoise: `std_range` must satisfy low <= high\. Received: std_range=\[0\.3, 0\.1\]$"],
        [{"__class_fullname__": "Rotate", "border_mode": 7},
         r"^Rotate: `border_mode` must be one of \[.*'reflect_101'.*\] or the OpenCV flags \[0, 1, 2, 3, 4\]\. Received: border_mode=7$"],
        [{"__class_fullname__": "Rotate", "interpolation": "fancy"},
         r"^Rotate: `interpolation` must be one of .*Received: interpolation='fancy'$"],
        [{"__class_fullname__": "Affine", "translate_px": 2, "translate_percent": 0.1},
         r"^Affine: Give either `translate_percent` or `translate_px`, not both\. Received: translate_percent=0\.1, translate_px=2$"],
        [{"__class_fullname__": "GaussNoise", "std_range": 0.1}, r"pair of numbers \(low, high\)\. Received: std_range=0\.1$"],
        [{"__class_fullname__": "Rotate", "limit": "a"},
         r"^Rotate: `limit` must be a number or a pair of numbers \(low, high\)\. Received: limit='a'$"],
        [{"__class_fullname__": "CLAHE"}, r"Unsupported Albumentations transform 'CLAHE'.*Received: transform='CLAHE'$"],
    ],
)
def test_invalid_argument_values(transform, match):
    with pytest.raises(ValueError, match=match):
        bridge.normalize_transform_dict(transform)


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ["Rotate", {"limit": "a"}],
        ["GaussNoise", {"std_range": [0.3, 0.1]}],  # lists: what a policy file holds
        ["Affine", {"translate_percent": 0.1, "translate_px": 2}],
        ["Rotate", {"crop_border": True}],  # valid Albumentations, not implemented: the layer's own check
        ["ElasticTransform", {"interpolation": 2}],
        ["CoarseDropout", {"fill": "inpaint_telea"}],
    ],
)
def test_one_error_dialect_for_layers_and_policy_files(name, kwargs):
    """A bad argument reads the same from the layer and from a policy dict (the transform's name in front)."""
    import lung_keras.augment as augment

    with pytest.raises(ValueError) as from_layer:
        getattr(augment, name)(**kwargs)
    with pytest.raises(ValueError) as from_policy:
        bridge.layer_from_dict({"__class_fullname__": name, **kwargs})
    assert str(from_policy.value) == f"{name}: {from_layer.value}"
    assert str(from_layer.value).endswith("Received: " + ", ".join(f"{k}={v!r}" for k, v in kwargs.items()))


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


# ------------------------------------------------------------------------------- with the lung_keras layers


def _big_albu_policy():
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.1),
            A.Rotate(limit=15, border_mode=2, fill_mask=0),
            A.Affine(scale=(0.9, 1.1), translate_percent=0.05, shear={"x": 3}, p=0.7),
            A.ElasticTransform(alpha=30, sigma=5, p=0.2),
            A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=(-0.2, 0.3)),
            A.RandomGamma(gamma_limit=(90, 110)),
            A.GaussNoise(std_range=(0.01, 0.05)),
            A.GaussianBlur(blur_limit=(3, 7), sigma_limit=(0.3, 1.2)),
            A.OneOf([A.HorizontalFlip(p=1.0), A.RandomGamma(p=0.5)], p=0.3),
        ],
        p=0.9,
    )


def _strip(config):
    """Layer config without names and seeds (which Albumentations does not carry)."""
    if isinstance(config, dict):
        return {k: _strip(v) for k, v in config.items() if k not in ("name", "seed")}
    if isinstance(config, list):
        return [_strip(v) for v in config]
    return config


def _configs(compose):
    import keras

    return _strip(keras.saving.serialize_keras_object(compose))


def test_from_albumentations_builds_equivalent_layers():
    compose = bridge.from_albumentations(_big_albu_policy(), seed=3)
    assert type(compose).__name__ == "Compose" and compose.p == 0.9
    names = [type(t).__name__ for t in compose.transforms]
    assert names == [
        "HorizontalFlip", "VerticalFlip", "Rotate", "Affine", "ElasticTransform", "RandomBrightnessContrast",
        "RandomGamma", "GaussNoise", "GaussianBlur", "OneOf",
    ]
    rotate = compose.transforms[2]
    assert tuple(rotate.limit) == (-15.0, 15.0) and rotate.border_mode == 2 and rotate.p == 0.5


def test_round_trip_albumentations_preserves_every_argument():
    a = _big_albu_policy()
    back = bridge.to_albumentations(bridge.from_albumentations(a))
    assert isinstance(back, A.Compose)
    assert bridge._jsonable(back.to_dict()) == bridge._jsonable(a.to_dict())


def test_round_trip_keras_preserves_every_argument():
    compose = bridge.from_albumentations(_big_albu_policy())
    again = bridge.from_albumentations(bridge.to_albumentations(compose))
    assert _configs(again) == _configs(compose)


def test_single_transform_is_wrapped_in_compose():
    compose = bridge.from_albumentations(A.Rotate(limit=10, p=1.0))
    assert type(compose).__name__ == "Compose" and compose.p == 1.0
    assert [type(t).__name__ for t in compose.transforms] == ["Rotate"]


def test_save_policy_json_equals_albumentations_save(tmp_path):
    a = _big_albu_policy()
    compose = bridge.from_albumentations(a)
    buffer = io.StringIO()
    A.save(a, buffer)  # A.save to a buffer writes indent=2 JSON, as save_policy does
    ours = bridge.save_policy(compose, tmp_path / "policy.json")
    assert ours.read_text() == buffer.getvalue()
    A.save(a, str(tmp_path / "a.json"))  # A.save to a path writes compact JSON: same content
    assert json.loads(ours.read_text()) == json.loads((tmp_path / "a.json").read_text())


def test_save_policy_yaml_equals_albumentations_save(tmp_path):
    a = _big_albu_policy()
    A.save(a, str(tmp_path / "a.yaml"), data_format="yaml")
    ours = bridge.save_policy(bridge.from_albumentations(a), tmp_path / "ours.yml")
    assert ours.read_text() == (tmp_path / "a.yaml").read_text()


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_load_policy_reads_albumentations_files(tmp_path, fmt):
    a = _big_albu_policy()
    path = tmp_path / f"a.{fmt}"
    A.save(a, str(path), data_format=fmt)
    loaded = bridge.load_policy(path)
    assert _configs(loaded) == _configs(bridge.from_albumentations(a))
    # and what we write, Albumentations reads back to the same pipeline
    ours = bridge.save_policy(loaded, tmp_path / f"ours.{fmt}")
    assert bridge._jsonable(A.load(str(ours), data_format=fmt).to_dict()) == bridge._jsonable(a.to_dict())


def test_load_policy_reads_keras_config_json(tmp_path):
    import keras

    compose = bridge.from_albumentations(_big_albu_policy(), seed=5)
    path = bridge.save_policy(compose, tmp_path / "keras.json", data_format="keras")
    assert "class_name" in json.loads(path.read_text())
    loaded = bridge.load_policy(path)
    assert keras.saving.serialize_keras_object(loaded)["config"]["seed"] == 5
    assert _configs(loaded) == _configs(compose)
    # same seed -> same draws
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 1)).astype("uint8")
    a = keras.ops.convert_to_numpy(loaded(images, training=True))
    b = keras.ops.convert_to_numpy(bridge.load_policy(path)(images, training=True))
    np.testing.assert_array_equal(a, b)


def test_load_policy_rejects_other_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="neither an Albumentations policy"):
        bridge.load_policy(path)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        bridge.load_policy(tmp_path / "missing.json")


@pytest.mark.parametrize(
    "transform,match",
    [
        [A.Compose([A.HorizontalFlip(), A.CLAHE()]), r"Unsupported Albumentations transform 'CLAHE'.*Supported transforms:.*GaussianBlur"],
        [A.Compose([A.Sequential([A.HorizontalFlip()])]), "Unsupported Albumentations transform 'Sequential'"],
        [A.Rotate(crop_border=True), "crop_border"],
        [A.Rotate(interpolation=2), "interpolation"],  # cv2.INTER_CUBIC
        [A.Affine(fit_output=True), "fit_output"],
        [A.ElasticTransform(noise_distribution="uniform", approximate=True, same_dxdy=True, keypoint_remapping_method="direct"), None],
    ],
)
def test_unsupported_transforms_and_arguments(transform, match):
    if match is None:  # every one of these is implemented: no error
        bridge.from_albumentations(transform)
        return
    with pytest.raises(ValueError, match=match):
        bridge.from_albumentations(transform)


def test_bbox_params_are_rejected():
    a = A.Compose([A.HorizontalFlip()], bbox_params=A.BboxParams(format="pascal_voc"))
    with pytest.raises(ValueError, match="bbox_params"):
        bridge.from_albumentations(a)


def test_load_policy_without_albumentations(tmp_path):
    """A.save files load into layers where albumentations/cv2 are absent (a runtime install)."""
    A.save(_big_albu_policy(), str(tmp_path / "p.json"))
    code = (
        "import sys; sys.modules['albumentations'] = None; sys.modules['cv2'] = None\n"
        "from lung_keras.augment import bridge\n"
        f"c = bridge.load_policy({str(tmp_path / 'p.json')!r})\n"
        "print(len(c.transforms), bridge.policy_to_dict(c)['transform']['transforms'][2]['limit'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "KERAS_BACKEND": "jax"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "10 [-15.0, 15.0]"
