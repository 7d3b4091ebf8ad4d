"""AugmentedModel: in-model augmentation applied in train_step only."""

import keras

from lung_keras.augment._base import BaseAugmentation

_BACKEND = keras.backend.backend()


@keras.saving.register_keras_serializable(package="lung_keras")
class AugmentedModel(keras.Model):
    """Wrap a model so that `fit` augments every training batch (x, y) on the device.

    `train_step` runs `policy({"images": x, "segmentation_masks": y},
    training=True)` and then the wrapped model's usual training step on the
    augmented batch; `predict`, `evaluate` and plain calls see the raw data
    (`call` just forwards to `model`). One draw per sample is shared by the
    image and its mask. Works with `model.fit` on TensorFlow (`tf.function`,
    optionally `jit_compile=True`) and on JAX (`jit_compile=True`, the
    policy's seed state threads through the stateless train step).

    Args:
        model: the `keras.Model` to train (e.g. a U-Net); its weights are the
            wrapper's weights.
        policy: a `lung_keras.augment` layer, typically a `Compose`.
        **kwargs: base `keras.Model` arguments (`name`, ...).

    Albumentations equivalent:
        None directly: it is where an `A.Compose` policy would run in a
        PyTorch-style data loader, moved into the compiled train step.
        Without `y` (unsupervised `fit(x)`), only the images are augmented.

    Example:

    >>> import keras
    >>> from lung_keras.augment import AugmentedModel, Compose, HorizontalFlip, Rotate
    >>> inputs = keras.Input((32, 32, 1))
    >>> outputs = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inputs)
    >>> unet = keras.Model(inputs, outputs)
    >>> model = AugmentedModel(unet, Compose([HorizontalFlip(), Rotate(limit=10)], seed=0))
    >>> model.compile(optimizer="adam", loss="binary_crossentropy")
    """

    def __init__(self, model, policy, **kwargs):
        super().__init__(**kwargs)
        if isinstance(model, dict):
            model = keras.saving.deserialize_keras_object(model)
        if isinstance(policy, dict):
            policy = keras.saving.deserialize_keras_object(policy)
        if not isinstance(model, keras.Model):
            raise ValueError(f"`model` must be a keras.Model. Received: model={model!r}")
        if not isinstance(policy, BaseAugmentation):
            raise ValueError(
                f"`policy` must be a lung_keras.augment layer (e.g. Compose). Received: policy={policy!r}"
            )
        self.model = model
        self.policy = policy

    def build(self, input_shape=None):
        if not self.model.built and input_shape is not None:
            self.model.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def augment(self, x, y=None):
        """Apply the policy to a batch (training mode); returns `(x, y)`."""
        if y is None:
            return self.policy(x, training=True), None
        out = self.policy({"images": x, "segmentation_masks": y}, training=True)
        return out["images"], out["segmentation_masks"]

    if _BACKEND == "jax":

        def train_step(self, state, data):
            trainable, non_trainable, optimizer_vars, metrics_vars = state
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
            position = {id(v): i for i, v in enumerate(self.non_trainable_variables)}
            index = [position[id(v)] for v in self.policy.non_trainable_variables]
            policy_values = [non_trainable[i] for i in index]
            inputs = x if y is None else {"images": x, "segmentation_masks": y}
            out, policy_values = self.policy.stateless_call([], policy_values, inputs, training=True)
            if y is None:
                x = out
            else:
                x, y = out["images"], out["segmentation_masks"]
            non_trainable = list(non_trainable)
            for i, value in zip(index, policy_values):
                non_trainable[i] = value
            data = keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
            return super().train_step((trainable, non_trainable, optimizer_vars, metrics_vars), data)

    else:

        def train_step(self, data):
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
            x, y = self.augment(x, y)
            return super().train_step(keras.utils.pack_x_y_sample_weight(x, y, sample_weight))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "model": keras.saving.serialize_keras_object(self.model),
                "policy": keras.saving.serialize_keras_object(self.policy),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        config["policy"] = keras.saving.deserialize_keras_object(config["policy"])
        return cls(**config)
