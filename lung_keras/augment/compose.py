"""Compose container."""

import keras
from keras import ops

from lung_keras.augment import _validation as V
from lung_keras.augment._container import ContainerAugmentation


@keras.saving.register_keras_serializable(package="lung_keras")
class Compose(ContainerAugmentation):
    """Apply a list of augmentations in order, fused into one resample and one pixel pass.

    With probability `p` per sample the whole list runs (each child still
    draws its own `p`). Parameters for all steps are drawn up front, once per
    sample, and shared by images and masks. Execution fuses consecutive
    geometric steps into one sampling grid (one interpolation of the image,
    one nearest-neighbour lookup of the mask) and consecutive pointwise
    photometric steps into one float pass; see `fuse`.

    Args:
        transforms: list of `lung_keras.augment` layers (nested Compose /
            OneOf allowed).
        p: probability of running the list on each sample. Default: 1.0.
        seed: int or None. When set, every child (recursively) draws from the
            Compose's own `SeedGenerator`, so the whole policy is reproducible
            from this one seed (like `A.Compose(seed=...)`); when None, each
            child uses its own generator.
        mask_interpolation: None or an OpenCV interpolation code overriding
            the mask interpolation of every geometric step (Albumentations'
            `Compose(mask_interpolation=...)`). Default: None.
        fuse: fuse consecutive compatible steps (default True). False applies
            steps one by one (Albumentations' order of resampling, slower).
        **kwargs: base `keras.layers.Layer` arguments.

    Transformation dict (`get_random_transformation`):
        `"apply"`: `(B,)` bool, the Compose's own draw.
        `"steps"`: list with one transformation dict per child, in order;
        each child's `"apply"` (and derived matrix / field) already includes
        this Compose's decision.

    Fusion and exactness:
        Consecutive geometric steps fuse when they share `interpolation`,
        `border_mode`, `fill`, `fill_mask` and `mask_interpolation` (flips
        fuse with anything). The fused grid is the exact composition of the
        per-step output->input maps, so fused output equals step-by-step
        output up to the extra interpolation blur step-by-step adds (bilinear)
        and away from borders (a constant border introduced by one step is not
        resampled by the next). Photometric fusion is exact.

    Albumentations equivalent:
        `A.Compose(transforms, p=1.0, mask_interpolation=None, seed=None)`
        (no bbox/keypoint params). Known differences: with `fuse=True` the
        image is interpolated once instead of once per geometric step
        (sharper, fewer border artefacts).

    Example:

    >>> import numpy as np
    >>> from lung_keras.augment import (Compose, HorizontalFlip, Rotate,
    ...     RandomBrightnessContrast, GaussNoise)
    >>> policy = Compose([HorizontalFlip(p=0.5), Rotate(limit=15, p=1.0),
    ...                   RandomBrightnessContrast(p=0.5),
    ...                   GaussNoise(std_range=(0.01, 0.03), p=0.5)], seed=7)
    >>> batch = {"images": np.random.rand(4, 64, 64, 1).astype("float32"),
    ...          "segmentation_masks": np.zeros((4, 64, 64, 1), "uint8")}
    >>> out = policy(batch, training=True)
    >>> sorted(out)
    ['images', 'segmentation_masks']
    """

    # Keras-side settings: the bridge writes a Compose as Albumentations' `to_dict` does, without them.
    arguments = {
        "mask_interpolation": V.Argument(
            V.interpolation, V.supported_interpolation, optional=True, albumentations=False
        ),
        "fuse": V.Argument(V.check_bool, albumentations=False),
    }

    def __init__(self, transforms, p=1.0, seed=None, mask_interpolation=None, fuse=True, **kwargs):
        super().__init__(transforms, p=p, seed=seed, mask_interpolation=mask_interpolation, fuse=fuse, **kwargs)

    def random_transformation(self, info, seeds=None, apply=None, gate=None):
        if seeds is None:
            seeds = self._seed_stream(None)
        if apply is None:
            apply = self._bernoulli(info, seeds)
            if gate is not None:
                apply = ops.logical_and(apply, gate)
        child_seeds = self._child_seeds(seeds)
        steps = [child.random_transformation(info, child_seeds, gate=apply) for child in self.transforms]
        return {"apply": apply, "steps": steps}
