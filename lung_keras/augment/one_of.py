"""OneOf container."""

import keras
import numpy as np
from keras import ops

from lung_keras.augment._container import ContainerAugmentation


@keras.saving.register_keras_serializable(package="lung_keras")
class OneOf(ContainerAugmentation):
    """Apply exactly one of several augmentations, chosen per sample, with probability `p`.

    The child is chosen with probability proportional to its own `p`; the
    chosen child is then always applied (its `p` only weights the choice),
    as in Albumentations.

    Args:
        transforms: list of `lung_keras.augment` layers.
        p: probability of applying one child to each sample. Default: 0.5.
        seed: int or None. When set, the children draw from this layer's
            `SeedGenerator` (reproducible from one seed); otherwise each child
            uses its own.
        **kwargs: base `keras.layers.Layer` arguments.

    Transformation dict (`get_random_transformation`):
        `"apply"`: `(B,)` bool, whether a child is applied.
        `"choice"`: `(B,)` int32 index of the chosen child.
        `"steps"`: one transformation dict per child; child `i`'s `"apply"`
        is `apply & (choice == i)`.

    Albumentations equivalent:
        `A.OneOf(transforms, p=0.5)`. If every child has `p=0`, this layer is
        the identity (Albumentations would fail on the 0/0 weights). Executed
        like `Compose`: geometric children share one resample (only one of
        them is active per sample, so fusion is exact).

    Example:

    >>> import numpy as np
    >>> from lung_keras.augment import OneOf, RandomGamma, GaussNoise
    >>> layer = OneOf([RandomGamma(p=1.0), GaussNoise(std_range=(0.01, 0.02), p=1.0)],
    ...               p=1.0, seed=0)
    >>> t = layer.get_random_transformation(np.zeros((5, 8, 8, 1), "float32"))
    >>> tuple(t["choice"].shape)
    (5,)
    """

    def __init__(self, transforms, p=0.5, seed=None, **kwargs):
        super().__init__(transforms, p=p, seed=seed, **kwargs)
        if not self.transforms:
            raise ValueError("OneOf needs at least one transform. Received: transforms=[]")
        weights = np.array([t.p for t in self.transforms], dtype=np.float64)
        total = weights.sum()
        self._probs = (weights / total).tolist() if total > 0 else None

    def random_transformation(self, info, seeds=None, apply=None, gate=None):
        if seeds is None:
            seeds = self._seed_stream(None)
        batch = info["batch"]
        if self._probs is None:
            apply = ops.zeros((batch,), dtype="bool")
        elif apply is None:
            apply = self._bernoulli(info, seeds)
            if gate is not None:
                apply = ops.logical_and(apply, gate)
        if len(self.transforms) == 1:
            choice = ops.zeros((batch,), dtype="int32")
        else:
            u = keras.random.uniform((batch,), 0.0, 1.0, seed=seeds.next())
            edges = np.cumsum(self._probs if self._probs else [1.0])[:-1].astype("float32")
            choice = ops.sum(
                ops.cast(u[:, None] >= ops.convert_to_tensor(edges)[None, :], "int32"), axis=1
            )
        child_seeds = self._child_seeds(seeds)
        steps = [
            child.random_transformation(info, child_seeds, apply=ops.logical_and(apply, choice == i))
            for i, child in enumerate(self.transforms)
        ]
        return {"apply": apply, "choice": choice, "steps": steps}
