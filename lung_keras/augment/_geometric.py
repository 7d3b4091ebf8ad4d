"""Geometric kernels: border rules, gather sampling and warps (private; public names in `functional`).

Pure functions of tensors (`keras.ops` only); choosing how to run them (XLA, caches, the
affine_transform fast path) is `_execution`'s job.
"""

import keras
from keras import ops

from lung_keras.augment._dtypes import dtype_name
from lung_keras.augment._dtypes import from_float
from lung_keras.augment._matrices import affine_coefficients
from lung_keras.augment._matrices import apply_matrix_to_coordinates


INTER_NEAREST = 0


INTER_LINEAR = 1


SUPPORTED_INTERPOLATIONS = (INTER_NEAREST, INTER_LINEAR)


BORDER_CONSTANT = 0


BORDER_REPLICATE = 1


BORDER_REFLECT = 2


BORDER_WRAP = 3


BORDER_REFLECT_101 = 4


SUPPORTED_BORDER_MODES = (
    BORDER_CONSTANT,
    BORDER_REPLICATE,
    BORDER_REFLECT,
    BORDER_WRAP,
    BORDER_REFLECT_101,
)


# OpenCV < 5 quantized sampling positions to 1/32 pixel (INTER_BITS = 5)
# before bilinear interpolation; OpenCV 5 (used by Albumentations 2.0.8 here)
# samples float positions exactly. `sample(..., subpixel=True)` emulates the
# old behaviour.
CV2_SUBPIXEL_STEPS = 32.0


_COORD_LIMIT = 1.0e6


def border_index(index, size, border_mode):
    """Map integer indices into `[0, size)` like `cv2.borderInterpolate`.

    Returns `(index, valid)`; `valid` is False only for `BORDER_CONSTANT`
    positions outside the image (the caller substitutes the fill value).
    """
    size = ops.cast(size, index.dtype)
    if border_mode == BORDER_CONSTANT:
        valid = ops.logical_and(index >= 0, index < size)
        return ops.clip(index, 0, size - 1), valid
    if border_mode == BORDER_REPLICATE:
        return ops.clip(index, 0, size - 1), None
    if border_mode == BORDER_WRAP:
        return ops.mod(index, size), None
    if border_mode == BORDER_REFLECT:
        period = 2 * size
        m = ops.mod(index, period)
        return ops.where(m < size, m, period - 1 - m), None
    if border_mode == BORDER_REFLECT_101:
        period = ops.maximum(2 * size - 2, 1)
        m = ops.mod(index, period)
        return ops.where(m < size, m, period - m), None
    raise ValueError(
        f"border_mode must be one of {SUPPORTED_BORDER_MODES}. Received: border_mode={border_mode}"
    )


def _fill_tensor(fill, channels, dtype):
    if isinstance(fill, (list, tuple)):
        fill = list(fill)
        if len(fill) == 1:
            fill = fill[0]
        else:
            return ops.cast(ops.convert_to_tensor(fill), dtype)
    return ops.cast(ops.convert_to_tensor(fill), dtype)


def _fold_coordinate(x, size, border_mode):
    """Fold a continuous coordinate into `[-1, size - 1]` for one border mode.

    Bilinear interpolation commutes with these folds: reading at the folded
    position through a 1-pixel border-padded image gives the same value as
    reading at `x` with `cv2.borderInterpolate` applied to both neighbours.
    Returns `(folded, valid)`; `valid` is only set for `BORDER_CONSTANT`
    (False where both neighbours lie outside the image).
    """
    n = ops.cast(size, "float32")
    if border_mode == BORDER_CONSTANT:
        valid = ops.logical_and(x >= -1.0, x < n)
        return ops.where(valid, x, -1.0), valid
    if border_mode == BORDER_REPLICATE:
        return ops.clip(x, -1.0, n - 1.0), None
    if border_mode == BORDER_WRAP:
        return ops.mod(x, n), None
    if border_mode == BORDER_REFLECT:
        period = 2.0 * n
        u = ops.mod(x + 0.5, period)
        return ops.where(u <= n, u, period - u) - 0.5, None
    if border_mode == BORDER_REFLECT_101:
        period = ops.maximum(2.0 * n - 2.0, 1.0)
        u = ops.mod(x, period)
        return ops.minimum(ops.where(u <= n - 1.0, u, period - u), n - 1.0), None
    raise ValueError(
        f"border_mode must be one of {SUPPORTED_BORDER_MODES}. Received: border_mode={border_mode}"
    )


