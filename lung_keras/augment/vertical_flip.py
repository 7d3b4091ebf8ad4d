"""VerticalFlip layer."""

import keras

from lung_keras.augment import functional as F
from lung_keras.augment._base import FlipAugmentation


@keras.saving.register_keras_serializable(package="lung_keras")
class VerticalFlip(FlipAugmentation):
    """Flip images and masks up-down with probability `p`, per sample.

    Args:
        p: probability of flipping each sample. Default: 0.5.
        seed: int or None; seeds the layer's `keras.random.SeedGenerator`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, ...).

    Transformation dict (`get_random_transformation`):
        `"apply"`: `(B,)` bool, flip this sample.
        `"matrix"`: `(B, 3, 3)` float32 output->input pixel-coordinate matrix,
        `y_in = (H - 1) - y_out` where applied, identity elsewhere.

    Albumentations equivalent:
        `A.VerticalFlip(p=0.5)`. Identical output (pure index flip); masks
        are flipped the same way and keep their dtype.

    Example:

    >>> import numpy as np
    >>> from lung_keras.augment import VerticalFlip
    >>> x = np.arange(6, dtype="uint8").reshape(1, 2, 3, 1)
    >>> y = VerticalFlip(p=1.0)(x, training=True)
    >>> np.asarray(y)[0, :, :, 0].tolist()
    [[3, 4, 5], [0, 1, 2]]
    """

    axis = 1

    def _flip_matrix(self, batch, height, width):
        return F.vertical_flip_matrix(batch, height)
