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

Every transform's arguments come from its layer's declaration (`arguments`, a table of
`_validation.Argument`, with the defaults of the layer's `__init__`), the one that the layer's `__init__` and
`get_config` also read: nothing about an argument is restated here. Arguments are written exactly as
Albumentations 2.0.8 normalizes them in `to_dict()` (ranges as two-element lists, `Affine` axis dicts, OpenCV
integer flags for `interpolation` and `border_mode`), so a policy written here equals `A.save`'s output for the
same transform, and loading either gives the same layer. A value Albumentations accepts but `lung_keras` does
not implement (e.g. `Rotate(crop_border=True)`) raises the layer's own `ValueError`, prefixed with the
transform's name and place (`Compose.transforms[1]: Rotate: ...`).
"""

import json
import pathlib
import re

from lung_keras.augment import _validation as V
from lung_keras.augment._container import ContainerAugmentation
from lung_keras.augment.affine import Affine
from lung_keras.augment.coarse_dropout import CoarseDropout
from lung_keras.augment.compose import Compose
from lung_keras.augment.elastic_transform import ElasticTransform
from lung_keras.augment.gauss_noise import GaussNoise
from lung_keras.augment.gaussian_blur import GaussianBlur
from lung_keras.augment.horizontal_flip import HorizontalFlip
from lung_keras.augment.one_of import OneOf
from lung_keras.augment.random_brightness_contrast import RandomBrightnessContrast
from lung_keras.augment.random_gamma import RandomGamma
from lung_keras.augment.rotate import Rotate
from lung_keras.augment.vertical_flip import VerticalFlip

ALBUMENTATIONS_VERSION = "2.0.8"

# OpenCV flag values, as Albumentations serializes them.
INTERPOLATIONS = V.INTERPOLATIONS
BORDER_MODES = V.BORDER_MODES

_CONTAINER_CLASSES = (Compose, OneOf)
_LEAF_CLASSES = (
    HorizontalFlip, VerticalFlip, Rotate, Affine, ElasticTransform,
    RandomBrightnessContrast, RandomGamma, GaussNoise, GaussianBlur, CoarseDropout,
)
CONTAINERS = tuple(cls.__name__ for cls in _CONTAINER_CLASSES)
SUPPORTED_TRANSFORMS = CONTAINERS + tuple(cls.__name__ for cls in _LEAF_CLASSES)

# Albumentations' `Compose.to_dict()` keys beyond `p` and `transforms`, with the only values supported.
_COMPOSE_EXTRAS = {"bbox_params": None, "keypoint_params": None, "additional_targets": {}, "is_check_shapes": True}


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


def _probability(name, p):
    """`p` of transform `name` as a float in [0, 1], or a ValueError naming the transform."""
    try:
        return V.check_probability(p)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None


def _layer_class(name):
    """The `lung_keras.augment` layer class called `name`, from Keras' registry of serializable classes."""
    import keras

    cls = keras.saving.get_registered_object(f"lung_keras>{name}")
    if cls is None or name not in SUPPORTED_TRANSFORMS:
        raise _unsupported_transform(name)
    return cls


def _albumentations_arguments(cls):
    """The arguments of layer class `cls` that Albumentations has, from the layer's own declaration."""
    return {name: argument for name, argument in cls.arguments.items() if argument.albumentations}


def _canonical_args(name, cls, args):
    """Arguments of transform `name` as Albumentations' `to_dict()` holds them, every missing one at its default.

    Reads the layer's declaration (`cls.arguments` and its `__init__` defaults): the values Albumentations
    accepts are accepted here, whether or not `lung_keras` implements them (that is the layer's check).
    """
    declared = _albumentations_arguments(cls)
    for key, value in args.items():
        if key not in declared:
            raise ValueError(
                f"{name}: unknown argument {key!r}. Albumentations {ALBUMENTATIONS_VERSION} arguments of {name}: "
                f"{['p', *sorted(declared)]}. Received: {key}={value!r}"
            )
    given = {**cls.argument_defaults(), **args}
    try:
        values = {key: argument.canonical(given[key], key) for key, argument in declared.items()}
        values = cls.resolve_arguments(values, given)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    return {key: _jsonable(values[key]) for key in sorted(values)}


def _transform_name(transform):
    if not isinstance(transform, dict) or "__class_fullname__" not in transform:
        raise ValueError(
            f"Expected an Albumentations transform dict with '__class_fullname__'. Received: transform={transform!r}"
        )
    name = _short_name(transform["__class_fullname__"])
    if name not in SUPPORTED_TRANSFORMS:
        raise _unsupported_transform(name)
    return name


def normalize_transform_dict(transform):
    """Canonical form of one Albumentations transform dict, as `A.from_dict(...).to_dict()` would give it.

    Fills every missing argument with its Albumentations 2.0.8 default and normalizes the given ones
    (`limit=15` -> `[-15.0, 15.0]`, Affine `scale=0.9` -> `{"x": [0.9, 0.9], "y": [0.9, 0.9]}`, ...), by the
    declarations of the `lung_keras` layers. Containers are normalized recursively. Needs no Albumentations
    install.

    Raises:
        ValueError: for a transform outside `SUPPORTED_TRANSFORMS` or an unknown/invalid argument.
    """
    name = _transform_name(transform)
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
    out.update(_canonical_args(name, _layer_class(name), args))
    return out


# --------------------------------------------------------------------------------------------------
# lung_keras layers <-> Albumentations dicts


def layer_to_dict(layer):
    """The Albumentations `to_dict()["transform"]` dict of one `lung_keras.augment` layer (recursive)."""
    name = type(layer).__name__
    if name not in SUPPORTED_TRANSFORMS:
        raise ValueError(f"Cannot convert {name} to Albumentations. {_supported_message()} Received: layer={layer!r}")
    d = {"__class_fullname__": name, "p": float(layer.p)}
    if isinstance(layer, ContainerAugmentation):
        d["transforms"] = [layer_to_dict(t) for t in layer.transforms]
        if name == "Compose":
            d.update(_COMPOSE_EXTRAS)
        return d
    d.update({key: _jsonable(getattr(layer, key)) for key in sorted(_albumentations_arguments(type(layer)))})
    return d


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
    """Build a `lung_keras.augment` layer from an Albumentations `to_dict()["transform"]` dict.

    Raises:
        ValueError: naming the transform, for an argument Albumentations would refuse or a value `lung_keras`
            does not implement (the layer's own message, "... Received: name=value").
    """
    name = _transform_name(transform)
    cls = _layer_class(name)
    args = {k: v for k, v in transform.items() if k != "__class_fullname__"}
    kwargs = {} if seed is None else {"seed": seed}
    if "p" in args:
        kwargs["p"] = _probability(name, args.pop("p"))
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
        kwargs["transforms"] = _each_child(name, children, lambda t: layer_from_dict(t, seed=seed))
        return cls(**kwargs)
    kwargs.update(_canonical_args(name, cls, _jsonable(args)))
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None


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
    if isinstance(layer, Compose):
        return layer
    return Compose(transforms=[layer], p=1.0, **({} if seed is None else {"seed": seed}))


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
