"""The layer contract of STYLE.md, once, over every public augmentation layer (the `LAYERS` table).

Each row builds a layer from `factory(p=..., seed=...)`. Geometric rows name an `image_as_mask` factory
(nearest interpolation, so the image fed as its own mask comes out identical) and are checked for mask
invariants; photometric rows (`image_as_mask=None`) must leave masks untouched. Layer-specific behaviour
(injected transformations, argument checks, distributions) stays in the per-layer files.
"""

from typing import Callable
from typing import NamedTuple

import numpy as np
import pytest

import augment_checks as C
import keras
import lung_keras.augment as augment
from augment_checks import H
from augment_checks import W
from augment_checks import batch
from augment_checks import blob_masks
from augment_checks import smooth_image
from augment_checks import to_np
from lung_keras.augment import Affine
from lung_keras.augment import CoarseDropout
from lung_keras.augment import Compose
from lung_keras.augment import ElasticTransform
from lung_keras.augment import GaussianBlur
from lung_keras.augment import GaussNoise
from lung_keras.augment import HorizontalFlip
from lung_keras.augment import OneOf
from lung_keras.augment import RandomBrightnessContrast
from lung_keras.augment import RandomGamma
from lung_keras.augment import Rotate
from lung_keras.augment import VerticalFlip


class Row(NamedTuple):
    factory: Callable  # factory(p=..., seed=...) -> layer; fill_mask=7 where the layer has one
    image_as_mask: Callable = None  # geometric: a nearest-interpolation factory; None: photometric
    p_frequency: bool = True  # the layer's own Bernoulli(p) is checked over 400 samples
    deterministic_at_p1: bool = False  # flips: p=1 draws nothing, so seeds are shown on p=0.5 draws


def _with(cls, **defaults):
    return lambda **kw: cls(**{**defaults, **kw})


def _compose(**kw):
    p = kw.pop("p", 1.0)
    steps = [
        HorizontalFlip(p=0.5),
        Rotate(limit=20, p=p, fill_mask=7),
        RandomBrightnessContrast(p=p),
        GaussNoise(std_range=(0.02, 0.05), p=p),
    ]
    return Compose(steps, p=p, **kw)


def _compose_nearest(**kw):
    steps = [HorizontalFlip(), Rotate(limit=30, interpolation=0), ElasticTransform(alpha=20, sigma=4, interpolation=0)]
    return Compose(steps, **kw)


def _one_of(**kw):
    return OneOf([Rotate(limit=30, fill_mask=7, p=1.0), RandomGamma(gamma_limit=(50, 150), p=1.0)], **kw)


def _one_of_nearest(**kw):
    return OneOf([HorizontalFlip(), Rotate(limit=(20, 30), interpolation=0, p=2 / 3)], **kw)


LAYERS = {
    "HorizontalFlip": Row(HorizontalFlip, image_as_mask=HorizontalFlip, deterministic_at_p1=True),
    "VerticalFlip": Row(VerticalFlip, image_as_mask=VerticalFlip, deterministic_at_p1=True),
    "Rotate": Row(
        _with(Rotate, limit=(-30, 30), fill_mask=7),
        image_as_mask=_with(Rotate, limit=40, interpolation=0, border_mode=4),
    ),
    "Affine": Row(
        _with(Affine, scale=(0.8, 1.2), translate_percent=(-0.1, 0.1), rotate=(-20, 20), shear=(-10, 10), fill_mask=7),
        image_as_mask=_with(
            Affine, scale=(0.8, 1.2), translate_percent=(-0.1, 0.1), rotate=(-20, 20), shear=(-10, 10),
            interpolation=0, fill_mask=0, border_mode=2,
        ),
    ),
    "ElasticTransform": Row(
        _with(ElasticTransform, alpha=30.0, sigma=4.0, fill_mask=7),
        image_as_mask=_with(ElasticTransform, alpha=30.0, sigma=4.0, interpolation=0, fill_mask=0),
    ),
    "RandomBrightnessContrast": Row(RandomBrightnessContrast),
    "RandomGamma": Row(_with(RandomGamma, gamma_limit=(50, 150))),
    "GaussNoise": Row(_with(GaussNoise, std_range=(0.05, 0.1))),
    "GaussNoise-shared": Row(_with(GaussNoise, std_range=(0.05, 0.1), per_channel=False, noise_scale_factor=0.5)),
    "GaussianBlur": Row(_with(GaussianBlur, sigma_limit=(1.0, 2.0))),
    "CoarseDropout": Row(_with(CoarseDropout, num_holes_range=(1, 3), fill="random_uniform")),
    "Compose": Row(_compose, image_as_mask=_compose_nearest, p_frequency=False),
    "OneOf": Row(_one_of, image_as_mask=_one_of_nearest),
}

GEOMETRIC = {name: row for name, row in LAYERS.items() if row.image_as_mask is not None}
PHOTOMETRIC = {name: row for name, row in LAYERS.items() if row.image_as_mask is None}


