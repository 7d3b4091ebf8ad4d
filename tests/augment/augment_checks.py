"""Contract checks shared by the per-layer tests in tests/augment (imported, not collected).

Each function asserts one behaviour of the layer contract in STYLE.md on a
small batch: serialization, symbolic/eager calls, dtypes and ranks, inference
identity, seeding, mask invariants, `p`, tf.data and model.fit.
"""

import numpy as np
import pytest

import keras
from keras import ops

BACKEND = keras.backend.backend()
try:
    import tensorflow  # noqa: F401

    HAVE_TF = True
except ImportError:
    HAVE_TF = False
requires_tf = pytest.mark.skipif(not HAVE_TF, reason="tf.data needs TensorFlow installed")
requires_tf_backend = pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow backend behaviour")

H, W = 24, 20  # not square: catches swapped axes


def to_np(x):
    return ops.convert_to_numpy(x)


def smooth_image(n=4, h=H, w=W, c=1, dtype="uint8", seed=0):
    """Random but spatially smooth images (so every geometric change is visible)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    imgs = []
    for _ in range(n * c):
        a, b, ph = rng.uniform(0.15, 0.5, 3)
        g = 0.5 + 0.25 * np.sin(a * xx + ph) + 0.2 * np.cos(b * yy) + 0.05 * rng.standard_normal((h, w))
        imgs.append(np.clip(g, 0, 1))
    x = np.stack(imgs).reshape(n, c, h, w).transpose(0, 2, 3, 1)
    if dtype == "uint8":
        return np.round(x * 255).astype("uint8")
    return x.astype(dtype)


def blob_masks(n=4, h=H, w=W, dtype="uint8", values=(0, 1)):
    """Masks with two labelled ellipses per sample (labels = values[1], values[-1])."""
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    out = np.full((n, h, w, 1), values[0], dtype=dtype)
    for i in range(n):
        left = ((xx - w * 0.3) / (w * 0.2)) ** 2 + ((yy - h * (0.4 + 0.1 * i)) / (h * 0.3)) ** 2 < 1
        right = ((xx - w * 0.7) / (w * 0.18)) ** 2 + ((yy - h * 0.5) / (h * 0.28)) ** 2 < 1
        out[i, left, 0] = values[1]
        out[i, right, 0] = values[-1]
    return out


def batch(dtype="uint8", n=4, c=1, mask_dtype="uint8", seed=0):
    return {"images": smooth_image(n, c=c, dtype=dtype, seed=seed), "segmentation_masks": blob_masks(n, dtype=mask_dtype)}


# --------------------------------------------------------------------------- checks


def check_serialization(factory):
    """get_config/from_config and keras (de)serialization round trip; restored layer draws the same."""
    layer = factory(seed=11)
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer)
    assert restored.get_config() == config
    data = batch()
    a = layer(data, training=True)
    b = restored(data, training=True)
    np.testing.assert_array_equal(to_np(a["images"]), to_np(b["images"]))
    np.testing.assert_array_equal(to_np(a["segmentation_masks"]), to_np(b["segmentation_masks"]))


def check_symbolic_and_eager(factory):
    layer = factory(seed=1)
    inp = keras.Input((H, W, 1), dtype="float32")
    out = layer(inp)
    assert tuple(out.shape) == (None, H, W, 1)
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
    eager = layer(batch(), training=True)
    assert to_np(eager["images"]).shape == (4, H, W, 1)


def check_shapes_and_dtypes(factory):
    """uint8/float32, rank 3/4, masks with and without channel axis: shapes and dtypes kept."""
    layer = factory(seed=2)
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


def check_inference_identity(factory):
    """Keras' convention: training=False and a model's predict return the input; called alone the layer augments."""
    layer = factory(p=1.0, seed=3)
    data = batch()
    out = layer(data, training=False)
    np.testing.assert_array_equal(to_np(out["images"]), data["images"])
    np.testing.assert_array_equal(to_np(out["segmentation_masks"]), data["segmentation_masks"])
    assert not np.array_equal(to_np(layer(data)["images"]), data["images"])  # no training argument: augments
    assert layer.get_random_transformation(data, training=False) is None
    x = data["images"]
    assert layer.transform_images(x, None) is x
    t = layer.get_random_transformation(data)
    assert layer.transform_images(x, t, training=False) is x
    assert layer.transform_segmentation_masks(data["segmentation_masks"], t, training=False) is data["segmentation_masks"]
    inp = keras.Input((H, W, 1))
    model = keras.Model(inp, factory(p=1.0, seed=3)(inp))
    floats = smooth_image(dtype="float32")
    np.testing.assert_array_equal(model.predict(floats, verbose=0), floats)
    with pytest.raises(ValueError, match="Unsupported dict entry 'bounding_boxes'.*Received: key='bounding_boxes'"):
        layer(dict(data, bounding_boxes=np.zeros((4, 1, 4), "float32")))


def check_seeds(factory):
    data = batch(dtype="float32", n=4)
    a = to_np(factory(p=1.0, seed=5)(data, training=True)["images"])
    b = to_np(factory(p=1.0, seed=5)(data, training=True)["images"])
    c = to_np(factory(p=1.0, seed=6)(data, training=True)["images"])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # explicit seed to get_random_transformation is reproducible too
    layer = factory(p=1.0)
    t1 = layer.get_random_transformation(data, seed=9)
    t2 = layer.get_random_transformation(data, seed=9)
    leaves1, leaves2 = keras.tree.flatten(t1), keras.tree.flatten(t2)
    assert len(leaves1) == len(leaves2) > 0
    for a_, b_ in zip(leaves1, leaves2):
        np.testing.assert_array_equal(to_np(a_), to_np(b_))


def check_p(factory, changes_every_sample=True):
    data = batch(dtype="float32", n=4)
    off = factory(p=0.0, seed=1)(data, training=True)
    np.testing.assert_array_equal(to_np(off["images"]), data["images"])
    np.testing.assert_array_equal(to_np(off["segmentation_masks"]), data["segmentation_masks"])
    layer = factory(p=1.0, seed=1)
    t = layer.get_random_transformation(data)
    assert to_np(t["apply"]).all()
    on = to_np(layer.transform_images(data["images"], t))
    if changes_every_sample:
        for i in range(4):
            assert not np.allclose(on[i], data["images"][i])


def check_p_frequency(factory, n=400):
    """p=0.3: the fraction of applied samples is 0.3 (binomial, 4.5 sigma band)."""
    layer = factory(p=0.3, seed=4)
    t = layer.get_random_transformation(np.zeros((n, 4, 4, 1), "float32"))
    frac = to_np(t["apply"]).mean()
    assert abs(frac - 0.3) < 4.5 * np.sqrt(0.3 * 0.7 / n)


def check_mask_invariants(factory, fill_mask=7):
    """Masks keep dtype; values stay within input values plus fill_mask."""
    layer = factory(p=1.0, seed=8)
    for mask_dtype, values in (("uint8", (0, 1, 2)), ("float32", (0.0, 1.0, 0.5)), ("int32", (0, 3, 9))):
        masks = blob_masks(4, dtype=mask_dtype, values=values)
        out = to_np(
            layer({"images": smooth_image(4), "segmentation_masks": masks}, training=True)["segmentation_masks"]
        )
        assert out.dtype == np.dtype(mask_dtype)
        allowed = set(np.unique(masks).tolist()) | {fill_mask}
        assert set(np.unique(out).tolist()) <= allowed


def check_mask_untouched(factory):
    layer = factory(p=1.0, seed=8)
    data = batch()
    out = layer(data, training=True)
    assert not np.array_equal(to_np(out["images"]), data["images"])
    np.testing.assert_array_equal(to_np(out["segmentation_masks"]), data["segmentation_masks"])
    assert to_np(out["segmentation_masks"]).dtype == np.uint8


def check_image_as_mask(factory):
    """Feed the image as its own mask with nearest interpolation: outputs must be identical."""
    layer = factory(p=1.0, seed=12)
    x = smooth_image(4, c=2)
    out = layer({"images": x, "segmentation_masks": x}, training=True)
    np.testing.assert_array_equal(to_np(out["images"]), to_np(out["segmentation_masks"]))
    assert not np.array_equal(to_np(out["images"]), x)


def check_tf_data(factory):
    import tensorflow as tf

    layer = factory(p=1.0, seed=13)
    data = batch(n=4)
    ds = tf.data.Dataset.from_tensor_slices(data)
    unbatched = list(ds.map(lambda d: layer(d)).take(2))  # augments with no training argument (Keras' default)
    assert unbatched[0]["images"].shape == (H, W, 1) and unbatched[0]["images"].dtype == tf.uint8
    batched = list(ds.batch(3).map(lambda d: layer(d, training=True)))  # last batch has 1 sample
    assert [b["images"].shape[0] for b in batched] == [3, 1]
    assert batched[0]["segmentation_masks"].dtype == tf.uint8
    assert all(set(np.unique(b["segmentation_masks"].numpy())) <= {0, 1, 7} for b in batched)


def check_fit(factory):
    """The layer trains inside a functional model (augmenting inputs only)."""
    inp = keras.Input((H, W, 1))
    h = factory(p=1.0, seed=14)(inp)
    out = keras.layers.Conv2D(1, 1)(h)
    model = keras.Model(inp, out)
    model.compile(optimizer="sgd", loss="mse")
    x = smooth_image(4, dtype="float32")
    history = model.fit(x, x, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
