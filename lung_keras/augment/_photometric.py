"""Pointwise photometric kernels (private; public names in `functional`). Pure functions of tensors."""

import numpy as np
from keras import ops

from lung_keras.augment._dtypes import per_sample


def clip_where(x, apply, low, high):
    """`clip(x, low, high)` on samples where `apply` `(B,)` holds, `x` unchanged elsewhere.

    Two elementwise ops on the images (the per-sample bounds are `(-inf, inf)`
    where not applied) instead of a clip plus a select.
    """
    apply = ops.convert_to_tensor(apply)
    lo = ops.where(apply, ops.full_like(apply, low, "float32"), ops.full_like(apply, -np.inf, "float32"))
    hi = ops.where(apply, ops.full_like(apply, high, "float32"), ops.full_like(apply, np.inf, "float32"))
    return ops.minimum(ops.maximum(x, per_sample(lo)), per_sample(hi))


def gamma(x, gamma_value, max_value):
    """`max_value * (x / max_value) ** gamma` per sample (`gamma_value` `(B,)`)."""
    g = ops.reshape(ops.cast(gamma_value, "float32"), (-1, 1, 1, 1))
    normalized = ops.maximum(x, 0.0) / max_value
    return ops.power(normalized, g) * max_value
