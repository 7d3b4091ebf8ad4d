"""Shared machinery of the Compose and OneOf containers (private).

A container's transformation is `{"apply": (B,), "steps": [child_t, ...]}`
(OneOf adds `"choice"`). Every child transformation already has the
container's decision folded into its own `"apply"` (and hence into its
matrix / displacement / photometric where), so a container is executed by
flattening it into its leaf layers and applying them in order: a step that is
off for a sample is the identity for that sample.

Execution groups consecutive leaves into *runs*:

* geometric run: consecutive geometric leaves with the same resampling key
  `(interpolation, border_mode, fill, fill_mask, mask_interpolation)` (flips
  have no key and join any run). All their matrices / displacement fields are
  composed into one sampling grid per sample: one resample of the image (its
  interpolation) and one of the mask (its mask interpolation, nearest by
  default).
* elementwise run: consecutive pointwise photometric leaves
  (brightness/contrast, gamma, noise): one float32 pass, each step clipped and,
  for integer images, truncated as Albumentations does.
* anything else (GaussianBlur) runs on its own.

Fast paths (exact): a geometric run made only of flips is applied as index
flips (`where(apply, flip(x), x)`) in the image's own dtype, no resample; an
all-affine run is skipped at run time when every composed matrix is the
identity (`F.warp(..., skip_identity=True)`). On TensorFlow a call's image
and mask transforms run as one XLA-compiled function (`_execution.run_transforms`).

Images become float32 value units at the first resample or photometric run,
stay quantized to the integer grid after every run when the input is an
integer dtype, and are cast back once at the end.
"""

import keras
from keras import ops

from lung_keras.augment import functional as F
from lung_keras.augment._base import BaseAugmentation

_DEFAULT_KEY = (F.INTER_LINEAR, F.BORDER_CONSTANT, 0.0, 0.0, F.INTER_NEAREST)


def _deserialize_transforms(transforms, name):
    if isinstance(transforms, BaseAugmentation):
        transforms = [transforms]
    if not isinstance(transforms, (list, tuple)):
        raise ValueError(
            f"`transforms` must be a list of lung_keras.augment layers. Received: transforms={transforms!r}"
        )
    out = []
    for t in transforms:
        if isinstance(t, dict):
            t = keras.saving.deserialize_keras_object(t)
        if not isinstance(t, BaseAugmentation):
            raise ValueError(
                f"{name} only accepts lung_keras.augment layers (HorizontalFlip, VerticalFlip, Rotate, "
                "Affine, ElasticTransform, RandomBrightnessContrast, RandomGamma, GaussNoise, "
                f"GaussianBlur, Compose, OneOf). Received: transform={t!r}"
            )
        out.append(t)
    return out


def _integral(fill):
    values = fill if isinstance(fill, (list, tuple)) else [fill]
    return all(float(v).is_integer() for v in values)


def _only_flips(members):
    return all(getattr(layer, "pixel_permutation", False) for layer, _ in members)


class ContainerAugmentation(BaseAugmentation):
    """Base of Compose / OneOf: child sampling, flattening and fused execution."""

    fuse = True
    mask_interpolation = None

    def __init__(self, transforms, p, seed=None, **kwargs):
        super().__init__(p=p, seed=seed, **kwargs)
        self.transforms = _deserialize_transforms(transforms, type(self).__name__)

    # ------------------------------------------------------------------ sampling

    def _child_seeds(self, seeds):
        return seeds if seeds.drives_children else None

    # ------------------------------------------------------------------ execution

    def leaves(self, transformation):
        """Flatten to `[(leaf_layer, leaf_transformation), ...]` in application order."""
        out = []
        for child, child_t in zip(self.transforms, transformation["steps"]):
            if isinstance(child, ContainerAugmentation):
                out.extend(child.leaves(child_t))
            else:
                out.append((child, child_t))
        return out

    def runs(self, transformation, fuse=None):
        """Group leaves into runs: `[(kind, key, [(layer, t), ...]), ...]`.

        kind is "geometric", "elementwise" or "single".
        """
        fuse = self.fuse if fuse is None else fuse
        runs = []
        for layer, t in self.leaves(transformation):
            if layer.geometric:
                key = layer.resample_key()
                if fuse and runs and runs[-1][0] == "geometric":
                    kind, run_key, members = runs[-1]
                    if key is None or run_key is None or key == run_key:
                        members.append((layer, t))
                        runs[-1] = (kind, run_key if run_key is not None else key, members)
                        continue
                runs.append(("geometric", key, [(layer, t)]))
            elif layer.elementwise:
                if fuse and runs and runs[-1][0] == "elementwise":
                    runs[-1][2].append((layer, t))
                    continue
                runs.append(("elementwise", None, [(layer, t)]))
            else:
                runs.append(("single", None, [(layer, t)]))
        return runs

    def _geometric_ops(self, members, height, width):
        geo = []
        for layer, t in members:
            geo.extend(layer.geometric_ops(t, height, width))
        return geo

    def _transform_images(self, images, transformation):
        dtype = images.dtype
        integer = F.is_integer_dtype(dtype)
        x = images
        as_float = False  # x converted to float32 value units (quantized for integer dtypes)
        shape = ops.shape(images)
        for kind, key, members in self.runs(transformation):
            if kind == "geometric":
                if _only_flips(members):  # exact index flips in the image's own dtype
                    for layer, t in members:
                        x = layer._flip(x, t)
                    continue
                interp, border, fill, _, _ = key if key is not None else _DEFAULT_KEY
                geo = self._geometric_ops(members, shape[1], shape[2])
                if integer and not as_float and _integral(fill) and F.fill_in_range(fill, dtype):
                    # resample the integer image itself: same values (bilinear blends in float32, then
                    # rounds half to even), gathers of 1-byte pixels are ~1.7x faster than of float32
                    x = F.warp(x, geo, interp, border, fill, rounding="round", skip_identity=True)
                    continue
                if not as_float:
                    x, as_float = F.to_float(x), True
                x = F.warp(x, geo, interp, border, fill, skip_identity=True)
                if integer and not (interp == F.INTER_NEAREST and _integral(fill) and F.fill_in_range(fill, dtype)):
                    # bilinear blends of in-range values and an in-range fill stay in range
                    x = F.quantize(x, dtype, "round", clip=not F.fill_in_range(fill, dtype))
            else:
                if not as_float:
                    x, as_float = F.to_float(x), True
                for layer, t in members:
                    x = layer.apply_float(x, t, dtype)
        if not as_float:
            return x
        # every run leaves integer images quantized (rounded, clipped): a plain cast is exact
        return ops.cast(x, dtype) if integer else F.from_float(x, dtype)

    def _transform_masks(self, masks, transformation):
        shape = ops.shape(masks)
        for kind, key, members in self.runs(transformation):
            if kind != "geometric":
                continue
            if _only_flips(members):
                for layer, t in members:
                    masks = layer._flip(masks, t)
                continue
            _, border, _, fill_mask, mask_interp = key if key is not None else _DEFAULT_KEY
            if self.mask_interpolation is not None:
                mask_interp = self.mask_interpolation
            geo = self._geometric_ops(members, shape[1], shape[2])
            masks = F.warp(masks, geo, mask_interp, border, fill_mask, skip_identity=True)
        return masks

    def get_config(self):
        config = super().get_config()
        config["transforms"] = [keras.saving.serialize_keras_object(t) for t in self.transforms]
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["transforms"] = [
            keras.saving.deserialize_keras_object(t) if isinstance(t, dict) else t
            for t in config["transforms"]
        ]
        return cls(**config)

