"""Seeds of the augmentation layers' random draws (private).

`SeedStream` hands out one seed per draw of a transformation, from a layer's `keras.random.SeedGenerator`
or from an explicit int; under a TensorFlow distribution strategy the replica id is folded into each seed,
so replicas draw different transforms for their samples.
"""

import keras
from keras import ops


class SeedStream:
    """Hands out seeds for successive random draws of one transformation.

    Wraps a `keras.random.SeedGenerator` (each draw advances it) or a Python
    int (each draw gets a distinct derived int, so draws stay independent).
    """

    def __init__(self, seed, drives_children=True):
        self.seed = seed
        self.count = 0
        # Containers hand this stream to their children only when it comes
        # from an explicit seed; otherwise children use their own generators.
        self.drives_children = drives_children

    def next(self):
        if isinstance(self.seed, keras.random.SeedGenerator):
            replica = _replica_id()
            if replica is None:
                return self.seed
            # Under a tf.distribute strategy every replica runs the same step with the same (mirrored) seed state:
            # without this, replica k would give its i-th sample the very transform replica 0 gives its i-th.
            return _ReplicaSeed(self.seed, replica)
        self.count += 1
        return (int(self.seed) * 1_000_003 + self.count * 7_919 + 17) % (2**31 - 1)


def _replica_id():
    """This replica's id in its sync group when several replicas run the step (TensorFlow distribution), else None.

    (JAX `keras.distribution` runs one program over the global batch: its draws are already per sample.)
    """
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync <= 1:
        return None
    return context.replica_id_in_sync_group


class _ReplicaSeed(keras.random.SeedGenerator):
    """The next seed of `generator` with the replica id added (keras.random takes only ints and SeedGenerators).

    It owns no state (the base `__init__`, which creates a variable, is not run); `next` advances `generator`.
    """

    def __init__(self, generator, replica):  # noqa: D107 (no super().__init__: no second state variable)
        self.generator, self.replica = generator, replica

    def next(self, ordered=True):
        seed = self.generator.next(ordered)
        return ops.add(seed, ops.cast(ops.stack([self.replica, 0]), seed.dtype))
