"""Pure tensor kernels behind `lung_keras.augment` (keras.ops only, backend agnostic).

Every function here is stateless and jit friendly: no randomness, no Python
branching on tensor values, only `keras.ops`. The layers sample parameters and
dispatch to these kernels.

Conventions (shared by all layers and by the transformation dicts they return):

* Images are channels-last. Batched kernels take `(B, H, W, C)` tensors.
* Arithmetic happens in float32 "value units": a uint8 image keeps its 0..255
  values, a float image is assumed to lie in [0, 1] (Albumentations'
  `MAX_VALUES_BY_DTYPE`). `max_value_for_dtype` gives the maximum.
* Pixel coordinates follow OpenCV: `x` is the column, `y` the row, pixel centres
  sit on integer coordinates and the image centre is `((W - 1) / 2, (H - 1) / 2)`.
* A *pixel-coordinate matrix* is a `(B, 3, 3)` float32 matrix that maps
  homogeneous **output** pixel coordinates `(x, y, 1)` to **input** pixel
  coordinates (an inverse map, like `cv2.WARP_INVERSE_MAP`). Albumentations
  stores the forward (input -> output) matrix and lets `cv2.warpAffine` invert
  it; `invert_affine` converts between the two.
* A *displacement field* is a `(B, H, W, 2)` float32 tensor `(dx, dy)` in pixels:
  output pixel `(x, y)` reads input `(x + dx, y + dy)` (Albumentations'
  `map_x = x + dx`, `map_y = y + dy` for `cv2.remap`).
* A *geometric op list* is a list of `("affine", matrix)` and
  `("field", displacement)` pairs in application order (first applied first);
  `warp_coordinates` composes it into one sampling grid.

OpenCV codes used as arguments: interpolation `0` nearest, `1` linear; border
`0` constant, `1` replicate, `2` reflect, `3` wrap, `4` reflect_101.
"""

import functools
import math
import warnings
import weakref

import keras
import numpy as np
from keras import ops

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


# --------------------------------------------------------------------------- dtypes


def max_value_for_dtype(dtype):
    """Maximum pixel value Albumentations assumes for `dtype` (255 uint8, 1.0 float)."""
    name = _dtype_name(dtype)
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
    name = _dtype_name(dtype)
    return "int" in name or name == "bool"


def _dtype_name(dtype):
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
    name = _dtype_name(dtype)
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
    name = _dtype_name(dtype)
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


def clip_where(x, apply, low, high):
    """`clip(x, low, high)` on samples where `apply` `(B,)` holds, `x` unchanged elsewhere.

    Two elementwise ops on the images (the per-sample bounds are `(-inf, inf)`
    where not applied) instead of a clip plus a select.
    """
    apply = ops.convert_to_tensor(apply)
    lo = ops.where(apply, ops.full_like(apply, low, "float32"), ops.full_like(apply, -np.inf, "float32"))
    hi = ops.where(apply, ops.full_like(apply, high, "float32"), ops.full_like(apply, np.inf, "float32"))
    return ops.minimum(ops.maximum(x, per_sample(lo)), per_sample(hi))


# ------------------------------------------------------------------------ matrices


def identity_matrices(batch_size):
    """`(B, 3, 3)` identity pixel-coordinate matrices."""
    eye = ops.eye(3, dtype="float32")
    return ops.tile(eye[None], (batch_size, 1, 1))


def _stack_matrix(rows):
    """Build `(B, 3, 3)` from a 3x3 nested list of `(B,)` tensors / scalars."""
    ref = None
    for row in rows:
        for v in row:
            if not isinstance(v, (int, float)):
                ref = v
                break
        if ref is not None:
            break
    ones = ops.ones_like(ref)
    stacked = [
        ops.stack([v * ones if isinstance(v, (int, float)) else v for v in row], axis=-1)
        for row in rows
    ]
    return ops.stack(stacked, axis=-2)