#: numpy-style `ops.pad` mode of each border code ("edge" and "wrap" are missing on TensorFlow).
_PAD_MODES = {
    BORDER_REPLICATE: "edge",
    BORDER_REFLECT: "symmetric",
    BORDER_REFLECT_101: "reflect",
    BORDER_WRAP: "wrap",
}


def _pad_one(images, border_mode, fill):
    """Pad `(B, H, W, C)` by one pixel on every side following the border mode.

    `ops.pad` where the backend has the mode (XLA fuses a pad into its
    consumers; an index gather there would be re-evaluated inside every later
    gather), else index gathers by `border_index` (+ the fill where constant).
    """
    widths = ((0, 0), (1, 1), (1, 1), (0, 0))
    scalar = scalar_fill(fill)
    tf_modes = ("symmetric", "reflect")
    if border_mode == BORDER_CONSTANT and scalar is not None:
        return ops.pad(images, widths, constant_values=ops.cast(scalar, images.dtype))
    mode = _PAD_MODES.get(border_mode)
    if mode is not None and (keras.backend.backend() != "tensorflow" or mode in tf_modes):
        return ops.pad(images, widths, mode=mode)
    shape = ops.shape(images)
    fill_value = _fill_tensor(fill, shape[3], images.dtype)
    padded = images
    valid = None
    for axis, size in ((1, shape[1]), (2, shape[2])):
        idx = ops.arange(-1, size + 1, dtype="int32")
        idx, v = border_index(idx, size, border_mode)
        padded = ops.take(padded, idx, axis=axis)
        if v is not None:
            v = ops.reshape(v, (1, -1, 1, 1) if axis == 1 else (1, 1, -1, 1))
            valid = v if valid is None else ops.logical_and(valid, v)
    if valid is not None:
        padded = ops.where(valid, padded, fill_value)
    return padded


def sample(
    images,
    x,
    y,
    interpolation=INTER_LINEAR,
    border_mode=BORDER_CONSTANT,
    fill=0.0,
    subpixel=False,
):
    """Gather-based resampling of a batch at arbitrary input coordinates.

    Bilinear sampling folds the coordinates into the image (exactly
    reproducing OpenCV's border rules, see `_fold_coordinate`), then gathers
    the 2x2 neighbourhood from a one-pixel border-padded copy of the input in
    its own dtype (one index computation, four gathers at fixed offsets) and
    blends in float32.

    Args:
        images: `(B, H, W, C)` tensor of any numeric dtype.
        x, y: `(B, Ho, Wo)` float32 input pixel coordinates to read.
        interpolation: `0` nearest (round half to even, as cv2.warpAffine in
            OpenCV 5) or `1` bilinear.
        border_mode: OpenCV border code, see module docstring.
        fill: scalar or per-channel sequence used for `BORDER_CONSTANT`.
        subpixel: quantize positions to 1/32 pixel before bilinear weighting,
            like OpenCV < 5 (default False: exact float bilinear, OpenCV 5).

    Returns:
        nearest: `(B, Ho, Wo, C)` with the dtype of `images` (exact input
        values or `fill`); bilinear: float32 `(B, Ho, Wo, C)`.
    """
    shape = ops.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    out_shape = ops.shape(x)
    x = ops.clip(x, -_COORD_LIMIT, _COORD_LIMIT)
    y = ops.clip(y, -_COORD_LIMIT, _COORD_LIMIT)

    if interpolation == INTER_NEAREST:
        flat = _flat_rows(images, channels)
        base = ops.reshape(ops.arange(batch, dtype="int32") * (height * width), (-1, 1, 1))
        xi, vx = border_index(ops.cast(ops.round(x), "int32"), width, border_mode)
        yi, vy = border_index(ops.cast(ops.round(y), "int32"), height, border_mode)
        values = ops.take(flat, ops.reshape(base + yi * width + xi, (-1,)), axis=0)
        values = ops.reshape(values, (out_shape[0], out_shape[1], out_shape[2], channels))
        if vx is not None:
            valid = ops.logical_and(vx, vy)[..., None]
            values = ops.where(valid, values, _fill_tensor(fill, channels, images.dtype))
        return values
    if interpolation != INTER_LINEAR:
        raise ValueError(
            f"interpolation must be one of {SUPPORTED_INTERPOLATIONS}. "
            f"Received: interpolation={interpolation}"
        )
    if subpixel:
        x = ops.round(x * CV2_SUBPIXEL_STEPS) / CV2_SUBPIXEL_STEPS
        y = ops.round(y * CV2_SUBPIXEL_STEPS) / CV2_SUBPIXEL_STEPS
    x, valid_x = _fold_coordinate(x, width, border_mode)
    y, valid_y = _fold_coordinate(y, height, border_mode)
    x0f = ops.floor(x)
    y0f = ops.floor(y)
    fx = (x - x0f)[..., None]
    fy = (y - y0f)[..., None]
    # padded index of the top-left neighbour: x0 + 1 in [0, W], y0 + 1 in [0, H]
    jx = ops.cast(x0f, "int32") + 1
    jy = ops.cast(y0f, "int32") + 1

    padded = _pad_one(images, border_mode, fill)
    flat = _flat_rows(padded, channels)
    row = width + 2
    base = ops.reshape(ops.arange(batch, dtype="int32") * ((height + 2) * row), (-1, 1, 1))
    idx = ops.reshape(base + jy * row + jx, (-1,))
    final_shape = (out_shape[0], out_shape[1], out_shape[2], channels)

    def gather(offset):
        # offset: a Python int, or a tensor when the width is only known at run time
        values = ops.take(flat, idx if isinstance(offset, int) and offset == 0 else idx + offset, axis=0)
        return ops.reshape(ops.cast(values, "float32"), final_shape)

    v00 = gather(0)
    v01 = gather(1)
    v10 = gather(row)
    v11 = gather(row + 1)
    top = v00 + fx * (v01 - v00)
    bottom = v10 + fx * (v11 - v10)
    # Constant border needs no final select: an outside position was folded to -1, where the
    # padded fill ring is read with weight 1 (and its neighbour with weight 0).
    return top + fy * (bottom - top)