def _rows(table):
    return pytest.mark.parametrize("row", list(table.values()), ids=list(table))


def test_every_exported_layer_has_a_row():
    exported = {
        getattr(augment, name)
        for name in augment.__all__
        if isinstance(getattr(augment, name), type)
        and issubclass(getattr(augment, name), keras.layers.Layer)
        and not issubclass(getattr(augment, name), keras.Model)  # AugmentedModel wraps a model, not a layer
    }
    assert {type(row.factory()) for row in LAYERS.values()} == exported
    assert {type(row.image_as_mask()) for row in GEOMETRIC.values()} == {
        type(row.factory()) for row in GEOMETRIC.values()
    }


@_rows(LAYERS)
def test_serialization_round_trip(row):
    # get_config/from_config and keras (de)serialization; the restored layer draws the same
    layer = row.factory(seed=11)
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer)
    assert restored.get_config() == config
    data = batch()
    a, b = layer(data, training=True), restored(data, training=True)
    np.testing.assert_array_equal(to_np(a["images"]), to_np(b["images"]))
    np.testing.assert_array_equal(to_np(a["segmentation_masks"]), to_np(b["segmentation_masks"]))


@_rows(LAYERS)
def test_symbolic_and_eager_calls(row):
    layer = row.factory(seed=1)
    inp = keras.Input((H, W, 1), dtype="float32")
    out = layer(inp)
    assert tuple(out.shape) == (None, H, W, 1)
    assert layer.compute_output_shape((None, H, W, 1)) == (None, H, W, 1)
    model = keras.Model(inp, out)
    x = smooth_image(dtype="float32")
    y = to_np(model(x, training=True))
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_array_equal(to_np(model(x, training=False)), x)
    # dict inputs keep per-entry dtypes symbolically
    inputs = {
        "images": keras.Input((H, W, 1), dtype="uint8"),
        "segmentation_masks": keras.Input((H, W, 1), dtype="uint8"),
    }
    sym = layer(inputs)
    assert set(sym) == {"images", "segmentation_masks"}
    assert sym["images"].dtype == "uint8" and sym["segmentation_masks"].dtype == "uint8"
    assert to_np(layer(batch(), training=True)["images"]).shape == (4, H, W, 1)


@_rows(LAYERS)
def test_shapes_and_dtypes_kept(row):
    # uint8/float32, rank 3/4, masks with and without a channel axis
    layer = row.factory(seed=2)
    for dtype in ("uint8", "float32"):
        data = batch(dtype=dtype, c=3)
        out = layer(data, training=True)
        assert to_np(out["images"]).dtype == np.dtype(dtype)
        assert to_np(out["images"]).shape == (4, H, W, 3)
        assert to_np(out["segmentation_masks"]).dtype == np.uint8
        single = layer({"images": data["images"][0], "segmentation_masks": data["segmentation_masks"][0]}, training=True)
        assert to_np(single["images"]).shape == (H, W, 3)
        assert to_np(single["segmentation_masks"]).shape == (H, W, 1)
        plain = layer(data["images"][0], training=True)
        assert to_np(plain).shape == (H, W, 3) and to_np(plain).dtype == np.dtype(dtype)
    no_channel = layer(
        {"images": batch()["images"], "segmentation_masks": blob_masks()[..., 0].astype("float32")}, training=True
    )
    assert to_np(no_channel["segmentation_masks"]).shape == (4, H, W)
    assert to_np(no_channel["segmentation_masks"]).dtype == np.float32


@_rows(LAYERS)
def test_training_false_and_predict_are_identity_a_plain_call_augments(row):
    # Keras' convention for preprocessing layers
    layer = row.factory(p=1.0, seed=3)
    data = batch()
    out = layer(data, training=False)
    np.testing.assert_array_equal(to_np(out["images"]), data["images"])
    np.testing.assert_array_equal(to_np(out["segmentation_masks"]), data["segmentation_masks"])
    assert not np.array_equal(to_np(layer(data)["images"]), data["images"])  # no training argument: augments
    assert layer.get_random_transformation(data, training=False) is None
    x, masks = data["images"], data["segmentation_masks"]
    assert layer.transform_images(x, None) is x
    t = layer.get_random_transformation(data)
    assert layer.transform_images(x, t, training=False) is x
    assert layer.transform_segmentation_masks(masks, t, training=False) is masks
    inp = keras.Input((H, W, 1))
    model = keras.Model(inp, row.factory(p=1.0, seed=3)(inp))
    floats = smooth_image(dtype="float32")
    np.testing.assert_array_equal(model.predict(floats, verbose=0), floats)


@_rows(LAYERS)
def test_unsupported_dict_key_raises(row):
    data = batch()
    with pytest.raises(ValueError, match="Unsupported dict entry 'bounding_boxes'.*Received: key='bounding_boxes'"):
        row.factory(p=1.0)(dict(data, bounding_boxes=np.zeros((4, 1, 4), "float32")))
    labels = np.arange(4)
    out = row.factory(p=1.0)(dict(data, labels=labels))
    np.testing.assert_array_equal(to_np(out["labels"]), labels)