def invert_affine(matrix):
    """Invert `(B, 3, 3)` affine matrices (last row `[0, 0, 1]`) in closed form."""
    a = matrix[:, 0, 0]
    b = matrix[:, 0, 1]
    c = matrix[:, 0, 2]
    d = matrix[:, 1, 0]
    e = matrix[:, 1, 1]
    f = matrix[:, 1, 2]
    det = a * e - b * d
    ia = e / det
    ib = -b / det
    id_ = -d / det
    ie = a / det
    ic = -(ia * c + ib * f)
    if_ = -(id_ * c + ie * f)
    return _stack_matrix([[ia, ib, ic], [id_, ie, if_], [0.0, 0.0, 1.0]])


def albumentations_affine_matrix(
    height,
    width,
    rotate,
    scale_x,
    scale_y,
    shear_x,
    shear_y,
    translate_x,
    translate_y,
):
    """Albumentations' **forward** (input -> output) affine matrix, batched.

    Exactly `fgeometric.create_affine_transformation_matrix` of Albumentations
    2.0.8, fed the way `A.Affine` / `A.Rotate` feed it:
    `C @ T @ Sh @ R @ S @ C^-1` about the centre `C = ((W-1)/2, (H-1)/2)`.

    Args:
        height, width: image size (ints or scalar tensors).
        rotate: `(B,)` degrees; positive turns the content counter-clockwise
            on screen (like `cv2.getRotationMatrix2D`).
        scale_x, scale_y: `(B,)` scale factors.
        shear_x, shear_y: `(B,)` shear in degrees **as the user specifies it**
            (Albumentations negates the sampled shear before building the
            matrix; this function does the same).
        translate_x, translate_y: `(B,)` translation in pixels.

    Returns:
        `(B, 3, 3)` float32 forward matrix. Use `invert_affine` for the
        output -> input pixel-coordinate matrix the layers expose.
    """
    rotate = ops.cast(rotate, "float32")
    cx = ops.cast(width, "float32") / 2.0 - 0.5
    cy = ops.cast(height, "float32") / 2.0 - 0.5
    rad = rotate * (math.pi / 180.0)
    cos = ops.cos(rad)
    sin = ops.sin(rad)
    tx = ops.tan(-ops.cast(shear_x, "float32") * (math.pi / 180.0))
    ty = ops.tan(-ops.cast(shear_y, "float32") * (math.pi / 180.0))
    sx = ops.cast(scale_x, "float32")
    sy = ops.cast(scale_y, "float32")
    # A = Sh @ R @ S   (2x2 linear part)
    # R = [[cos, sin], [-sin, cos]], S = diag(sx, sy), Sh = [[1, tx], [ty, 1]]
    r00 = cos * sx
    r01 = sin * sy
    r10 = -sin * sx
    r11 = cos * sy
    a00 = r00 + tx * r10
    a01 = r01 + tx * r11
    a10 = ty * r00 + r10
    a11 = ty * r01 + r11
    # M = C @ T @ A @ C^-1  ->  translation = A @ (-c) + t + c
    t0 = -(a00 * cx + a01 * cy) + ops.cast(translate_x, "float32") + cx
    t1 = -(a10 * cx + a11 * cy) + ops.cast(translate_y, "float32") + cy
    return _stack_matrix([[a00, a01, t0], [a10, a11, t1], [0.0, 0.0, 1.0]])


def rotation_matrix(angle, height, width):
    """Output -> input pixel-coordinate matrix of `A.Rotate` for `angle` degrees `(B,)`."""
    angle = ops.cast(angle, "float32")
    zeros = ops.zeros_like(angle)
    ones = ops.ones_like(angle)
    forward = albumentations_affine_matrix(
        height, width, angle, ones, ones, zeros, zeros, zeros, zeros
    )
    return invert_affine(forward)


