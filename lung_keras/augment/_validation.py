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


def check_border_mode(value, name="border_mode"):
    if isinstance(value, bool) or value not in F.SUPPORTED_BORDER_MODES:
        raise ValueError(
            f"`{name}` must be one of {F.SUPPORTED_BORDER_MODES} (cv2.BORDER_CONSTANT, "
            f"BORDER_REPLICATE, BORDER_REFLECT, BORDER_WRAP, BORDER_REFLECT_101). "
            f"Received: {name}={_fmt(value)}"
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
