"""RandomBrightnessContrast layer."""

import keras
from keras import ops

from lung_keras.augment import functional as F
from lung_keras.augment import _validation as V
from lung_keras.augment._base import PhotometricAugmentation
from lung_keras.augment._base import layer_arguments


@keras.saving.register_keras_serializable(package="lung_keras")
class RandomBrightnessContrast(PhotometricAugmentation):
    """Random contrast (multiply) and brightness (add), `clip(x * alpha + beta)`, per sample.

    `alpha = 1 + c` with `c ~ U(contrast_limit)`; `beta = b * max_value`
    (`brightness_by_max=True`) or `b * mean(image)` with `b ~ U(brightness_limit)`.
    Contrast is about 0, not about the image mean (unlike Keras'
    `RandomContrast`). Masks are untouched.

    Args:
        brightness_limit: range of `b`; a number `v` means `(-v, v)`.
            Default: `(-0.2, 0.2)`.
        contrast_limit: range of `c`; a number `v` means `(-v, v)`.
            Default: `(-0.2, 0.2)`.
        brightness_by_max: scale `b` by the dtype maximum (255 for uint8, 1.0
            for float) if True, by the per-sample image mean otherwise.
            Default: True.
        ensure_safe_range: shrink alpha/beta so that no value needs clipping
            (Albumentations' `get_safe_brightness_contrast_params`).
            Default: False.
        p: probability of changing each sample. Default: 0.5.
        seed: int or None; seeds the layer's `keras.random.SeedGenerator`.
        **kwargs: base `keras.layers.Layer` arguments.

    Transformation dict (`get_random_transformation`):
        `"apply"`: `(B,)` bool.
        `"alpha"`: `(B,)` contrast factor `1 + c`.
        `"beta"`: `(B,)` brightness *fraction* `b`; the value added is
        `b * max_value` or `b * mean(image)` (mean taken when applied, so it
        is exact inside a Compose). Albumentations' absolute `beta` equals
        this times max value / mean.

    Albumentations equivalent:
        `A.RandomBrightnessContrast(brightness_limit=(-0.2, 0.2),
        contrast_limit=(-0.2, 0.2), brightness_by_max=True,
        ensure_safe_range=False, p=0.5)`. Float images are assumed in [0, 1]
        and clipped to it; uint8 results are truncated like Albumentations'
        look-up table (`astype(uint8)`), so pixels match exactly up to float32
        rounding at integer boundaries (max 1 grey level).

    Example:

    >>> import numpy as np
    >>> from lung_keras.augment import RandomBrightnessContrast
    >>> layer = RandomBrightnessContrast(brightness_limit=(0.1, 0.1),
    ...                                  contrast_limit=(0.0, 0.0), p=1.0)
    >>> x = np.full((1, 2, 2, 1), 100, "uint8")
    >>> int(np.asarray(layer(x, training=True)).max())   # 100 + 0.1 * 255 -> 125
    125
    """

    elementwise = True

    arguments = {
        "brightness_limit": V.Argument(V.pair("symmetric")),
        "contrast_limit": V.Argument(V.pair("symmetric")),
        "brightness_by_max": V.Argument(V.check_bool),
        "ensure_safe_range": V.Argument(V.check_bool),
    }

    def __init__(
        self,
        brightness_limit=(-0.2, 0.2),
        contrast_limit=(-0.2, 0.2),
        brightness_by_max=True,
        ensure_safe_range=False,
        p=0.5,
        seed=None,
        **kwargs,
    ):
        super().__init__(**layer_arguments(locals()))

    def sample_parameters(self, info, seeds):
        alpha = 1.0 + self._uniform(info, *self.contrast_limit, seeds)
        beta = self._uniform(info, *self.brightness_limit, seeds)
        return {"alpha": alpha, "beta": beta}

    def apply_float(self, x, transformation, dtype):
        max_value = F.max_value_for_dtype(dtype)
        alpha = ops.cast(transformation["alpha"], "float32")
        if self.brightness_by_max:
            beta = ops.cast(transformation["beta"], "float32") * max_value
        else:
            beta = ops.cast(transformation["beta"], "float32") * ops.mean(x, axis=(1, 2, 3))
        if self.ensure_safe_range:
            safe_beta_pos = ops.clip(beta, 0.0, max_value)
            safe_alpha_pos = ops.minimum(alpha, (max_value - safe_beta_pos) / max_value)
            safe_beta_neg = ops.minimum(beta, max_value)
            safe_alpha_neg = ops.maximum(alpha, -safe_beta_neg / max_value)
            positive = alpha > 0
            alpha = ops.where(positive, safe_alpha_pos, safe_alpha_neg)
            beta = ops.where(positive, safe_beta_pos, safe_beta_neg)
        # Samples not applied get alpha=1, beta=0 and no clip: `x * 1 + 0` is x exactly (and
        # x is already on the integer grid for integer dtypes), so no select over the images.
        apply = ops.convert_to_tensor(transformation["apply"])
        alpha = ops.where(apply, alpha, ops.ones_like(alpha))
        beta = ops.where(apply, beta, ops.zeros_like(beta))
        y = F.clip_where(x * F.per_sample(alpha) + F.per_sample(beta), apply, 0.0, max_value)
        return F.quantize(y, dtype, self.rounding, clip=False)  # floor of [0, max] stays inside
