"""HorizontalFlip layer."""

import keras
from keras import ops

from lung_keras.augment import functional as F
from lung_keras.augment._base import BaseAugmentation
from lung_keras.augment._base import GeometricAugmentation


@keras.saving.register_keras_serializable(package="lung_keras")
class HorizontalFlip(GeometricAugmentation):
    """Flip images and masks left-right with probability `p`, per sample.

    Args:
        p: probability of flipping each sample. Default: 0.5.
        seed: int or None; seeds the layer's `keras.random.SeedGenerator`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, ...).

    Transformation dict (`get_random_transformation`):
        `"apply"`: `(B,)` bool, flip this sample.
        `"matrix"`: `(B, 3, 3)` float32 output->input pixel-coordinate matrix,
        `x_in = (W - 1) - x_out` where applied, identity elsewhere.

    Albumentations equivalent:
        `A.HorizontalFlip(p=0.5)`. Identical output (pure index flip); masks
        are flipped the same way and keep their dtype.

    Example:

    >>> import numpy as np
    >>> from lung_keras.augment import HorizontalFlip
    >>> x = np.arange(6, dtype="uint8").reshape(1, 2, 3, 1)
    >>> y = HorizontalFlip(p=1.0)(x, training=True)
    >>> np.asarray(y)[0, :, :, 0].tolist()
    [[2, 1, 0], [5, 4, 3]]
    """

    axis = 2
    pixel_permutation = True

    def __init__(self, p=0.5, seed=None, **kwargs):
        super().__init__(p=p, seed=seed, **kwargs)

    def resample_key(self):
        return None

    def _flip_matrix(self, batch, height, width):
        return F.horizontal_flip_matrix(batch, width)

    def finalize_transformation(self, params, apply, info):
        matrix = self._flip_matrix(info["batch"], info["height"], info["width"])
        return {"apply": apply, "matrix": F.select_matrix(apply, matrix)}

    def geometric_ops(self, transformation, height, width):
        return [("affine", transformation["matrix"])]

    def _flip(self, x, transformation):
        apply = ops.reshape(transformation["apply"], (-1, 1, 1, 1))
        return ops.where(apply, ops.flip(x, axis=self.axis), x)

    def _transform_images(self, images, transformation):
        return self._flip(images, transformation)

    def _transform_masks(self, masks, transformation):
        return self._flip(masks, transformation)

    def get_config(self):
        return BaseAugmentation.get_config(self)
