"""Argument parsing shared by the augmentation layers (Albumentations rules, eager ValueErrors)."""

import numbers

from lung_keras.augment import functional as F


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _fmt(value):
    return repr(value)


def as_pair(value, name, mode, sort=True):
    """Normalize a range argument to a `(low, high)` float tuple.

    mode:
        "symmetric": number v -> (-|v|, |v|)   (Albumentations SymmetricRangeType)
        "fixed":     number v -> (v, v)
        "zero":      number v -> (0, v)          (Albumentations to_tuple(v, low=0))
        "one":       number v -> (1, v) sorted   (Albumentations to_tuple(v, low=1))
    Pairs are returned as floats, sorted when `sort` (Albumentations sorts `limit`, `scale`,
    `gamma_limit`, `blur_limit`, ... given high first); with `sort=False` a reversed pair is an
    error (Albumentations' `nondecreasing` ranges: GaussNoise `std_range`, `mean_range`).
    """
    if _is_number(value):
        v = float(value)
        if mode == "symmetric":
            pair = (-abs(v), abs(v))
        elif mode == "fixed":
            pair = (v, v)
        elif mode == "zero":
            pair = tuple(sorted((0.0, v)))
        elif mode == "one":
            pair = tuple(sorted((1.0, v)))
        else:  # pragma: no cover - programming error
            raise AssertionError(mode)
    elif isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_number(v) for v in value):
        pair = (float(value[0]), float(value[1]))
    else:
        raise ValueError(
            f"`{name}` must be a number or a pair of numbers (low, high). Received: {name}={_fmt(value)}"
        )
    if pair[0] > pair[1] and sort:
        pair = (pair[1], pair[0])
    elif pair[0] > pair[1]:
        raise ValueError(f"`{name}` must satisfy low <= high. Received: {name}={_fmt(value)}")
    return pair


def check_bounds(pair, name, low=None, high=None, original=None):
    original = pair if original is None else original
    for v in pair:
        if (low is not None and v < low) or (high is not None and v > high):
            lo = "-inf" if low is None else low
            hi = "inf" if high is None else high
            raise ValueError(
                f"`{name}` values must lie in [{lo}, {hi}]. Received: {name}={_fmt(original)}"
            )
    return pair


def check_probability(p, name="p"):
    if not _is_number(p) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"`{name}` must be a number in [0, 1]. Received: {name}={_fmt(p)}")
    return float(p)


def check_interpolation(value, name="interpolation"):
    if isinstance(value, bool) or value not in F.SUPPORTED_INTERPOLATIONS:
        raise ValueError(
            f"`{name}` must be one of {F.SUPPORTED_INTERPOLATIONS} (cv2.INTER_NEAREST, "
            f"cv2.INTER_LINEAR); cubic/area/lanczos are not supported. Received: {name}={_fmt(value)}"
        )
    return int(value)


def check_fill(value, name="fill"):
    if _is_number(value):
        return float(value)
    if isinstance(value, (list, tuple)) and len(value) > 0 and all(_is_number(v) for v in value):
        return tuple(float(v) for v in value)
    raise ValueError(
        f"`{name}` must be a number or a sequence of numbers (one per channel). Received: {name}={_fmt(value)}"
    )


def check_bool(value, name):
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be a bool. Received: {name}={_fmt(value)}")
    return value


def check_choice(value, name, choices):
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}. Received: {name}={_fmt(value)}")
    return value


def as_xy_pairs(value, name, number_mode, default):
    """Albumentations' `Affine._handle_dict_arg`: number, pair, or {"x": .., "y": ..}.

    Returns {"x": (lo, hi), "y": (lo, hi)}.
    """
    if isinstance(value, dict):
        unknown = set(value) - {"x", "y"}
        if unknown or not value:
            raise ValueError(
                f'`{name}` dict must have keys "x" and/or "y". Received: {name}={_fmt(value)}'
            )
        out = {}
        for axis in ("x", "y"):
            v = value.get(axis, default)
            out[axis] = as_pair(v, f"{name}['{axis}']", number_mode)
        return out
    pair = as_pair(value, name, number_mode)
    return {"x": pair, "y": pair}


