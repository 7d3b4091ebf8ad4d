"""Convert augmentation policies between Albumentations 2.0.8 and `lung_keras.augment`.

Three views of one policy are kept interchangeable:

- an Albumentations object (`A.Compose([...])`): `from_albumentations` / `to_albumentations`;
- the serialized form that `A.save` / `A.load` read and write
  (`{"__version__": ..., "transform": {"__class_fullname__": "Compose", ...}}`, JSON or YAML):
  `load_policy` / `save_policy`, `policy_to_dict` / `policy_from_dict`;
- a `lung_keras.augment.Compose` layer, whose Keras config JSON `load_policy` also reads.

The serialized format is implemented here directly: reading and writing policy files needs neither
Albumentations nor OpenCV. Albumentations is imported lazily, only by `from_albumentations` /
`to_albumentations`.

Arguments are written exactly as Albumentations 2.0.8 normalizes them in `to_dict()` (ranges as
two-element lists, `Affine` axis dicts, OpenCV integer flags for `interpolation` and `border_mode`), so
a policy written here equals `A.save`'s output for the same transform, and loading either gives the same
layer. Albumentations arguments that `lung_keras` layers do not implement are accepted only at their
Albumentations default; any other value raises a `ValueError` that lists what is supported.
"""

import importlib
import inspect
import json
import pathlib
import re

ALBUMENTATIONS_VERSION = "2.0.8"

# OpenCV flag values, as Albumentations serializes them.
INTERPOLATIONS = {"nearest": 0, "linear": 1, "cubic": 2, "area": 3, "lanczos4": 4}
BORDER_MODES = {"constant": 0, "replicate": 1, "reflect": 2, "wrap": 3, "reflect_101": 4}
_INTERPOLATION_ALIASES = {"bilinear": 1, "bicubic": 2, "lanczos": 4}
_BORDER_ALIASES = {"reflect101": 4, "reflect_101": 4, "edge": 1, "nearest": 1, "symmetric": 2, "mirror": 4}


# --------------------------------------------------------------------------------------------------
# Normalizers: one per kind of Albumentations argument; each returns the value `to_dict()` would hold.
# Their messages say what was expected; `_normalize_args` names the transform and ends with
# "Received: name=value" (the dialect of every error here and of the layers).


