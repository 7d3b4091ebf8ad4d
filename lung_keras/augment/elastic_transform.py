"""ElasticTransform layer."""

import keras
from keras import ops

from lung_keras.augment import functional as F
from lung_keras.augment import _validation as V
from lung_keras.augment._base import GeometricAugmentation
from lung_keras.augment._base import layer_arguments


@keras.saving.register_keras_serializable(package="lung_keras")
class ElasticTransform(GeometricAugmentation):
    """Elastic deformation: a smoothed random displacement field per sample.

    Noise fields `(dx, dy)` are drawn per pixel (normalized to [-1, 1]),
    smoothed with a Gaussian of standard deviation `sigma` and scaled by
    `alpha`; output pixel `(x, y)` reads input `(x + dx, y + dy)`.

    Args:
        alpha: displacement scale in pixels (>= 0). Default: 1.
        sigma: Gaussian smoothing sigma in pixels (>= 1). Default: 50.
        interpolation: image interpolation code, `1` linear (default) or `0`
            nearest.
        approximate: smooth with a fixed 17x17 kernel instead of OpenCV's
            automatic size `round(8 * sigma + 1) | 1`. Default: False.
        same_dxdy: use one field for both axes. Default: False.
        mask_interpolation: mask interpolation code, default `0` (nearest).
        noise_distribution: `"gaussian"` (standard normal divided by its
            per-sample max |value|) or `"uniform"` (U(-1, 1)). Default:
            `"gaussian"`.
        keypoint_remapping_method: accepted for compatibility (keypoints only).
        border_mode: OpenCV border code, default `0` (constant).
        fill: image fill for `border_mode=0`. Default: 0.
        fill_mask: mask fill for `border_mode=0`. Default: 0.
        p: probability of deforming each sample. Default: 0.5.
        seed: int or None; seeds the layer's `keras.random.SeedGenerator`.
        **kwargs: base `keras.layers.Layer` arguments.

    Transformation dict (`get_random_transformation`):
        `"apply"`: `(B,)` bool.
        `"displacement"`: `(B, H, W, 2)` float32 `(dx, dy)` in pixels, output
        -> input (`map_x = x + dx`, `map_y = y + dy`); zero where not applied.

    Albumentations equivalent:
        `A.ElasticTransform(alpha=1, sigma=50, ...)`, same defaults and field
        construction (`generate_displacement_fields`, including blurring the
        vertically stacked `(2H, W)` dx/dy array with `BORDER_REPLICATE`),
        then `cv2.remap`-style sampling. Random fields come from Keras' RNG, so
        only their distribution matches. The smoothing is done with dense
        `(n, n)` matrices (exact replicate border, cost O(H^2 W + H W^2) per
        sample). Cubic/area/lanczos interpolation is not supported.

    Example:

    >>> import numpy as np
    >>> from lung_keras.augment import ElasticTransform
    >>> layer = ElasticTransform(alpha=40, sigma=8, p=1.0, seed=3)
    >>> out = layer(np.random.rand(2, 32, 32, 1).astype("float32"), training=True)
    >>> tuple(out.shape)
    (2, 32, 32, 1)
    """

    arguments = {
        **GeometricAugmentation.arguments,
        "alpha": V.Argument(V.number(low=0.0)),
        "sigma": V.Argument(V.number(low=1.0)),
        "approximate": V.Argument(V.check_bool),
        "same_dxdy": V.Argument(V.check_bool),
        "noise_distribution": V.Argument(V.choice("gaussian", "uniform")),
        "keypoint_remapping_method": V.Argument(V.choice("direct", "mask")),
    }

    def __init__(
        self,
        alpha=1,
        sigma=50,
        interpolation=1,
        approximate=False,
        same_dxdy=False,
        mask_interpolation=0,
        noise_distribution="gaussian",
        keypoint_remapping_method="mask",
        border_mode=0,
        fill=0,
        fill_mask=0,
        p=0.5,
        seed=None,
        **kwargs,
    ):
        super().__init__(**layer_arguments(locals()))

    def sample_parameters(self, info, seeds):
        fields = 1 if self.same_dxdy else 2
        shape = (info["batch"], info["height"], info["width"], fields)
        if self.noise_distribution == "gaussian":
            noise = keras.random.normal(shape, seed=seeds.next())
            max_abs = ops.max(ops.abs(noise), axis=(1, 2, 3), keepdims=True)
            noise = ops.where(max_abs > 1e-6, noise / ops.maximum(max_abs, 1e-6), noise)
        else:
            noise = keras.random.uniform(shape, -1.0, 1.0, seed=seeds.next())
        if self.same_dxdy:
            noise = ops.concatenate([noise, noise], axis=-1)
        displacement = F.elastic_displacement(
            noise, self.alpha, self.sigma, self.approximate, self.same_dxdy
        )
        return {"displacement": displacement}

    def finalize_transformation(self, params, apply, info):
        mask = ops.cast(ops.reshape(apply, (-1, 1, 1, 1)), "float32")
        return {"apply": apply, "displacement": params["displacement"] * mask}

    def geometric_ops(self, transformation, height, width):
        return [("field", transformation["displacement"])]