def horizontal_flip_matrix(batch_size, width):
    """Output -> input matrix of a left-right flip: `x_in = (W - 1) - x_out`."""
    w1 = ops.cast(width, "float32") - 1.0
    ones = ops.ones((batch_size,), dtype="float32")
    return _stack_matrix([[-ones, 0.0, w1 * ones], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def vertical_flip_matrix(batch_size, height):
    """Output -> input matrix of an up-down flip: `y_in = (H - 1) - y_out`."""
    h1 = ops.cast(height, "float32") - 1.0
    ones = ops.ones((batch_size,), dtype="float32")
    return _stack_matrix([[1.0, 0.0, 0.0], [0.0, -ones, h1 * ones], [0.0, 0.0, 1.0]])


def select_matrix(condition, matrix):
    """`matrix` where `condition` `(B,)` is True, identity elsewhere."""
    eye = ops.eye(3, dtype="float32")[None]
    return ops.where(condition[:, None, None], matrix, eye)


# ------------------------------------------------------------------------- sampling


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


def apply_matrix_to_coordinates(matrix, x, y):
    """Map coordinates `(B, H, W)` (or broadcastable) through `(B, 3, 3)` matrices."""
    m = ops.reshape(matrix, (-1, 9, 1, 1))
    new_x = m[:, 0] * x + m[:, 1] * y + m[:, 2]
    new_y = m[:, 3] * x + m[:, 4] * y + m[:, 5]
    return new_x, new_y


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


# ------------------------------------------------------------ fast affine resampling

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

#: What `warp(..., method="auto")` (the layers' call) does. "auto": the gather path, which on the
#: TensorFlow backend outside an XLA graph runs as its own XLA-compiled function (`_tf_xla_gather`;
#: on a 2-core CPU at 256x256 about 2x faster than TensorFlow's `ImageProjectiveTransformV3` for
#: bilinear images and up to 9x for nearest uint8 masks, see benchmarks/augment_throughput.py
#: --breakdown); "affine_transform": `warp_affine` wherever supported (any backend; not under
#: TensorFlow XLA); "gather": always the gather path, traced inline into the caller's graph
#: (benchmarks, debugging, tests of the fast path).
DEFAULT_WARP_METHOD = "auto"
_WARP_METHODS = ("auto", "gather", "affine_transform")


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


def _use_affine_transform(method, interpolation, border_mode, fill):
    if method not in _WARP_METHODS:
        raise ValueError(f"method must be one of {_WARP_METHODS}. Received: method={method!r}")
    supported = affine_transform_supported(interpolation, border_mode, fill)
    if method == "affine_transform":
        if not supported:
            raise ValueError(
                "method='affine_transform' needs nearest/linear interpolation, a constant/replicate/"
                "reflect border and a scalar fill. Received: "
                f"interpolation={interpolation}, border_mode={border_mode}, fill={fill!r}"
            )
        return True
    if method == "gather" or DEFAULT_WARP_METHOD == "gather" or not supported:
        return False
    tensorflow = keras.backend.backend() == "tensorflow"
    if tensorflow and _tf_xla_context():
        return False  # XLA has no kernel for ImageProjectiveTransformV3
    if DEFAULT_WARP_METHOD == "affine_transform":
        return True
    # "auto": the gather path (JAX's affine_transform is map_coordinates over (B, H, W, C)
    # coordinates, slower than ours; TensorFlow runs ours through XLA, `_tf_xla_gather`), except on
    # a TensorFlow without XLA, where its kernel is 3x faster than the gather path op by op.
    return tensorflow and not tf_xla_available()


def _use_tf_xla(method):
    """Whether to run work as its own XLA cluster: TensorFlow backend with XLA, `method` "auto" (and
    `DEFAULT_WARP_METHOD` "auto"), and not already inside an XLA graph (there it is compiled inline
    with the rest)."""
    return (
        method == "auto"
        and DEFAULT_WARP_METHOD == "auto"
        and keras.backend.backend() == "tensorflow"
        and not _tf_xla_context()
        and tf_xla_available()
    )


_TF_XLA_AVAILABLE = []


def tf_xla_available():
    """Whether TensorFlow can compile with XLA here (probed once with a tiny function, eagerly).

    A TensorFlow build without XLA's JIT makes `jit_compile=True` fail at run time; then the
    layers warn once and run op by op (warps through `ImageProjectiveTransformV3` where it
    applies), so they keep working, only slower.
    """
    if not _TF_XLA_AVAILABLE:
        import tensorflow as tf

        try:
            with tf.init_scope():  # run eagerly even when first asked while tracing a graph
                probe = tf.function(lambda v: v * 2.0 + 1.0, jit_compile=True)
                ok = float(probe(tf.constant(1.0))) == 3.0
        except Exception as e:  # no XLA JIT in this build, or it failed: op by op instead
            warnings.warn(
                "lung_keras.augment: TensorFlow cannot compile with XLA here "
                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                "augmentation runs op by op (slower).",
                RuntimeWarning,
                stacklevel=2,
            )
            ok = False
        _TF_XLA_AVAILABLE.append(ok)
    return _TF_XLA_AVAILABLE[0]


_TF_XLA_GATHER = {}


def _tf_xla_function(fn):
    """`tf.function(fn, jit_compile=True)` that does not retrace per input shape.

    `reduce_retracing`: after a second shape the trace generalizes the varying dimensions (batch,
    height, width) to None (at most three traces), so eager calls on images of many sizes (offline
    expansion, previews) reuse one trace instead of tracing again and warning about it; XLA still
    compiles per concrete shape, as it must. TensorFlow counts traces for its "excessive
    retracing" warning per code object, shared by every function built from the same `fn`; a
    `functools.partial` (no `__code__`) gives each function its own count.
    """
    import tensorflow as tf

    return tf.function(functools.partial(fn), jit_compile=True, autograph=False, reduce_retracing=True)


def _tf_xla_gather(images, geometric_ops, interpolation, border_mode, fill, rounding):
    """`_gather_warp` wrapped in `tf.function(jit_compile=True)` (TensorFlow only).

    TensorFlow's own kernels for the gather path (GatherV2 plus a dozen elementwise ops over
    `(B, H, W)`) run op by op; XLA fuses the coordinate arithmetic into the gathers, 3-10x faster
    on CPU. Called from a plain `tf.function`, eagerly or in `tf.data.Dataset.map`, the nested
    function becomes one compiled cluster. One function per dtype and static setting (op kinds,
    interpolation, border, fill, rounding), so each sees only its own shapes (`_tf_xla_function`).
    Only the warp is compiled: TensorFlow's XLA lowering of its random ops is ~70x slower on CPU
    than the plain kernels, so parameter sampling and noise stay outside.
    """
    kinds = tuple(kind for kind, _ in geometric_ops)
    key = (_dtype_name(images.dtype), kinds, interpolation, border_mode, repr(fill), rounding)
    fn = _TF_XLA_GATHER.get(key)
    if fn is None:
        fn = _tf_xla_function(_gather_warp)
        _TF_XLA_GATHER[key] = fn
    return fn(images, list(geometric_ops), interpolation, border_mode, fill, rounding)


#: TensorFlow backend: run each layer call's image and mask transforms (everything after parameter
#: sampling) as one XLA-compiled function (`run_transforms`). False: TensorFlow's op-by-op kernels.
TF_XLA_TRANSFORMS = True

_TF_XLA_RUNNERS = weakref.WeakKeyDictionary()


def _apply_transforms(layer, images, masks, transformation):
    out_images = layer._transform_images(images, transformation)
    out_masks = layer._transform_masks(masks, transformation) if masks is not None else None
    return out_images, out_masks


def run_transforms(layer, images, masks, transformation):
    """`layer`'s `_transform_images` and `_transform_masks` (masks may be None), compiled where that pays.

    On the TensorFlow backend outside an XLA graph (`TF_XLA_TRANSFORMS`, `DEFAULT_WARP_METHOD`
    "auto"), both run as one `tf.function(jit_compile=True)` per layer and input dtypes: XLA fuses
    the sampling-grid arithmetic into the gathers and the photometric chain into one elementwise
    loop (on a 2-core CPU at 256x256 the default policy goes from ~40 to ~20 ms per batch of 32,
    see benchmarks/augment_throughput.py). Parameter sampling stays outside: TensorFlow's XLA
    lowering of its random ops is ~70x slower on CPU than its plain kernels. Elsewhere (JAX,
    already inside XLA) they run inline.
    """
    if not (TF_XLA_TRANSFORMS and _use_tf_xla("auto")):
        return _apply_transforms(layer, images, masks, transformation)
    # one function per layer and input dtypes, so each retraces only for new shapes
    runners = _TF_XLA_RUNNERS.setdefault(layer, {})
    key = (_dtype_name(images.dtype), None if masks is None else _dtype_name(masks.dtype))
    runner = runners.get(key)
    if runner is None:
        # a weak reference: the runner is the dict's value, it must not keep its key alive
        ref = weakref.ref(layer)
        runner = _tf_xla_function(lambda i, m, t: _apply_transforms(ref(), i, m, t))
        runners[key] = runner
    return runner(images, masks, transformation)


def _tf_xla_context():
    """Whether TensorFlow is tracing for XLA (`jit_compile=True`, e.g. `model.fit` compiled with XLA).

    TensorFlow has no XLA kernel for `ImageProjectiveTransformV3`, so the warp must take the gather
    path there. Only called on the TensorFlow backend (TensorFlow is imported already). Uses TF's
    own check (`control_flow_util.GraphOrParentsInXlaContext`, as tf.keras did); if that ever
    fails, answers True: the gather path is always correct.
    """
    try:
        import tensorflow as tf
        from tensorflow.python.ops import control_flow_util

        if tf.executing_eagerly():
            return False
        return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))
    except Exception:  # a TensorFlow without this private helper: stay on the safe side
        return True