@_rows(LAYERS)
def test_same_seed_same_output(row):
    data = batch(dtype="float32", n=4)
    if row.deterministic_at_p1:
        draws = np.zeros((64, 4, 4, 1), "float32")
        a, b, c = (to_np(row.factory(seed=s).get_random_transformation(draws)["apply"]) for s in (5, 5, 6))
    else:
        a, b, c = (to_np(row.factory(p=1.0, seed=s)(data, training=True)["images"]) for s in (5, 5, 6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # an explicit seed to get_random_transformation is reproducible too
    layer = row.factory(p=1.0)
    t1, t2 = layer.get_random_transformation(data, seed=9), layer.get_random_transformation(data, seed=9)
    leaves1, leaves2 = keras.tree.flatten(t1), keras.tree.flatten(t2)
    assert len(leaves1) == len(leaves2) > 0
    for u, v in zip(leaves1, leaves2):
        np.testing.assert_array_equal(to_np(u), to_np(v))


@_rows(LAYERS)
def test_p(row):
    data = batch(dtype="float32", n=4)
    off = row.factory(p=0.0, seed=1)(data, training=True)
    np.testing.assert_array_equal(to_np(off["images"]), data["images"])
    np.testing.assert_array_equal(to_np(off["segmentation_masks"]), data["segmentation_masks"])
    layer = row.factory(p=1.0, seed=1)
    t = layer.get_random_transformation(data)
    assert to_np(t["apply"]).all()
    on = to_np(layer.transform_images(data["images"], t))
    for i in range(4):
        assert not np.allclose(on[i], data["images"][i])
    if row.p_frequency:
        # p=0.3: the fraction of applied samples is 0.3 (binomial, 4.5 sigma band)
        n = 400
        t = row.factory(p=0.3, seed=4).get_random_transformation(np.zeros((n, 4, 4, 1), "float32"))
        assert abs(to_np(t["apply"]).mean() - 0.3) < 4.5 * np.sqrt(0.3 * 0.7 / n)


@_rows(GEOMETRIC)
def test_mask_dtype_kept_and_values_from_input_or_fill_mask(row):
    layer = row.factory(p=1.0, seed=8)
    for mask_dtype, values in (("uint8", (0, 1, 2)), ("float32", (0.0, 1.0, 0.5)), ("int32", (0, 3, 9))):
        masks = blob_masks(4, dtype=mask_dtype, values=values)
        out = to_np(layer({"images": smooth_image(4), "segmentation_masks": masks}, training=True)["segmentation_masks"])
        assert out.dtype == np.dtype(mask_dtype)
        assert set(np.unique(out).tolist()) <= set(np.unique(masks).tolist()) | {7}


@_rows(GEOMETRIC)
def test_image_as_mask_comes_out_identical(row):
    # nearest interpolation for both: the image fed as its own mask must follow the same geometry
    x = smooth_image(4, c=2)
    out = row.image_as_mask(p=1.0, seed=12)({"images": x, "segmentation_masks": x}, training=True)
    np.testing.assert_array_equal(to_np(out["images"]), to_np(out["segmentation_masks"]))
    assert not np.array_equal(to_np(out["images"]), x)


@_rows(PHOTOMETRIC)
def test_mask_untouched(row):
    data = batch()
    out = row.factory(p=1.0, seed=8)(data, training=True)
    assert not np.array_equal(to_np(out["images"]), data["images"])
    np.testing.assert_array_equal(to_np(out["segmentation_masks"]), data["segmentation_masks"])
    assert to_np(out["segmentation_masks"]).dtype == np.uint8


@C.requires_tf
@_rows(LAYERS)
def test_tf_data_map(row):
    # on every backend (on JAX the call runs through tf.py_function)
    import tensorflow as tf

    layer = row.factory(p=1.0, seed=13)
    ds = tf.data.Dataset.from_tensor_slices(batch(n=4))
    unbatched = list(ds.map(lambda d: layer(d)).take(2))  # augments with no training argument
    assert unbatched[0]["images"].shape == (H, W, 1) and unbatched[0]["images"].dtype == tf.uint8
    batched = list(ds.batch(3).map(lambda d: layer(d, training=True)))  # the last batch has 1 sample
    assert [b["images"].shape[0] for b in batched] == [3, 1]
    assert batched[0]["segmentation_masks"].dtype == tf.uint8
    assert all(set(np.unique(b["segmentation_masks"].numpy())) <= {0, 1, 7} for b in batched)


@_rows(LAYERS)
def test_trains_inside_model_fit(row):
    inp = keras.Input((H, W, 1))
    model = keras.Model(inp, keras.layers.Conv2D(1, 1)(row.factory(p=1.0, seed=14)(inp)))
    model.compile(optimizer="sgd", loss="mse")
    x = smooth_image(4, dtype="float32")
    history = model.fit(x, x, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
