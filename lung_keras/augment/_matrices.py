"""Pixel-coordinate matrices: builders, composition and tests (private; public names in `functional`).

A matrix is `(B, 3, 3)` float32 and maps homogeneous **output** pixel coordinates to **input** ones
(see `functional` for the conventions). Pure functions of tensors.
"""

import math

from keras import ops


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


def affine_coefficients(matrix):
    """`(B, 8)` `[a0, a1, a2, b0, b1, b2, 0, 0]` of `(B, 3, 3)` affine output->input matrices.

    `keras.ops.image.affine_transform` maps output pixel `(x, y)` to input
    `(a0 x + a1 y + a2, b0 x + b1 y + b2)` with pixel centres on integer
    coordinates: the convention of our pixel-coordinate matrices, so the
    coefficients are the first two rows (the third row is `[0, 0, 1]`).
    """
    return ops.reshape(matrix, (-1, 9))[:, :8]


def apply_matrix_to_coordinates(matrix, x, y):
    """Map coordinates `(B, H, W)` (or broadcastable) through `(B, 3, 3)` matrices."""
    m = ops.reshape(matrix, (-1, 9, 1, 1))
    new_x = m[:, 0] * x + m[:, 1] * y + m[:, 2]
    new_y = m[:, 3] * x + m[:, 4] * y + m[:, 5]
    return new_x, new_y