def _flat_rows(images, channels):
    """`(B, H, W, C)` as gather rows: 1-D for one static channel (XLA's scalar gather is ~4x faster
    than gathering `(N, 1)` rows), else `(B * H * W, C)`."""
    if images.shape[-1] == 1:
        return ops.reshape(images, (-1,))
    return ops.reshape(images, (-1, channels))


def pixel_grid(height, width):
    """Float32 output pixel coordinates: `xs` `(1, 1, W)` and `ys` `(1, H, 1)`."""
    xs = ops.reshape(ops.arange(width, dtype="float32"), (1, 1, -1))
    ys = ops.reshape(ops.arange(height, dtype="float32"), (1, -1, 1))
    return xs, ys


def warp_coordinates(geometric_ops, height, width):
    """Compose a geometric op list into one output -> input sampling grid.

    Args:
        geometric_ops: list of `("affine", (B, 3, 3) matrix)` and
            `("field", (B, H, W, 2) displacement)` in application order
            (the first op is applied to the image first). Consecutive affine
            matrices are multiplied; a field is bilinearly sampled (replicate
            border) at the coordinates produced by the ops after it.
        height, width: output (= input) image size.

    Returns:
        `(x, y)`, each `(B, H, W)` float32: where every output pixel reads the
        original input.
    """
    xs, ys = pixel_grid(height, width)
    x = y = None
    pending = None
    for kind, value in reversed(list(geometric_ops)):
        if kind == "affine":
            pending = value if pending is None else ops.matmul(value, pending)
        elif kind == "field":
            if x is None and pending is None:
                x = xs + value[..., 0]
                y = ys + value[..., 1]
                continue
            if x is None:
                x, y = apply_matrix_to_coordinates(pending, xs, ys)
            elif pending is not None:
                x, y = apply_matrix_to_coordinates(pending, x, y)
            pending = None
            d = sample(
                value,
                x,
                y,
                interpolation=INTER_LINEAR,
                border_mode=BORDER_REPLICATE,
                subpixel=False,
            )
            x = x + d[..., 0]
            y = y + d[..., 1]
        else:
            raise ValueError(f"Unknown geometric op kind. Received: kind={kind}")
    if x is None:
        if pending is None:
            raise ValueError("warp_coordinates needs at least one op. Received: geometric_ops=[]")
        return apply_matrix_to_coordinates(pending, xs, ys)
    if pending is not None:
        x, y = apply_matrix_to_coordinates(pending, x, y)
    return x, y


#: OpenCV border codes `keras.ops.image.affine_transform` reproduces exactly,
#: with its `fill_mode` name. Missing: wrap (TF wraps the coordinate, not the
#: two neighbours) and reflect_101 (no such mode).
AFFINE_TRANSFORM_FILL_MODES = {
    BORDER_CONSTANT: "constant",
    BORDER_REPLICATE: "nearest",
    BORDER_REFLECT: "reflect",
}


