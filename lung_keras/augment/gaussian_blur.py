"""GaussianBlur layer."""

import keras
from keras import ops

from lung_keras.augment import functional as F
from lung_keras.augment import _validation as V
from lung_keras.augment._base import PhotometricAugmentation
from lung_keras.augment._base import layer_arguments


@keras.saving.register_keras_serializable(package="lung_keras")
class GaussianBlur(PhotometricAugmentation):
    """Gaussian blur with a random sigma (and kernel size) per sample; masks untouched.

    `sigma ~ U(sigma_limit)`, `ksize ~ randint(blur_limit)` (inclusive); a
    drawn `ksize` of 0 means `int(sigma * 3.5) * 2 + 1` (PIL's rule) and even
    sizes are bumped to the next odd one. Separable filtering with
    reflect-101 borders, like `cv2.sepFilter2D`.

    Args:
        blur_limit: kernel size range; an int `k` means `(0, k)`.
            Default: 0 (size from sigma).
        sigma_limit: sigma range (>= 0); a number `s` means `(0, s)`.
            Default: `(0.5, 3.0)`.
        p: probability of blurring each sample. Default: 0.5.
        seed: int or None; seeds the layer's `keras.random.SeedGenerator`.
        **kwargs: base `keras.layers.Layer` arguments.

    Transformation dict (`get_random_transformation`):
        `"apply"`: `(B,)` bool.
        `"sigma"`: `(B,)` float32.
        `"ksize"`: `(B,)` int32 effective odd kernel size.
        `"kernel"`: `(B, K)` float32 normalized 1D kernels, zero padded and
        centred in `K` = the largest size the limits allow (static).

    Albumentations equivalent:
        `A.GaussianBlur(blur_limit=0, sigma_limit=(0.5, 3.0), p=0.5)`; same
        kernel (`create_gaussian_kernel_1d`), same border (reflect_101).
        uint8 results are rounded (as `cv2.sepFilter2D`); float32 rounding of
        the accumulation may differ by 1 grey level on rare pixels.

    Example:

    >>> import numpy as np
    >>> from lung_keras.augment import GaussianBlur
    >>> layer = GaussianBlur(sigma_limit=(1.0, 1.0), p=1.0)
    >>> x = np.zeros((1, 9, 9, 1), "float32"); x[0, 4, 4, 0] = 1.0
    >>> y = np.asarray(layer(x, training=True))
    >>> round(float(y.sum()), 4), bool(y[0, 4, 4, 0] < 1.0)
    (1.0, True)
    """

    elementwise = False
    rounding = "round"

    arguments = {
        "blur_limit": V.Argument(V.pair("zero", low=0, integer=True)),
        "sigma_limit": V.Argument(V.pair("zero", low=0.0)),
    }

    def __init__(self, blur_limit=0, sigma_limit=(0.5, 3.0), p=0.5, seed=None, **kwargs):
        super().__init__(**layer_arguments(locals()))
        self.max_kernel_size = max(
            F.gaussian_kernel_size(self.sigma_limit[1], 0),
            F.gaussian_kernel_size(self.sigma_limit[1], self.blur_limit[1]) if self.blur_limit[1] else 1,
        )

    def sample_parameters(self, info, seeds):
        sigma = self._uniform(info, *self.sigma_limit, seeds)
        lo, hi = self.blur_limit
        if lo == hi:
            ksize = ops.full((info["batch"],), lo, dtype="int32")
        else:
            ksize = keras.random.randint((info["batch"],), lo, hi + 1, seed=seeds.next(), dtype="int32")
        size = F.gaussian_kernel_size(sigma, ksize)
        kernel = F.gaussian_kernels(sigma, size, self.max_kernel_size)
        return {"sigma": sigma, "ksize": size, "kernel": kernel}

    def apply_float(self, x, transformation, dtype):
        y = F.separable_blur(x, ops.cast(transformation["kernel"], "float32"))
        y = F.quantize(y, dtype, self.rounding)
        return self._where_applied(transformation["apply"], y, x)
