"""Base classes shared by the augmentation layers (private; use the public layers).

Life of one call `layer(data)`:

1. `data` is a tensor `(H, W, C)` / `(B, H, W, C)` or a dict with `"images"` and
   optionally `"segmentation_masks"` (same rank as the images, or without the
   channel axis) and `"labels"` (passed through); any other key raises.
2. `training` follows Keras' preprocessing layers: called on its own with no
   `training` argument the layer augments; `training=False` (or a model's
   `predict` / `evaluate`) returns the input unchanged; inside a model it
   follows the model (`fit` augments).
3. `get_random_transformation(data, training, seed)` draws every random
   parameter once per sample (a dict of `(B, ...)` tensors; `"apply"` is the
   per-sample Bernoulli(`p`) draw). The same dict drives images and masks.
4. `transform_images(images, transformation, training=True)` and
   `transform_segmentation_masks(masks, transformation, training=True)` apply
   it; they are pure (no randomness) and accept rank 3 or rank 4 inputs.

Inside `tf.data.Dataset.map` on another backend (JAX), the call runs eagerly
through `tf.py_function`, as Keras' own preprocessing layers also work there.

Seeds: a layer owns a `keras.random.SeedGenerator(seed)`; two layers built with
the same integer `seed` produce the same draws. `get_random_transformation`
also takes an explicit `seed` (int or `SeedGenerator`).

Input checks and batching live in `_inputs`, seed streams in `_seeds`; this
module holds the layer classes.
"""

import functools
import inspect

import keras
from keras import ops

from lung_keras.augment import _execution as X
from lung_keras.augment import _validation as V
from lung_keras.augment import functional as F
from lung_keras.augment._inputs import batched_images
from lung_keras.augment._inputs import call_through_py_function
from lung_keras.augment._inputs import check_inputs
from lung_keras.augment._inputs import data_info
from lung_keras.augment._inputs import images_of
from lung_keras.augment._inputs import in_foreign_tf_graph
from lung_keras.augment._inputs import same_spatial
from lung_keras.augment._inputs import tensor_rank
from lung_keras.augment._seeds import SeedStream


def layer_arguments(local_vars):
    """What a layer's `__init__` received, from its `locals()`, to hand to the base class in one line.

    `super().__init__(**layer_arguments(locals()))`: the declared arguments, `p`, `seed` and the base Keras
    arguments (`name`, `dtype`, ...) from `**kwargs`.
    """
    received = {k: v for k, v in local_vars.items() if k not in ("self", "__class__", "kwargs")}
    received.update(local_vars.get("kwargs", {}))
    return received