def _num(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError("expected a number")
    return v


def _pair(v, name="value"):
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise ValueError(f"{name} must be a number or a pair of numbers")
        return _num(v[0]), _num(v[1])
    raise ValueError(f"{name} must be a number or a pair of numbers")


def _sorted_pair(v):
    """Albumentations' `to_tuple` on a sequence: `(min, max)` of the two values."""
    lo, hi = _pair(v)
    return (lo, hi) if lo <= hi else (hi, lo)


def _nondecreasing(lo, hi, v):
    if lo > hi:
        raise ValueError("the first value must not exceed the second")


def _symmetric(v):
    """`limit=15` -> `(-15.0, 15.0)`; a pair is kept (Albumentations' `SymmetricRangeType`)."""
    if isinstance(v, (list, tuple)):
        lo, hi = _sorted_pair(v)
    else:
        lo, hi = -_num(v), _num(v)
    return [float(lo), float(hi)]


def _low_bounded(low, cast):
    """Albumentations' `to_tuple(v, low=low)`: a scalar becomes `(min(low, v), max(low, v))`."""

    def norm(v):
        if isinstance(v, (list, tuple)):
            lo, hi = _sorted_pair(v)
        else:
            x = _num(v)
            lo, hi = (low, x) if low < x else (x, low)
        return [cast(lo), cast(hi)]

    return norm


def _float_pair(v):
    lo, hi = _pair(v)
    _nondecreasing(lo, hi, v)
    return [float(lo), float(hi)]


def _repeat_pair(v):
    """Albumentations' `to_tuple(v, v)`: a scalar becomes `(v, v)` (Affine `rotate`)."""
    if isinstance(v, (list, tuple)):
        lo, hi = _sorted_pair(v)
    else:
        lo = hi = _num(v)
    return [float(lo), float(hi)]


def _axis_dict(default):
    """Affine `scale` / `shear` / `translate_*`: scalar, pair or `{"x": .., "y": ..}` -> axis dict."""

    def norm(v):
        if isinstance(v, dict):
            unknown = set(v) - {"x", "y"}
            if unknown or not v:
                raise ValueError('expected a dict with keys "x" and/or "y"')
            return {"x": _repeat_pair(v.get("x", default)), "y": _repeat_pair(v.get("y", default))}
        pair = _repeat_pair(v)
        return {"x": list(pair), "y": list(pair)}

    return norm


def _flag(table, aliases, kind):
    def norm(v):
        if isinstance(v, str):
            key = v.lower()
            if key in table:
                return table[key]
            if key in aliases:
                return aliases[key]
        elif isinstance(v, int) and not isinstance(v, bool) and v in table.values():
            return int(v)
        raise ValueError(f"unknown {kind}; expected one of {sorted(table)} or the OpenCV flags {sorted(table.values())}")

    return norm


_interpolation = _flag(INTERPOLATIONS, _INTERPOLATION_ALIASES, "interpolation")
_border_mode = _flag(BORDER_MODES, _BORDER_ALIASES, "border_mode")


def _fill(v):
    if isinstance(v, (list, tuple)):
        return [float(_num(x)) for x in v]
    return float(_num(v))


def _bool(v):
    if not isinstance(v, bool):
        raise ValueError("expected a bool")
    return v


def _choice(*options):
    def norm(v):
        if v not in options:
            raise ValueError(f"expected one of {list(options)}")
        return v

    return norm


def _range(v):
    """A `(min, max)` pair kept as given (ints stay pixels, floats stay fractions: CoarseDropout)."""
    lo, hi = _pair(v)
    _nondecreasing(lo, hi, v)
    return [lo, hi]


def _dropout_fill(v):
    if isinstance(v, str):
        return _choice("random", "random_uniform", "inpaint_telea", "inpaint_ns")(v)
    return _fill(v)


def _positive_float(v):
    return float(_num(v))


def _probability(name, p):
    """`p` of transform `name` as a float in [0, 1], or a ValueError naming the transform."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"{name}: invalid p: expected a number in [0, 1]. Received: p={p!r}")
    return float(p)


_GEOMETRY_COMMON = {
    "interpolation": (1, _interpolation),
    "mask_interpolation": (0, _interpolation),
    "border_mode": (0, _border_mode),
    "fill": (0.0, _fill),
    "fill_mask": (0.0, _fill),
}

# name -> {argument: (Albumentations default, normalizer)}; `p` is handled for all.
TRANSFORM_SPECS = {
    "HorizontalFlip": {},
    "VerticalFlip": {},
    "Rotate": {
        "limit": ((-90.0, 90.0), _symmetric),
        "rotate_method": ("largest_box", _choice("largest_box", "ellipse")),
        "crop_border": (False, _bool),
        **_GEOMETRY_COMMON,
    },
    "Affine": {
        "scale": ({"x": (1.0, 1.0), "y": (1.0, 1.0)}, _axis_dict(1.0)),
        "translate_percent": (None, _axis_dict(0.0)),
        "translate_px": (None, _axis_dict(0)),
        "rotate": ((0.0, 0.0), _repeat_pair),
        "shear": ({"x": (0.0, 0.0), "y": (0.0, 0.0)}, _axis_dict(0.0)),
        "fit_output": (False, _bool),
        "keep_ratio": (False, _bool),
        "rotate_method": ("largest_box", _choice("largest_box", "ellipse")),
        "balanced_scale": (False, _bool),
        **_GEOMETRY_COMMON,
    },
    "ElasticTransform": {
        "alpha": (1.0, _positive_float),
        "sigma": (50.0, _positive_float),
        "approximate": (False, _bool),
        "same_dxdy": (False, _bool),
        "noise_distribution": ("gaussian", _choice("gaussian", "uniform")),
        "keypoint_remapping_method": ("mask", _choice("direct", "mask")),
        **_GEOMETRY_COMMON,
    },
    "RandomBrightnessContrast": {
        "brightness_limit": ((-0.2, 0.2), _symmetric),
        "contrast_limit": ((-0.2, 0.2), _symmetric),
        "brightness_by_max": (True, _bool),
        "ensure_safe_range": (False, _bool),
    },
    "RandomGamma": {"gamma_limit": ((80.0, 120.0), _low_bounded(1, float))},
    "GaussNoise": {
        "std_range": ((0.2, 0.44), _float_pair),
        "mean_range": ((0.0, 0.0), _float_pair),
        "per_channel": (True, _bool),
        "noise_scale_factor": (1.0, _positive_float),
    },
    "GaussianBlur": {
        "blur_limit": ((0, 0), _low_bounded(0, int)),
        "sigma_limit": ((0.5, 3.0), _low_bounded(0, float)),
    },
    "CoarseDropout": {
        "num_holes_range": ((1, 2), _range),
        "hole_height_range": ((0.1, 0.2), _range),
        "hole_width_range": ((0.1, 0.2), _range),
        "fill": (0, _dropout_fill),
        "fill_mask": (None, _fill),
    },
}
CONTAINERS = ("Compose", "OneOf")
SUPPORTED_TRANSFORMS = CONTAINERS + tuple(TRANSFORM_SPECS)

# Albumentations' `Compose.to_dict()` keys beyond `p` and `transforms`, with the only values supported.
_COMPOSE_EXTRAS = {"bbox_params": None, "keypoint_params": None, "additional_targets": {}, "is_check_shapes": True}
# Keras layer config keys that are not Albumentations arguments.
_KERAS_ONLY_KEYS = {"name", "trainable", "dtype", "seed", "data_format", "transforms", "autocast", "fuse"}


def _supported_message():
    return "Supported transforms: " + ", ".join(SUPPORTED_TRANSFORMS) + "."


def _unsupported_transform(name):
    return ValueError(f"Unsupported Albumentations transform {name!r}. {_supported_message()} Received: transform={name!r}")


def _received(args):
    """`Received: a=1, b='x'` for a dict of arguments."""
    return "Received: " + ", ".join(f"{k}={v!r}" for k, v in args.items())


def _short_name(class_fullname):
    # Albumentations writes short names for its own classes and may read `albumentations.x.y.Name`.
    if class_fullname.startswith("albumentations."):
        return class_fullname.rsplit(".", 1)[-1]
    return class_fullname


def _jsonable(value):
    """Tuples -> lists, enums -> values (what `A.save`'s `serialize_enum` does)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "value") and type(value).__module__ != "builtins" and not hasattr(value, "shape"):
        return value.value
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalar
        return value.item()
    return value


def _normalize_args(name, args):
    """Normalize an Albumentations argument dict of transform `name`; raises on unknown arguments."""
    spec = TRANSFORM_SPECS[name]
    out = {}
    for key, value in args.items():
        if key == "p":
            continue
        if key not in spec:
            raise ValueError(
                f"{name}: unknown argument {key!r}. Albumentations {ALBUMENTATIONS_VERSION} arguments of {name}: "
                f"{['p', *sorted(spec)]}. Received: {key}={value!r}"
            )
        if value is None and spec[key][0] is None:
            out[key] = None
            continue
        try:
            out[key] = spec[key][1](value)
        except ValueError as e:
            raise ValueError(f"{name}: invalid {key}: {e}. Received: {key}={value!r}") from None
    if name == "Affine":
        for key in ("translate_percent", "translate_px"):
            out.setdefault(key, None)
        if out["translate_percent"] is not None and out["translate_px"] is not None:
            raise ValueError(
                "Affine: give translate_percent or translate_px, not both. "
                f"Received: translate_percent={out['translate_percent']!r}, translate_px={out['translate_px']!r}"
            )
        if out["translate_percent"] is None and out["translate_px"] is None:
            out["translate_px"] = {"x": [0, 0], "y": [0, 0]}
    return out


def _full_args(name, args):
    """Normalized arguments with every missing one at its Albumentations default, in `to_dict` key order."""
    given = _normalize_args(name, args)
    spec = TRANSFORM_SPECS[name]
    full = {}
    for key in sorted(spec):
        if key in given:
            full[key] = given[key]
        else:
            default = spec[key][0]
            full[key] = None if default is None else _jsonable(spec[key][1](_jsonable(default)))
    return full


def normalize_transform_dict(transform):
    """Canonical form of one Albumentations transform dict, as `A.from_dict(...).to_dict()` would give it.

    Fills every missing argument with its Albumentations 2.0.8 default and normalizes the given ones
    (`limit=15` -> `[-15.0, 15.0]`, Affine `scale=0.9` -> `{"x": [0.9, 0.9], "y": [0.9, 0.9]}`, ...).
    Containers are normalized recursively. Needs no Albumentations install.

    Raises:
        ValueError: for a transform outside `SUPPORTED_TRANSFORMS` or an unknown/invalid argument.
    """
    if not isinstance(transform, dict) or "__class_fullname__" not in transform:
        raise ValueError(f"Expected a transform dict with '__class_fullname__'. Received: transform={transform!r}")
    name = _short_name(transform["__class_fullname__"])
    if name not in SUPPORTED_TRANSFORMS:
        raise _unsupported_transform(name)
    args = _jsonable({k: v for k, v in transform.items() if k != "__class_fullname__"})
    p = args.pop("p", 1.0 if name == "Compose" else 0.5)
    p_value = _probability(name, p)
    out = {"__class_fullname__": name, "p": p if name == "Compose" else p_value}
    if name in CONTAINERS:
        out["transforms"] = _each_child(name, args.pop("transforms", []), normalize_transform_dict)
        if name == "Compose":
            for key, default in _COMPOSE_EXTRAS.items():
                out[key] = args.pop(key, default)
        if args:
            raise ValueError(f"{name}: unknown arguments {sorted(args)}. {_received(args)}")
        return out
    out.update(_full_args(name, args))
    return out


# --------------------------------------------------------------------------------------------------
# lung_keras layers <-> Albumentations dicts


def _layer_class(name):
    """The `lung_keras.augment` layer class called `name`, from Keras' registry of serializable classes."""
    import keras

    importlib.import_module("lung_keras.augment")  # every layer registered
    cls = keras.saving.get_registered_object(f"lung_keras>{name}")
    if cls is None:
        raise _unsupported_transform(name)
    return cls


def _init_params(cls):
    return {
        k: v
        for k, v in inspect.signature(cls.__init__).parameters.items()
        if k != "self" and v.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    }


def _children(layer):
    for attr in ("transforms", "layers_list", "steps"):
        children = getattr(layer, attr, None)
        if children is not None:
            return list(children)
    raise ValueError(f"{type(layer).__name__} has no `transforms` attribute to serialize. Received: layer={layer!r}")


def _layer_value_to_albu(value):
    """Layer config values -> plain JSON-able values (Keras may hold tuples, numpy scalars, dicts)."""
    return _jsonable(value)


def layer_to_dict(layer):
    """The Albumentations `to_dict()["transform"]` dict of one `lung_keras.augment` layer (recursive)."""
    name = type(layer).__name__
    if name not in SUPPORTED_TRANSFORMS:
        raise ValueError(f"Cannot convert {name} to Albumentations. {_supported_message()} Received: layer={layer!r}")
    config = layer.get_config()
    p = float(config.get("p", 1.0 if name == "Compose" else 0.5))
    if name in CONTAINERS:
        d = {"__class_fullname__": name, "p": p, "transforms": [layer_to_dict(t) for t in _children(layer)]}
        if name == "Compose":
            d.update(_COMPOSE_EXTRAS)
        return d
    spec = TRANSFORM_SPECS[name]
    args = {k: _layer_value_to_albu(v) for k, v in config.items() if k in spec}
    d = {"__class_fullname__": name, "p": p}
    d.update(_full_args(name, args))
    return d


def _albu_value_to_layer(cls, key, value):
    """A normalized Albumentations value -> the form the `lung_keras` constructor takes.

    The layers take Albumentations' own argument forms (OpenCV flags included); ranges are passed as tuples.
    """
    if isinstance(value, list):
        return tuple(_albu_value_to_layer(cls, key, v) for v in value)
    if isinstance(value, dict):
        return {k: _albu_value_to_layer(cls, key, v) for k, v in value.items()}
    return value


def _each_child(name, children, build):
    """`[build(child), ...]` of a container's `transforms`; an error says which child (`Compose.transforms[1]`)."""
    if not isinstance(children, (list, tuple)):
        raise ValueError(f"{name}: transforms must be a list of transform dicts. Received: transforms={children!r}")
    out = []
    for i, child in enumerate(children):
        try:
            out.append(build(child))
        except ValueError as e:
            raise ValueError(f"{name}.transforms[{i}]: {e}") from None
    return out


def layer_from_dict(transform, seed=None):
    """Build a `lung_keras.augment` layer from an Albumentations `to_dict()["transform"]` dict."""
    if not isinstance(transform, dict) or "__class_fullname__" not in transform:
        raise ValueError(
            f"Expected an Albumentations transform dict with '__class_fullname__'. Received: transform={transform!r}"
        )
    name = _short_name(transform["__class_fullname__"])
    if name not in SUPPORTED_TRANSFORMS:
        raise _unsupported_transform(name)
    args = {k: v for k, v in transform.items() if k != "__class_fullname__"}
    cls = _layer_class(name)
    params = _init_params(cls)
    kwargs = {}
    if "p" in args:
        kwargs["p"] = _probability(name, args.pop("p"))
    if "seed" in params and seed is not None:
        kwargs["seed"] = seed
    if name in CONTAINERS:
        children = args.pop("transforms", [])
        if name == "Compose":
            for key, only in _COMPOSE_EXTRAS.items():
                if key in args and args.pop(key) != only and only is not True:
                    raise ValueError(
                        f"Compose: {key} is not supported by lung_keras (images and masks only); it must be "
                        f"{only!r}. Received: {key}={transform[key]!r}"
                    )
        if args:
            raise ValueError(
                f"{name}: unsupported arguments {sorted(args)}; supported: p, transforms. {_received(args)}"
            )
        sub_seed = None if seed is None else seed
        kwargs["transforms"] = _each_child(name, children, lambda t: layer_from_dict(t, seed=sub_seed))
        return cls(**kwargs)
    normalized = _normalize_args(name, args)
    defaults = _full_args(name, {})
    unsupported = {}
    for key, value in normalized.items():
        if key in params:
            kwargs[key] = _albu_value_to_layer(cls, key, value)
        elif value != defaults[key] and not (name == "Affine" and key in ("translate_percent", "translate_px")):
            unsupported[key] = f"only {defaults[key]!r} is supported"
    if name == "Affine":
        for key in ("translate_percent", "translate_px"):
            if key not in params and normalized.get(key) not in (None, defaults[key]):
                unsupported[key] = "not supported"
    if unsupported:
        supported = sorted(k for k in TRANSFORM_SPECS[name] if k in params)
        raise ValueError(
            f"{name}: unsupported argument values ({'; '.join(f'{k}: {why}' for k, why in unsupported.items())}). "
            f"lung_keras implements these arguments of {name}: {['p', *supported]}; the other Albumentations "
            f"arguments only at their defaults. {_received({k: transform[k] for k in unsupported})}"
        )
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{name}: lung_keras does not support these arguments: {e}") from e


def policy_to_dict(policy):
    """`{"__version__": "2.0.8", "transform": ...}`, what `A.to_dict` gives for the equivalent pipeline."""
    return {"__version__": ALBUMENTATIONS_VERSION, "transform": layer_to_dict(_as_compose(policy))}


def policy_from_dict(data, seed=None):
    """Build a `Compose` from an `A.to_dict` / `A.save` dict (a bare transform is wrapped in `Compose`)."""
    if not isinstance(data, dict) or "transform" not in data:
        raise ValueError(
            "Expected an Albumentations policy dict with a 'transform' key (what A.save writes). "
            f"Received: keys={sorted(data) if isinstance(data, dict) else type(data).__name__}"
        )
    layer = layer_from_dict(data["transform"], seed=seed)
    return _as_compose(layer, seed=seed)


def _as_compose(layer, seed=None):
    if type(layer).__name__ == "Compose":
        return layer
    compose = _layer_class("Compose")
    kwargs = {"transforms": [layer], "p": 1.0}
    if seed is not None and "seed" in _init_params(compose):
        kwargs["seed"] = seed
    return compose(**kwargs)


# --------------------------------------------------------------------------------------------------
# Albumentations objects (lazy import)


def _albumentations():
    try:
        import albumentations
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "from_albumentations / to_albumentations need albumentations==2.0.8 "
            "(`pip install albumentations==2.0.8`); policy files are read without it."
        ) from e
    return albumentations


def from_albumentations(transform, seed=None):
    """Return the `lung_keras.augment.Compose` equivalent to an Albumentations transform or `Compose`.

    Args:
        transform: an `A.Compose`, `A.OneOf` or a single supported Albumentations transform (wrapped in a
            `Compose(p=1)`).
        seed: optional seed for the returned layers (Albumentations seeds are not carried over).

    Raises:
        ValueError: for a transform or argument value `lung_keras` does not implement; the message lists what is
            supported.
    """
    if not hasattr(transform, "to_dict"):
        raise ValueError(f"Expected an Albumentations transform. {_supported_message()} Received: transform={transform!r}")
    name = type(transform).__name__
    if name not in SUPPORTED_TRANSFORMS:
        raise _unsupported_transform(name)
    data = _jsonable(transform.to_dict())
    return policy_from_dict(data, seed=seed)


def to_albumentations(policy):
    """Return the `albumentations.Compose` equivalent to a `lung_keras` `Compose` (or single layer)."""
    A = _albumentations()
    return A.from_dict(policy_to_dict(policy))


# --------------------------------------------------------------------------------------------------
# Files


def _format_of(path, data_format):
    if data_format is not None:
        if data_format not in ("json", "yaml", "keras"):
            raise ValueError(f"data_format must be 'json', 'yaml' or 'keras'. Received: data_format={data_format!r}")
        return data_format
    return "yaml" if pathlib.Path(path).suffix.lower() in (".yaml", ".yml") else "json"


def save_policy(policy, path, data_format=None):
    """Write a policy as `A.save` does (JSON, or YAML for `.yaml`/`.yml`), or as Keras config JSON.

    Args:
        policy: a `lung_keras.augment.Compose` (or one layer, wrapped in `Compose`).
        path: the file to write.
        data_format: `"json"`, `"yaml"` (both the Albumentations format) or `"keras"` (the
            `keras.saving.serialize_keras_object` JSON). Default: from the suffix, JSON unless `.yaml`/`.yml`.
    """
    path = pathlib.Path(path)
    fmt = _format_of(path, data_format)
    if fmt == "keras":
        import keras

        text = json.dumps(keras.saving.serialize_keras_object(_as_compose(policy)), indent=2)
    elif fmt == "yaml":
        import yaml

        text = yaml.safe_dump(policy_to_dict(policy), default_flow_style=False)
    else:
        text = json.dumps(policy_to_dict(policy), indent=2)
    from lung_keras._io import write_text

    write_text(path, text)
    return path


def _parse_policy_text(path, text):
    """The data of a policy file: YAML for `.yaml`/`.yml`, else JSON (YAML accepted as a fallback)."""
    import yaml

    def yaml_error(e):
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return ValueError(f"{path}: not a valid YAML policy file: {getattr(e, 'problem', None) or e}{where}")

    if _format_of(path, None) == "yaml":
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise yaml_error(e) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        json_error = ValueError(f"{path}: not a valid JSON policy file: {e.msg} at line {e.lineno}, column {e.colno}")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise json_error from None
    if not isinstance(data, dict):  # plain text that YAML reads as a string: the JSON error is the useful one
        raise json_error
    return data


def load_policy(path, seed=None):
    """Read a policy file written by `A.save` (JSON or YAML) or by `save_policy`, or a Keras config JSON.

    Returns a `lung_keras.augment.Compose`. `seed` seeds the layers built from an Albumentations file; a Keras
    config keeps its own seeds unless `seed` is given.

    Raises:
        FileNotFoundError: naming the file when it does not exist.
        ValueError: starting with the file's path: invalid JSON/YAML (with line and column), or a transform or
            argument that cannot be built (naming the transform and its place, e.g. `Compose.transforms[0]`).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Policy file not found: {path}")
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a text policy file ({e})") from None
    data = _parse_policy_text(path, text)
    if isinstance(data, dict) and "transform" in data:
        try:
            return policy_from_dict(data, seed=seed)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
    if isinstance(data, dict) and "class_name" in data:
        import keras

        if seed is not None:
            data = json.loads(json.dumps(data))
            _set_seeds(data, seed)
        try:
            _check_keras_config(data)
            layer = keras.saving.deserialize_keras_object(data)
        except (ValueError, TypeError, KeyError) as e:
            raise ValueError(f"{path}: {_innermost_keras_error(data, e)}") from None
        return _as_compose(layer)
    raise ValueError(
        f"{path} is neither an Albumentations policy (a dict with 'transform', as A.save writes) nor a Keras "
        "layer config (a dict with 'class_name')."
    )


def _check_keras_config(data):
    """Check `p` of every layer of a Keras layer config, naming the layer and its place (`Compose.transforms[1]`)."""
    name = data.get("class_name")
    config = data.get("config")
    if not isinstance(config, dict):
        return
    if "p" in config:
        _probability(name, config["p"])
    children = config.get("transforms")
    if isinstance(children, list):
        _each_child(name, children, lambda child: _check_keras_config(child) if isinstance(child, dict) else None)


def _innermost_keras_error(data, error):
    """`Rotate: <reason>` from Keras' nested deserialization message (which repeats every enclosing config)."""
    text = str(error)
    classes = re.findall(r"deserializing class '(\w+)'", text)
    reason = text.rsplit("Exception encountered: ", 1)[-1].strip()
    if reason.startswith(tuple(f"{c}" for c in SUPPORTED_TRANSFORMS)):  # already names its transform
        return reason
    return f"{classes[-1] if classes else data.get('class_name')}: {reason}"


def _set_seeds(obj, seed):
    if isinstance(obj, dict):
        if isinstance(obj.get("config"), dict) and "seed" in obj["config"]:
            obj["config"]["seed"] = seed
        for v in obj.values():
            _set_seeds(v, seed)
    elif isinstance(obj, list):
        for v in obj:
            _set_seeds(v, seed)
