"""Pixel values and dtypes: the "value units" every kernel computes in (private; public names in `functional`).

A uint8 image keeps its 0..255 values, a uint16 image 0..65535, a float image lies in [0, 1]
(Albumentations' `MAX_VALUES_BY_DTYPE`); arithmetic happens in float32 and is cast back once.
"""

import numpy as np
from keras import ops


def max_value_for_dtype(dtype):
    """Maximum pixel value Albumentations assumes for `dtype` (255 uint8, 1.0 float)."""
    name = dtype_name(dtype)
    if name == "uint8":
        return 255.0
    if name == "uint16":
        return 65535.0
    if "float" in name:
        return 1.0
    raise ValueError(
        "Images must be uint8, uint16 or floating point (values in [0, 1]). "
        f"Received: dtype={name}"
    )


def is_integer_dtype(dtype):
    name = dtype_name(dtype)
    return "int" in name or name == "bool"


def dtype_name(dtype):
    name = getattr(dtype, "name", None)
    if name is None:
        name = str(dtype)
    return name.replace("tf.", "").replace("torch.", "")


def to_float(x):
    """Cast to float32 value units (no rescaling)."""
    return ops.cast(x, "float32")


def from_float(x, dtype, rounding="round"):
    """Cast float32 value units back to `dtype`.

    Integer dtypes are clipped to their range and rounded (`"round"`: half to
    even, like OpenCV's `saturate_cast` in warps and filters) or truncated
    (`"floor"`, like Albumentations' uint8 look-up tables and `astype`).
    """
    name = dtype_name(dtype)
    if name == "bool":
        return ops.cast(x > 0.5, "bool")
    if is_integer_dtype(dtype):
        x = quantize(x, dtype, rounding)
    return ops.cast(x, dtype)


def quantize(x, dtype, rounding="round", clip=True):
    """Snap float32 values to what `dtype` can hold, staying float32.

    For integer dtypes: round half to even or floor, then clip to the dtype
    range (`clip=False` skips the clip when the caller knows the values are
    already inside it). Float dtypes are returned unchanged.
    """
    name = dtype_name(dtype)
    if not is_integer_dtype(dtype) or name == "bool":
        return x
    if rounding == "floor":
        x = ops.floor(x)
    else:
        x = ops.round(x)
    if not clip:
        return x
    info = np.iinfo(name)
    return ops.clip(x, float(info.min), float(info.max))


def fill_in_range(fill, dtype):
    """Whether every fill value lies in `[0, max_value_for_dtype(dtype)]` (then bilinear output does too)."""
    values = fill if isinstance(fill, (list, tuple)) else [fill]
    return all(0.0 <= float(v) <= max_value_for_dtype(dtype) for v in values)


def per_sample(values):
    """`(B,)` values as a float32 `(B, 1, 1, 1)` tensor that broadcasts over images."""
    return ops.reshape(ops.cast(values, "float32"), (-1, 1, 1, 1))