def affine_coefficients(matrix):
    """`(B, 8)` `[a0, a1, a2, b0, b1, b2, 0, 0]` of `(B, 3, 3)` affine output->input matrices.

    `keras.ops.image.affine_transform` maps output pixel `(x, y)` to input
    `(a0 x + a1 y + a2, b0 x + b1 y + b2)` with pixel centres on integer
    coordinates: the convention of our pixel-coordinate matrices, so the
    coefficients are the first two rows (the third row is `[0, 0, 1]`).
    """
    return ops.reshape(matrix, (-1, 9))[:, :8]


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
    dtype = _dtype_name(images.dtype)
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


def compose_affine(geometric_ops):
    """One `(B, 3, 3)` matrix for a list of only `("affine", matrix)` ops, else None."""
    pending = None
    for kind, value in reversed(list(geometric_ops)):
        if kind != "affine":
            return None
        pending = value if pending is None else ops.matmul(value, pending)
    return pending


def is_identity(matrix):
    """Scalar bool tensor: every `(B, 3, 3)` matrix is the identity."""
    eye = ops.eye(3, dtype="float32")[None]
    return ops.all(ops.equal(ops.cast(matrix, "float32"), eye))


def unless(skip, fn, x):
    """`x` if the scalar bool `skip` holds, else `fn(x)`; `fn(x)` must keep x's dtype and shape.

    Eager tensors are decided in Python (no trace of the unused branch);
    symbolic ones (tf.function graphs, jax.jit tracers) go through
    `keras.ops.cond`, so the result stays graph and jit compatible.
    """
    try:
        value = bool(skip)
    except TypeError:  # tf.Tensor in a graph or a JAX tracer: cannot be a Python bool
        return ops.cond(skip, lambda: x, lambda: fn(x))
    return x if value else fn(x)


