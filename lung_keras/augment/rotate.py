"""Rotate layer."""

import keras

from lung_keras.augment import functional as F
from lung_keras.augment import _validation as V
from lung_keras.augment._base import GeometricAugmentation
from lung_keras.augment._base import layer_arguments


@keras.saving.register_keras_serializable(package="lung_keras")
class Rotate(GeometricAugmentation):
    """Rotate images and masks about the image centre by a random angle per sample.

    The angle is drawn uniformly from `limit` (degrees); positive angles turn
    the content counter-clockwise on screen. Corners uncovered by the rotation
    are filled according to `border_mode`.

    Args:
        limit: range of angles in degrees. A number `a` means `(-a, a)`.
            Default: `(-90, 90)`.
        interpolation: image interpolation, OpenCV code: `1` linear
            (default) or `0` nearest.
        border_mode: OpenCV border code: `0` constant (default), `1`
            replicate, `2` reflect, `3` wrap, `4` reflect_101.
        rotate_method: accepted for Albumentations compatibility (bounding
            boxes only); has no effect here. Default: `"largest_box"`.
        crop_border: must be False (variable output size is not supported).
        mask_interpolation: mask interpolation code, default `0` (nearest).
        fill: image value (number or per-channel sequence) for
            `border_mode=0`. Default: 0.
        fill_mask: mask value for `border_mode=0`. Default: 0.
        p: probability of rotating each sample. Default: 0.5.
        seed: int or None; seeds the layer's `keras.random.SeedGenerator`.
        **kwargs: base `keras.layers.Layer` arguments.

    Transformation dict (`get_random_transformation`):
        `"apply"`: `(B,)` bool.
        `"angle"`: `(B,)` float32 sampled angle in degrees.
        `"matrix"`: `(B, 3, 3)` float32 output->input pixel-coordinate matrix
        (`invert_affine` of Albumentations' forward matrix about
        `((W-1)/2, (H-1)/2)`); identity where `"apply"` is False.

    Albumentations equivalent:
        `A.Rotate(limit=(-90, 90), interpolation=1, border_mode=0, fill=0,
        fill_mask=0, mask_interpolation=0, p=0.5)`; same angle distribution,
        same matrix and the same `cv2.warpAffine` (OpenCV 5) sampling rules:
        float bilinear positions, round-half-even for nearest and for uint8
        results, OpenCV border semantics. Measured on a 128x128 uint8 chest
        X-ray with fixed angles: identical pixels and masks (float32 images:
        max |diff| 6e-6). Differences: cubic/area/lanczos interpolation and
        `crop_border=True` are not supported.

    Example:

    >>> import numpy as np
    >>> from lung_keras.augment import Rotate
    >>> layer = Rotate(limit=15, p=1.0, seed=0)
    >>> batch = {"images": np.zeros((2, 64, 64, 1), "float32"),
    ...          "segmentation_masks": np.zeros((2, 64, 64, 1), "uint8")}
    >>> out = layer(batch, training=True)
    >>> tuple(out["segmentation_masks"].shape), str(out["segmentation_masks"].dtype)
    ((2, 64, 64, 1), 'uint8')
    """

    arguments = {
        **GeometricAugmentation.arguments,
        "limit": V.Argument(V.pair("symmetric")),
        "rotate_method": V.Argument(V.choice("largest_box", "ellipse")),
        "crop_border": V.Argument(V.check_bool, V.only(False, "changes the output size")),
    }

    def __init__(
        self,
        limit=(-90, 90),
        interpolation=1,
        border_mode=0,
        rotate_method="largest_box",
        crop_border=False,
        mask_interpolation=0,
        fill=0,
        fill_mask=0,
        p=0.5,
        seed=None,
        **kwargs,
    ):
        super().__init__(**layer_arguments(locals()))

    def sample_parameters(self, info, seeds):
        return {"angle": self._uniform(info, self.limit[0], self.limit[1], seeds)}

    def finalize_transformation(self, params, apply, info):
        matrix = F.rotation_matrix(params["angle"], info["height"], info["width"])
        return {"apply": apply, "angle": params["angle"], "matrix": F.select_matrix(apply, matrix)}

    def geometric_ops(self, transformation, height, width):
        return [("affine", transformation["matrix"])]
