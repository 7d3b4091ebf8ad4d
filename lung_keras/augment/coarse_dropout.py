"""CoarseDropout layer."""

import keras
from keras import ops

from lung_keras.augment import _validation as V
from lung_keras.augment._base import PhotometricAugmentation
from lung_keras.augment._base import layer_arguments

FILL_MODES = ("random", "random_uniform")
INPAINT_MODES = ("inpaint_telea", "inpaint_ns")


def _hole_range(integer=False, low=0):
    """`(min, max)` kept as given (ints are pixels, floats fractions), `low <= min <= max`."""

    def normalize(value, name):
        try:
            lo, hi = value
        except (TypeError, ValueError):
            raise ValueError(f"`{name}` must be a pair (min, max). Received: {name}={value!r}") from None
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (lo, hi)):
            raise ValueError(f"`{name}` must hold numbers. Received: {name}={value!r}")
        if integer and not all(isinstance(v, int) for v in (lo, hi)):
            raise ValueError(f"`{name}` must hold integers. Received: {name}={value!r}")
        if lo > hi or lo < low:
            raise ValueError(f"`{name}` must satisfy {low} <= min <= max. Received: {name}={value!r}")
        return (lo, hi)

    return normalize


def _fill(value, name):
    """Albumentations' CoarseDropout `fill`: a number, a per-channel sequence, or a named fill mode."""
    if isinstance(value, str):
        return V.check_choice(value, name, FILL_MODES + INPAINT_MODES)
    return V.check_fill(value, name)


def _supported_fill(value, name):
    if isinstance(value, tuple) or value in INPAINT_MODES:
        raise ValueError(
            f"`{name}` must be a number or one of {FILL_MODES} (inpainting is not supported, nor per-channel fills). "
            f"Received: {name}={value!r}"
        )