def warp(
    images,
    geometric_ops,
    interpolation=INTER_LINEAR,
    border_mode=BORDER_CONSTANT,
    fill=0.0,
    rounding="round",
    method="auto",
    skip_identity=False,
):
    """Resample `(B, H, W, C)` images once through a geometric op list.

    Linear interpolation is computed in float32 and cast back to the input
    dtype (integers rounded half to even, like OpenCV 5); nearest gathers the
    input values themselves, so the output values are a subset of the input
    values plus `fill`.

    `method`: `"gather"` (coordinates + gathers, every border mode, fields),
    `"affine_transform"` (`warp_affine`, one kernel call; only affine op lists
    and the settings `affine_transform_supported` accepts; TensorFlow has no
    XLA kernel for it) or `"auto"` (default: the gather path, compiled as
    its own XLA function on the TensorFlow backend outside XLA graphs; see
    `DEFAULT_WARP_METHOD`).

    `skip_identity`: for affine op lists, return `images` unchanged without
    resampling when every matrix is the identity (decided at run time with
    `unless`; exact, since resampling at the pixel centres is the identity).
    """
    matrix = compose_affine(geometric_ops)
    if skip_identity and matrix is not None:
        return unless(
            is_identity(matrix),
            lambda v: warp(v, geometric_ops, interpolation, border_mode, fill, rounding, method),
            images,
        )
    if matrix is not None and _use_affine_transform(method, interpolation, border_mode, fill):
        out = warp_affine(images, matrix, interpolation, border_mode, fill)
        return out if interpolation == INTER_NEAREST else from_float(out, images.dtype, rounding)
    if method == "affine_transform":
        raise ValueError("method='affine_transform' needs affine ops only. Received: a displacement field")
    if _use_tf_xla(method):
        return _tf_xla_gather(images, geometric_ops, interpolation, border_mode, fill, rounding)
    return _gather_warp(images, geometric_ops, interpolation, border_mode, fill, rounding)