def to_config_value(value):
    """Make tuples JSON friendly (lists) while keeping dicts/None/numbers."""
    if isinstance(value, tuple):
        return [to_config_value(v) for v in value]
    if isinstance(value, list):
        return [to_config_value(v) for v in value]
    if isinstance(value, dict):
        return {k: to_config_value(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------------------------------
# Argument declarations: each layer lists its constructor arguments once, as `arguments = {name: Argument}`.
# The layer's `__init__` (through `BaseAugmentation`), its `get_config` and the Albumentations bridge all
# read that table; the defaults are the ones in the layer's `__init__` signature (Albumentations' own).


class Argument:
    """One constructor argument of an augmentation layer (Albumentations' `InitSchema` field, in small).

    Args:
        normalize: `normalize(value, name)` -> the canonical value, the form Albumentations' `to_dict()`
            holds (ranges as `(low, high)` tuples, OpenCV flags as ints, Affine axis dicts); raises a
            `ValueError` ending "Received: name=value" for a value Albumentations would refuse.
        supported: optional `supported(value, name)` on the canonical value; raises for a value
            Albumentations accepts but `lung_keras` does not implement (e.g. `crop_border=True`).
        optional: `None` is a valid value, kept as is.
        albumentations: False for a `lung_keras`-only argument (not written to, or read from, an
            Albumentations policy).
    """

    def __init__(self, normalize, supported=None, optional=False, albumentations=True):
        self.normalize = normalize
        self.supported = supported
        self.optional = optional
        self.albumentations = albumentations

    def canonical(self, value, name):
        """`value` as Albumentations normalizes it (no check of what `lung_keras` implements)."""
        if value is None and self.optional:
            return None
        return self.normalize(value, name)

    def parse(self, value, name):
        """The canonical value a layer stores, after checking that `lung_keras` implements it."""
        value = self.canonical(value, name)
        if self.supported is not None and value is not None:
            self.supported(value, name)
        return value


def pair(mode, sort=True, low=None, high=None, integer=False, strict_pair=False):
    """A `(low, high)` range normalizer (see `as_pair` for `mode`), optionally bounded and integer."""

    def normalize(value, name):
        if strict_pair and not (isinstance(value, (list, tuple)) and len(value) == 2):
            raise ValueError(f"`{name}` must be a pair of numbers (low, high). Received: {name}={_fmt(value)}")
        if integer and not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool)
            for v in (value if isinstance(value, (list, tuple)) else [value])
        ):
            raise ValueError(f"`{name}` must be an int or a pair of ints. Received: {name}={_fmt(value)}")
        out = check_bounds(as_pair(value, name, mode, sort=sort), name, low, high, original=value)
        return (int(out[0]), int(out[1])) if integer else out

    return normalize


def xy_pairs(default, low=None, integer=False):
    """Albumentations' Affine axis argument: number, pair or `{"x": .., "y": ..}` -> `{"x": pair, "y": pair}`."""

    def normalize(value, name):
        out = as_xy_pairs(value, name, "fixed", default)
        for axis in ("x", "y"):
            check_bounds(out[axis], name, low=low, original=value)
        if integer:
            out = {axis: (int(lo), int(hi)) for axis, (lo, hi) in out.items()}
        return out

    return normalize


def number(low=None, high=None, low_open=False):
    """A float in `[low, high]` (`(low, high]` with `low_open`)."""

    def normalize(value, name):
        ok = _is_number(value)
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value <= high
        if not ok:
            lo = "-inf" if low is None else low
            hi = "inf" if high is None else high
            raise ValueError(
                f"`{name}` must be a number in {'(' if low_open else '['}{lo}, {hi}]. Received: {name}={_fmt(value)}"
            )
        return float(value)

    return normalize


def choice(*options):
    return lambda value, name: check_choice(value, name, options)


def only(allowed, why):
    """`supported` check: only `allowed` is implemented; `why` says what the other values would need."""

    def supported(value, name):
        if value != allowed:
            raise ValueError(f"`{name}={value!r}` {why} and is not supported. Received: {name}={_fmt(value)}")

    return supported


# OpenCV flag values as Albumentations writes them, and the names it also accepts.
INTERPOLATIONS = {"nearest": 0, "linear": 1, "cubic": 2, "area": 3, "lanczos4": 4}
BORDER_MODES = {"constant": 0, "replicate": 1, "reflect": 2, "wrap": 3, "reflect_101": 4}
_ALIASES = {
    "interpolation": {"bilinear": 1, "bicubic": 2, "lanczos": 4},
    "border_mode": {"reflect101": 4, "edge": 1, "nearest": 1, "symmetric": 2, "mirror": 4},
}


def opencv_flag(table, kind):
    """An OpenCV flag given as its int or its name (`"linear"`, `"reflect_101"`, ...) -> the int."""

    def normalize(value, name):
        if isinstance(value, str):
            key = value.lower()
            if key in table or key in _ALIASES[kind]:
                return table.get(key, _ALIASES[kind].get(key))
        elif isinstance(value, numbers.Integral) and not isinstance(value, bool) and value in table.values():
            return int(value)
        raise ValueError(
            f"`{name}` must be one of {sorted(table)} or the OpenCV flags {sorted(table.values())}. "
            f"Received: {name}={_fmt(value)}"
        )

    return normalize


interpolation = opencv_flag(INTERPOLATIONS, "interpolation")
border_mode = opencv_flag(BORDER_MODES, "border_mode")


def supported_interpolation(value, name):
    check_interpolation(value, name)