@keras.saving.register_keras_serializable(package="lung_keras")
class CoarseDropout(PhotometricAugmentation):
    """Fill random rectangles of the image (occlusions, dense opacities); masks untouched.

    Per sample, `n` holes (`n` uniform in `num_holes_range`, inclusive) of random height and width are placed
    uniformly inside the image and filled; a later hole covers an earlier one where they overlap. With
    `fill_mask=None` (the only mode supported) the mask is unchanged, so the model learns that the lung goes on
    behind an occlusion, as it does behind a tuberculous consolidation.

    Args:
        num_holes_range: `(min, max)` holes per sample, integers >= 1. Default: `(1, 2)`.
        hole_height_range: `(min, max)` hole height: floats in [0, 1] are fractions of the image height
            (`int(height * uniform(min, max))`), integers are pixels (uniform integer, max capped at the
            height). Albumentations decides by `max >= 1`. Default: `(0.1, 0.2)`.
        hole_width_range: the same for widths. Default: `(0.1, 0.2)`.
        fill: a number (value units: 0-255 for uint8, 0-1 for float), `"random_uniform"` (one uniform random
            value per hole and channel over the dtype's range) or `"random"` (a uniform random value per
            pixel). Default: 0.
        fill_mask: must be None (masks are not modified).
        p: probability of applying per sample. Default: 0.5.
        seed: int or None.

    Transformation dict (`get_random_transformation`):
        `"apply"`: `(B,)` bool. `"holes"`: `(B, K, 4)` int32 `[x_min, y_min, x_max, y_max]` (exclusive max),
        `K = num_holes_range[1]`. `"active"`: `(B, K)` bool, the first `n` holes. `"fill"`: `(B, K, C)` value
        per hole and channel, or `(B, H, W, C)` per pixel for `"random"`.

    Albumentations equivalent:
        `A.CoarseDropout(num_holes_range=(1, 2), hole_height_range=(0.1, 0.2), hole_width_range=(0.1, 0.2),
        fill=0, fill_mask=None, p=0.5)`: same sampling rules and hole filling (pixel-identical for injected
        holes). Not supported: `fill` as a per-channel tuple, `"inpaint_telea"` / `"inpaint_ns"`, and
        `fill_mask`.

    Example:

    >>> import numpy as np
    >>> from lung_keras.augment import CoarseDropout
    >>> layer = CoarseDropout(num_holes_range=(1, 1), hole_height_range=(4, 4), hole_width_range=(4, 4),
    ...                       fill=1.0, p=1.0, seed=0)
    >>> out = np.asarray(layer(np.zeros((1, 8, 8, 1), "float32"), training=True))
    >>> int(out.sum())
    16
    """

    arguments = {
        "num_holes_range": V.Argument(_hole_range(integer=True, low=1)),
        "hole_height_range": V.Argument(_hole_range()),
        "hole_width_range": V.Argument(_hole_range()),
        "fill": V.Argument(_fill, _supported_fill),
        "fill_mask": V.Argument(V.check_fill, V.only(None, "would change the masks"), optional=True),
    }

    def __init__(self, num_holes_range=(1, 2), hole_height_range=(0.1, 0.2), hole_width_range=(0.1, 0.2), fill=0,
                 fill_mask=None, p=0.5, seed=None, **kwargs):
        super().__init__(**layer_arguments(locals()))

    def _sizes(self, info, limits, extent, seeds, shape):
        low, high = limits
        extent_f = ops.cast(extent, "float32")
        if high >= 1:  # pixels: uniform integer in [low, min(high, extent)]
            top = ops.minimum(ops.cast(high, "float32"), extent_f)
            u = self._uniform(info, 0.0, 1.0, seeds, shape)
            return ops.cast(ops.floor(float(low) + u * (top - float(low) + 1.0)), "int32")
        return ops.cast(ops.floor(extent_f * self._uniform(info, low, high, seeds, shape)), "int32")

    def sample_parameters(self, info, seeds):
        batch, height, width = info["batch"], info["height"], info["width"]
        low, high = self.num_holes_range
        shape = (batch, high)
        count = ops.floor(self._uniform(info, low, high + 1, seeds))
        active = ops.arange(high, dtype="float32")[None, :] < ops.minimum(count, float(high))[:, None]
        heights = self._sizes(info, self.hole_height_range, height, seeds, shape)
        widths = self._sizes(info, self.hole_width_range, width, seeds, shape)
        y_min = ops.cast(ops.floor(self._uniform(info, 0.0, 1.0, seeds, shape)
                                   * ops.cast(height - heights + 1, "float32")), "int32")
        x_min = ops.cast(ops.floor(self._uniform(info, 0.0, 1.0, seeds, shape)
                                   * ops.cast(width - widths + 1, "float32")), "int32")
        holes = ops.stack([x_min, y_min, x_min + widths, y_min + heights], axis=-1)
        max_value = float(info["max_value"])
        integer = "int" in str(info["dtype"])
        if self.fill == "random":
            fill_shape = (batch, height, width, info["channels"])
        else:
            fill_shape = (batch, high, info["channels"])
        if isinstance(self.fill, str):
            top = max_value + 1.0 if integer else max_value
            fill = self._uniform(info, 0.0, top, seeds, fill_shape)
            fill = ops.minimum(ops.floor(fill), max_value) if integer else fill
        else:
            fill = ops.full(fill_shape, float(self.fill), dtype="float32")
        return {"holes": holes, "active": active, "fill": fill}

    def apply_float(self, x, transformation, dtype):
        holes = ops.convert_to_tensor(transformation["holes"])
        shape = ops.shape(x)
        rows = ops.arange(shape[1], dtype="int32")[None, None, :, None]
        cols = ops.arange(shape[2], dtype="int32")[None, None, None, :]
        corner = [holes[..., i][..., None, None] for i in range(4)]
        inside = ops.logical_and(ops.logical_and(cols >= corner[0], cols < corner[2]),
                                 ops.logical_and(rows >= corner[1], rows < corner[3]))
        inside = ops.logical_and(inside, ops.convert_to_tensor(transformation["active"])[..., None, None])
        covered = ops.any(inside, axis=1)[..., None]  # (B, H, W, 1)
        fill = ops.cast(transformation["fill"], "float32")
        if self.fill == "random":
            value = fill
        else:
            k = ops.shape(inside)[1]
            order = ops.cast(inside, "int32") * ops.arange(1, k + 1, dtype="int32")[None, :, None, None]
            last = ops.one_hot(ops.argmax(order, axis=1), k, dtype="float32")  # the last hole covering a pixel
            value = ops.einsum("bhwk,bkc->bhwc", last, fill)
        apply = ops.reshape(ops.convert_to_tensor(transformation["apply"]), (-1, 1, 1, 1))
        return ops.where(ops.logical_and(covered, apply), ops.cast(value, x.dtype), x)