class BaseAugmentation(keras.layers.Layer):
    """Common machinery of every lung_keras augmentation layer (see module doc).

    A subclass declares its constructor arguments once, in `arguments` (`{name: V.Argument}`), and its
    `__init__` signature gives their defaults (Albumentations' own). The base `__init__` normalizes and
    checks each one (`Argument.parse`) and stores the canonical value as an attribute of that name;
    `get_config` writes them back; the Albumentations bridge reads the same table.
    """

    #: resamples pixel positions (images with `interpolation`, masks with `mask_interpolation`)
    geometric = False
    #: pointwise photometric op that Compose can fuse into one pass
    elementwise = False
    #: the layer's own constructor arguments (beyond `p` and `seed`): `{name: V.Argument}`
    arguments = {}

    def __init__(self, p=0.5, seed=None, **kwargs):
        received = {name: kwargs.pop(name) for name in self.arguments if name in kwargs}
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.p = V.check_probability(p)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"`seed` must be None or an int. Received: seed={seed!r}")
        self.seed = seed
        defaults = self.argument_defaults()
        values = {
            name: argument.parse(received.get(name, defaults[name]), name) for name, argument in self.arguments.items()
        }
        for name, value in self.resolve_arguments(values, received).items():
            setattr(self, name, value)
        self.generator = keras.random.SeedGenerator(seed)
        # All state (the seed generator) exists now; nothing depends on shapes.
        self.built = True

    @classmethod
    def argument_defaults(cls):
        """`{name: default}` of the declared `arguments`, read from the `__init__` signature."""
        return _signature_defaults(cls)

    @classmethod
    def resolve_arguments(cls, values, received):
        """Rules across arguments (e.g. Affine's translate pair) on the canonical `values`; returns the values.

        `received` holds the arguments as given, for the "Received: ..." part of an error.
        """
        return values

    # ------------------------------------------------------------------ sampling

    def get_random_transformation(self, data, training=True, seed=None):
        """Draw this layer's per-sample parameters for a batch.

        Args:
            data: image tensor (rank 3 or 4) or dict with `"images"`.
            training: when False, returns None (identity).
            seed: None (use the layer's SeedGenerator), an int or a
                `keras.random.SeedGenerator`.

        Returns:
            dict of per-sample tensors (see the class docstring for the keys);
            always contains `"apply"`: `(B,)` bool.
        """
        if not training:
            return None
        images, _ = batched_images(images_of(data))
        return self.random_transformation(data_info(images), self._seed_stream(seed))

    def _seed_stream(self, seed):
        if isinstance(seed, SeedStream):
            return seed
        if seed is None:
            return SeedStream(self.generator, drives_children=self.seed is not None)
        if isinstance(seed, keras.random.SeedGenerator) or (
            isinstance(seed, int) and not isinstance(seed, bool)
        ):
            return SeedStream(seed)
        raise ValueError(f"`seed` must be None, an int or a keras.random.SeedGenerator. Received: seed={seed!r}")

    def random_transformation(self, info, seeds=None, apply=None, gate=None):
        """Internal sampling entry point used by the layer and by containers.

        `apply` forces the per-sample apply flags (used by OneOf); otherwise
        Bernoulli(`p`) is drawn and AND-ed with `gate` (an enclosing
        container's flags).
        """
        if seeds is None:
            seeds = SeedStream(self.generator, drives_children=self.seed is not None)
        if apply is None:
            apply = self._bernoulli(info, seeds)
            if gate is not None:
                apply = ops.logical_and(apply, gate)
        params = self.sample_parameters(info, seeds)
        return self.finalize_transformation(params, apply, info)

    def _bernoulli(self, info, seeds):
        batch = info["batch"]
        if self.p >= 1.0:
            return ops.ones((batch,), dtype="bool")
        if self.p <= 0.0:
            return ops.zeros((batch,), dtype="bool")
        u = keras.random.uniform((batch,), 0.0, 1.0, seed=seeds.next())
        return u < self.p

    def sample_parameters(self, info, seeds):
        """Subclasses: draw raw per-sample parameters (dict of `(B, ...)` tensors)."""
        return {}

    def finalize_transformation(self, params, apply, info):
        """Subclasses: fold `apply` into derived tensors (identity where False)."""
        out = dict(params)
        out["apply"] = apply
        return out

    @staticmethod
    def _uniform(info, low, high, seeds, shape=None):
        shape = (info["batch"],) if shape is None else shape
        if low == high:
            return ops.full(shape, float(low), dtype="float32")
        return keras.random.uniform(shape, float(low), float(high), seed=seeds.next())

    # ------------------------------------------------------------------ applying

    def transform_images(self, images, transformation, training=True):
        """Apply `transformation` to images (rank 3 or 4, same dtype returned); identity unless `training`."""
        return self._apply_batched(self._transform_images, images, transformation, training)

    def transform_segmentation_masks(self, masks, transformation, training=True):
        """Apply `transformation` to masks (rank 3 or 4, dtype kept); identity unless `training`."""
        return self._apply_batched(self._transform_masks, masks, transformation, training)

    @staticmethod
    def _apply_batched(transform, x, transformation, training):
        if transformation is None or not training:
            return x
        x, unbatched = batched_images(x)
        out = transform(x, transformation)
        return out[0] if unbatched else out

    def _transform_pair(self, images, masks, transformation):
        """Batched images and masks (or None) through `transformation`: what one call runs (see `X.run_transforms`)."""
        out_masks = self._transform_masks(masks, transformation) if masks is not None else None
        return self._transform_images(images, transformation), out_masks

    def _transform_images(self, images, transformation):
        raise NotImplementedError

    def _transform_masks(self, masks, transformation):
        return masks

    # ---------------------------------------------------------------------- call

    def __call__(self, data, *args, **kwargs):
        if in_foreign_tf_graph(data):
            return call_through_py_function(self, data, args, kwargs)
        return super().__call__(data, *args, **kwargs)

    def call(self, data, training=True):
        # training=True by default, as Keras' preprocessing layers: called alone they augment; a model's
        # predict/evaluate (training=False) and an explicit training=False return the input unchanged.
        check_inputs(data)
        if not training:
            return data
        return self._augment(data)

    def _augment(self, data):
        is_dict = isinstance(data, dict)
        images = images_of(data)
        images, unbatched = batched_images(images)
        masks = data.get("segmentation_masks") if is_dict else None
        mask_squeeze = False
        if masks is not None:
            if tensor_rank(masks) == (2 if unbatched else 3):
                masks = ops.expand_dims(masks, -1)
                mask_squeeze = True
            if unbatched:
                masks = ops.expand_dims(masks, 0)
            if tensor_rank(masks) != 4 or not same_spatial(masks, images):
                raise ValueError(
                    "segmentation_masks must have the rank of the images, or one less (no channel "
                    f"axis). Received: segmentation_masks.shape={tuple(masks.shape)}"
                )
        info = data_info(images)
        transformation = self.random_transformation(info, self._seed_stream(None))
        out_images, out_masks = X.run_transforms(self._transform_pair, images, masks, transformation)
        if unbatched:
            out_images = out_images[0]
            out_masks = out_masks[0] if out_masks is not None else None
        if mask_squeeze:
            out_masks = out_masks[..., 0]
        if not is_dict:
            return out_images
        result = dict(data)
        result["images"] = out_images
        if out_masks is not None:
            result["segmentation_masks"] = out_masks
        return result

    # ------------------------------------------------------------------- shapes

    def build(self, input_shape=None):
        # No weights; only the SeedGenerator state created in __init__.
        for layer in getattr(self, "transforms", []):
            if not layer.built:
                layer.build(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return input_shape

    # ------------------------------------------------------------------ saving
    # Keras saves a layer's own variables only; the seed generator's state (its position in the random
    # stream) is saved beside them, so a reloaded policy or AugmentedModel continues the same stream.
    _SEED_STATE_KEY = "seed_generator_state"

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[self._SEED_STATE_KEY] = keras.ops.convert_to_numpy(self.generator.state.value)

    def load_own_variables(self, store):
        if self._SEED_STATE_KEY in store.keys():
            self.generator.state.assign(store[self._SEED_STATE_KEY])
        own = [key for key in store.keys() if key != self._SEED_STATE_KEY]
        if own or self._trainable_variables or self._non_trainable_variables:
            super().load_own_variables({key: store[key] for key in own})

    def compute_output_spec(self, data, training=None):
        return keras.tree.map_structure(
            lambda x: keras.KerasTensor(x.shape, dtype=x.dtype), data
        )

    def get_config(self):
        config = super().get_config()
        config.update({"p": self.p, "seed": self.seed})
        config.update({name: V.to_config_value(getattr(self, name)) for name in self.arguments})
        return config


@functools.cache
def _signature_defaults(cls):
    parameters = inspect.signature(cls.__init__).parameters
    return {name: parameters[name].default for name in cls.arguments}


class PhotometricAugmentation(BaseAugmentation):
    """Image-only layer: masks pass through untouched.

    Subclasses implement `apply_float(x, transformation, dtype)`: float32
    value-unit images `(B, H, W, C)` in, float32 out (already clipped and, for
    integer dtypes, quantized like Albumentations), honouring
    `transformation["apply"]`.
    """

    #: integer rounding Albumentations uses for this op ("floor" = uint8 LUT / astype)
    rounding = "floor"

    def apply_float(self, x, transformation, dtype):
        raise NotImplementedError

    def _transform_images(self, images, transformation):
        x = F.to_float(images)
        y = self.apply_float(x, transformation, images.dtype)
        # apply_float already quantized integer results: a plain cast is exact
        return ops.cast(y, images.dtype)

    @staticmethod
    def _where_applied(apply, new, old):
        return ops.where(ops.reshape(apply, (-1, 1, 1, 1)), new, old)


class GeometricAugmentation(BaseAugmentation):
    """Layer that moves pixels; images and masks share one sampling grid.

    Subclasses implement `geometric_ops(transformation, height, width)`
    returning a list of `("affine", (B, 3, 3) output->input matrix)` /
    `("field", (B, H, W, 2) displacement)` pairs that are already identity for
    samples whose `"apply"` is False. Subclasses extend `arguments` and list
    these resampling arguments, with their defaults, in their own `__init__`.
    """

    geometric = True
    #: moves whole pixels only (flips): Compose applies runs of these as index flips, not a resample
    pixel_permutation = False

    arguments = {
        "interpolation": V.Argument(V.interpolation, V.supported_interpolation),
        "mask_interpolation": V.Argument(V.interpolation, V.supported_interpolation),
        "border_mode": V.Argument(V.border_mode),
        "fill": V.Argument(V.check_fill),
        "fill_mask": V.Argument(V.check_fill),
    }

    def resample_key(self):
        """Resampling settings; consecutive steps with equal keys fuse in Compose."""
        return (self.interpolation, self.border_mode, self.fill, self.fill_mask, self.mask_interpolation)

    def geometric_ops(self, transformation, height, width):
        raise NotImplementedError

    def _transform_images(self, images, transformation):
        shape = ops.shape(images)
        geo = self.geometric_ops(transformation, shape[1], shape[2])
        return F.warp(images, geo, self.interpolation, self.border_mode, self.fill, skip_identity=True)

    def _transform_masks(self, masks, transformation):
        shape = ops.shape(masks)
        geo = self.geometric_ops(transformation, shape[1], shape[2])
        return F.warp(masks, geo, self.mask_interpolation, self.border_mode, self.fill_mask, skip_identity=True)


class FlipAugmentation(GeometricAugmentation):
    """A per-sample flip along `axis` (2: left-right, 1: up-down): an exact index flip in the input's
    own dtype, also expressed as a matrix so Compose can fuse it into a resample.

    Subclasses set `axis` and implement `_flip_matrix(batch, height, width)`.
    """

    axis = None
    pixel_permutation = True
    #: a flip takes none of the resampling arguments: it moves whole pixels, in the input's own dtype
    arguments = {}

    def resample_key(self):
        return None

    def _flip_matrix(self, batch, height, width):
        raise NotImplementedError

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