#: dtypes the TensorFlow kernel (`ImageProjectiveTransformV3`) accepts.
_AFFINE_TRANSFORM_DTYPES = ("uint8", "int32", "int64", "float16", "bfloat16", "float32", "float64")


def scalar_fill(fill):
    """`fill` as one float when it is a number or the same for every channel, else None."""
    if isinstance(fill, (list, tuple)):
        values = {float(v) for v in fill}
        return values.pop() if len(values) == 1 else None
    if isinstance(fill, (int, float)):
        return float(fill)
    return None


def affine_transform_supported(interpolation, border_mode, fill):
    """Whether `warp_affine` (keras.ops.image.affine_transform) matches the gather path.

    True for nearest / bilinear interpolation, constant / replicate / reflect
    borders and a fill that is one number (or the same for every channel).
    """
    return (
        interpolation in SUPPORTED_INTERPOLATIONS
        and border_mode in AFFINE_TRANSFORM_FILL_MODES
        and scalar_fill(fill) is not None
    )


def warp_affine(images, matrix, interpolation=INTER_LINEAR, border_mode=BORDER_CONSTANT, fill=0.0):
    """Resample `(B, H, W, C)` images through `(B, 3, 3)` output->input matrices in one kernel call.

    Same sampling rules as `sample` (OpenCV semantics) through
    `keras.ops.image.affine_transform`; only for the settings
    `affine_transform_supported` accepts. Differences from the gather path:
    float32 rounding of the coordinates (bilinear values differ by ~1e-6 of
    the value range) and, for nearest, positions exactly halfway between two
    pixels round away from zero instead of to even.

    Returns:
        nearest: the dtype of `images`; bilinear: float32.
    """
    if not affine_transform_supported(interpolation, border_mode, fill):
        raise ValueError(
            "warp_affine needs nearest/linear interpolation, a constant/replicate/reflect border and a "
            f"scalar fill. Received: interpolation={interpolation}, border_mode={border_mode}, fill={fill!r}"
        )
    fill_value = scalar_fill(fill)
    dtype = dtype_name(images.dtype)
    if interpolation == INTER_LINEAR:
        x = ops.cast(images, "float32")
    elif dtype == "bool":
        x = ops.cast(images, "uint8")
    elif dtype in _AFFINE_TRANSFORM_DTYPES:
        x = images
    else:
        x = ops.cast(images, "float32" if "float" in dtype else "int32")
    out = ops.image.affine_transform(
        x,
        affine_coefficients(ops.cast(matrix, "float32")),
        interpolation="bilinear" if interpolation == INTER_LINEAR else "nearest",
        fill_mode=AFFINE_TRANSFORM_FILL_MODES[border_mode],
        fill_value=fill_value,
        data_format="channels_last",
    )
    if interpolation == INTER_NEAREST and out.dtype != images.dtype:
        out = ops.cast(out, images.dtype)
    return out


def gather_warp(images, geometric_ops, interpolation, border_mode, fill, rounding):
    """The gather path of `warp`: one sampling grid, then `sample`."""
    shape = ops.shape(images)
    x, y = warp_coordinates(geometric_ops, shape[1], shape[2])
    if interpolation == INTER_NEAREST:
        if dtype_name(images.dtype) == "bool":
            out = sample(ops.cast(images, "uint8"), x, y, INTER_NEAREST, border_mode, fill)
            return ops.cast(out, "bool")
        return sample(images, x, y, INTER_NEAREST, border_mode, fill)
    out = sample(images, x, y, interpolation, border_mode, fill)
    return from_float(out, images.dtype, rounding)


def resize_bilinear(images, height, width):
    """cv2.resize(INTER_LINEAR) semantics (half-pixel centres, replicate edges)."""
    shape = ops.shape(images)
    in_h = ops.cast(shape[1], "float32")
    in_w = ops.cast(shape[2], "float32")
    xs, ys = pixel_grid(height, width)
    x = (xs + 0.5) * (in_w / ops.cast(width, "float32")) - 0.5
    y = (ys + 0.5) * (in_h / ops.cast(height, "float32")) - 0.5
    x = ops.broadcast_to(x, (shape[0], height, width))
    y = ops.broadcast_to(y, (shape[0], height, width))
    return sample(images, x, y, INTER_LINEAR, BORDER_REPLICATE, subpixel=False)
