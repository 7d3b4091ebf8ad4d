"""RandomGamma layer."""

import keras

from lung_keras.augment import functional as F
from lung_keras.augment import _validation as V
from lung_keras.augment._base import PhotometricAugmentation
from lung_keras.augment._base import layer_arguments


@keras.saving.register_keras_serializable(package="lung_keras")
class RandomGamma(PhotometricAugmentation):
    """Random gamma curve `max * (x / max) ** gamma` per sample; masks untouched.

    Args:
        gamma_limit: range of gamma in **percent** (`gamma = value / 100`);
            a number `v` means `(1, v)` like Albumentations. Values must be
            >= 1 (percent). Default: `(80, 120)`.
        p: probability of changing each sample. Default: 0.5.
        seed: int or None; seeds the layer's `keras.random.SeedGenerator`.
        **kwargs: base `keras.layers.Layer` arguments.

    Transformation dict (`get_random_transformation`):
        `"apply"`: `(B,)` bool.
        `"gamma"`: `(B,)` exponent (already divided by 100).

    Albumentations equivalent:
        `A.RandomGamma(gamma_limit=(80, 120), p=0.5)`. uint8: the same look-up
        rule `((x / 255) ** gamma * 255).astype(uint8)` (truncation), computed
        in float32 (Albumentations: float64), so rare pixels can differ by 1
        grey level. Float images: `x ** gamma` on [0, 1] images (negative
        values are treated as 0 instead of giving NaN).

    Example:

    >>> import numpy as np
    >>> from lung_keras.augment import RandomGamma
    >>> layer = RandomGamma(gamma_limit=(200, 200), p=1.0)
    >>> x = np.full((1, 1, 1, 1), 0.5, "float32")
    >>> float(np.asarray(layer(x, training=True)).ravel()[0])
    0.25
    """

    elementwise = True

    arguments = {"gamma_limit": V.Argument(V.pair("one", low=1.0))}

    def __init__(self, gamma_limit=(80, 120), p=0.5, seed=None, **kwargs):
        super().__init__(**layer_arguments(locals()))

    def sample_parameters(self, info, seeds):
        return {"gamma": self._uniform(info, *self.gamma_limit, seeds) / 100.0}

    def apply_float(self, x, transformation, dtype):
        max_value = F.max_value_for_dtype(dtype)
        y = F.gamma(x, transformation["gamma"], max_value)
        y = F.quantize(y, dtype, self.rounding)
        return self._where_applied(transformation["apply"], y, x)