def _gather_warp(images, geometric_ops, interpolation, border_mode, fill, rounding):
    """The gather path of `warp`: one sampling grid, then `sample`."""
    shape = ops.shape(images)
    x, y = warp_coordinates(geometric_ops, shape[1], shape[2])
    if interpolation == INTER_NEAREST:
        if _dtype_name(images.dtype) == "bool":
            out = sample(ops.cast(images, "uint8"), x, y, INTER_NEAREST, border_mode, fill)
            return ops.cast(out, "bool")
        return sample(images, x, y, INTER_NEAREST, border_mode, fill)
    out = sample(images, x, y, interpolation, border_mode, fill)
    return from_float(out, images.dtype, rounding)


# ---------------------------------------------------------------------- photometric


def brightness_contrast(x, alpha, beta, max_value):
    """`clip(x * alpha + beta, 0, max_value)` per sample (Albumentations' multiply_add).

    `alpha`, `beta`: `(B,)` (beta in value units). Contrast is about 0, not
    about the mean.
    """
    alpha = ops.reshape(ops.cast(alpha, "float32"), (-1, 1, 1, 1))
    beta = ops.reshape(ops.cast(beta, "float32"), (-1, 1, 1, 1))
    return ops.clip(x * alpha + beta, 0.0, max_value)


def gamma(x, gamma_value, max_value):
    """`max_value * (x / max_value) ** gamma` per sample (`gamma_value` `(B,)`)."""
    g = ops.reshape(ops.cast(gamma_value, "float32"), (-1, 1, 1, 1))
    normalized = ops.maximum(x, 0.0) / max_value
    return ops.power(normalized, g) * max_value


def add_noise(x, noise, max_value):
    """`clip(x + noise, 0, max_value)`; `noise` in value units, broadcastable to x."""
    return ops.clip(x + noise, 0.0, max_value)


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


# ---------------------------------------------------------------------------- blur


def gaussian_kernel_size(sigma, ksize):
    """Kernel size Albumentations' `GaussianBlur` uses (`create_gaussian_kernel_1d`).

    `ksize == 0` -> `int(sigma * 3.5) * 2 + 1`; even sizes are bumped to odd.
    Works on Python numbers and on tensors.
    """
    if isinstance(sigma, (int, float)) and isinstance(ksize, (int, float)):
        size = int(sigma * 3.5) * 2 + 1 if ksize == 0 else int(ksize)
        return size + 1 if size % 2 == 0 else size
    sigma = ops.cast(sigma, "float32")
    ksize = ops.cast(ksize, "int32")
    auto = ops.cast(ops.floor(sigma * 3.5), "int32") * 2 + 1
    size = ops.where(ksize == 0, auto, ksize)
    return size + ops.cast(ops.mod(size, 2) == 0, "int32")


def gaussian_kernels(sigma, size, max_size):
    """Per-sample normalized 1D Gaussian kernels, zero padded to `max_size` taps.

    Args:
        sigma: `(B,)` standard deviations.
        size: `(B,)` int32 odd kernel sizes (<= `max_size`).
        max_size: static odd int.

    Returns:
        `(B, max_size)` float32; tap `k` sits at offset `k - max_size // 2`.
    """
    radius = max_size // 2
    offsets = ops.arange(-radius, radius + 1, dtype="float32")[None, :]
    sigma = ops.maximum(ops.cast(sigma, "float32"), 1e-6)[:, None]
    half = ops.cast(ops.cast(size, "int32") // 2, "float32")[:, None]
    weights = ops.exp(-0.5 * ops.square(offsets / sigma))
    weights = ops.where(ops.abs(offsets) <= half, weights, 0.0)
    return weights / ops.sum(weights, axis=1, keepdims=True)


def _pad_axis(images, radius, axis, border_mode):
    size = ops.shape(images)[axis]
    idx = ops.arange(-radius, size + radius, dtype="int32")
    idx, _ = border_index(idx, size, border_mode)
    return ops.take(images, idx, axis=axis)


def separable_blur(images, kernels, border_mode=BORDER_REFLECT_101):
    """Convolve each sample with its own separable kernel (`cv2.sepFilter2D`).

    The batch is folded into the channel axis so one depthwise convolution per
    axis handles per-sample kernels.

    Args:
        images: `(B, H, W, C)` float32.
        kernels: `(B, K)` float32, K odd (static), symmetric.
        border_mode: OpenCV border code (Albumentations uses reflect_101).

    Returns:
        `(B, H, W, C)` float32.
    """
    ksize = kernels.shape[-1]
    radius = ksize // 2
    shape = ops.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    static_c = images.shape[-1]
    if static_c is None:
        raise ValueError("separable_blur needs a static channel count. Received: channels=None")
    padded = _pad_axis(images, radius, 1, border_mode)
    padded = _pad_axis(padded, radius, 2, border_mode)
    # (B, Hp, Wp, C) -> (1, Hp, Wp, B * C)
    folded = ops.transpose(padded, (1, 2, 0, 3))
    hp = height + 2 * radius
    wp = width + 2 * radius
    folded = ops.reshape(folded, (1, hp, wp, -1))
    per_channel = ops.repeat(kernels, static_c, axis=0)  # (B*C, K)
    kx = ops.reshape(ops.transpose(per_channel), (1, ksize, -1, 1))
    ky = ops.reshape(ops.transpose(per_channel), (ksize, 1, -1, 1))
    out = ops.depthwise_conv(folded, kx, strides=1, padding="valid")
    out = ops.depthwise_conv(out, ky, strides=1, padding="valid")
    out = ops.reshape(out, (height, width, batch, channels))
    return ops.transpose(out, (2, 0, 1, 3))


def cv2_gaussian_kernel(sigma, ksize=0):
    """`cv2.getGaussianKernel(ksize, sigma)` for float data, as numpy.

    `ksize <= 0` -> `round(sigma * 8 + 1) | 1` (OpenCV's rule for float32).
    """
    if ksize <= 0:
        ksize = int(round(sigma * 8 + 1)) | 1
    x = np.arange(ksize, dtype=np.float64) - (ksize - 1) / 2.0
    w = np.exp(-(x**2) / (2.0 * sigma * sigma))
    return (w / w.sum()).astype(np.float32)


def replicate_blur_matrix(size, kernel):
    """`(n, n)` matrix applying a 1D kernel with replicate border: `out = K @ signal`.

    Built with keras.ops so `size` may be dynamic. Row `i` holds the weight of
    every source index `j` after folding out-of-range taps onto the edge
    pixels (`cv2.BORDER_REPLICATE`).
    """
    k = np.asarray(kernel, dtype=np.float32)
    radius = (k.shape[0] - 1) // 2
    cdf = np.concatenate([[0.0], np.cumsum(k)]).astype(np.float32)
    cdf_t = ops.convert_to_tensor(cdf)
    k_t = ops.convert_to_tensor(k)
    i = ops.arange(size, dtype="int32")[:, None]
    j = ops.arange(size, dtype="int32")[None, :]
    d = j - i
    inside = ops.abs(d) <= radius
    interior = ops.where(inside, ops.take(k_t, ops.clip(d + radius, 0, 2 * radius)), 0.0)
    last = size - 1
    # mass of taps k with i + k <= 0  -> sum_{k=-r}^{-i} w  = cdf[-i + r + 1]
    left = ops.take(cdf_t, ops.clip(-i + radius + 1, 0, 2 * radius + 1))
    # mass of taps k with i + k >= n-1 -> 1 - cdf[(n-1-i) - 1 + r + 1]
    right = 1.0 - ops.take(cdf_t, ops.clip(last - i + radius, 0, 2 * radius + 1))
    is_first = ops.cast(j == 0, "float32")
    is_last = ops.cast(j == last, "float32")
    middle = (1.0 - is_first) * (1.0 - is_last)
    return interior * middle + left * is_first + right * is_last


def elastic_displacement(noise, alpha, sigma, approximate=False, same_dxdy=False):
    """Albumentations' `generate_displacement_fields` from given noise, batched.

    Args:
        noise: `(B, H, W, 2)` float32 noise already normalized as Albumentations
            does (gaussian divided by the per-sample max |value|, or uniform in
            [-1, 1]). With `same_dxdy` only `[..., 0]` is used.
        alpha: displacement scale (pixels).
        sigma: Gaussian smoothing sigma (pixels).
        approximate: 17x17 kernel instead of OpenCV's automatic size.
        same_dxdy: one field for both axes.

    Returns:
        `(B, H, W, 2)` displacement `(dx, dy)` in pixels.

    Like Albumentations, the two fields are stacked vertically into one
    `(2H, W)` array before `cv2.GaussianBlur(..., BORDER_REPLICATE)`, so the
    vertical smoothing runs across the dx/dy seam.
    """
    kernel = cv2_gaussian_kernel(float(sigma), 17 if approximate else 0)
    shape = ops.shape(noise)
    height, width = shape[1], shape[2]
    if same_dxdy:
        fields = noise[..., :1]
        rows = height
    else:
        # (B, H, W, 2) -> (B, 2H, W, 1): dx rows then dy rows
        fields = ops.concatenate([noise[..., :1], noise[..., 1:2]], axis=1)
        rows = 2 * height
    kv = replicate_blur_matrix(rows, kernel)
    kh = replicate_blur_matrix(width, kernel)
    blurred = ops.einsum("ij,bjwc->biwc", kv, fields)
    blurred = ops.einsum("kw,bhwc->bhkc", kh, blurred)
    blurred = blurred * float(alpha)
    if same_dxdy:
        return ops.concatenate([blurred, blurred], axis=-1)
    return ops.concatenate([blurred[:, :height], blurred[:, height:]], axis=-1)
