"""IntensityNormalization: worked numbers per mode, invariances, serialization, tf.data, in a model."""

import numpy as np
import pytest

import keras

from lung_keras.preprocessing import IntensityNormalization


def to_np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


# [kwargs, input (one image, row-major pixels), expected output]
TEST_CASES = [
    # none: identity, cast to float32.
    [{"mode": "none"}, [0, 64, 128, 255], [0, 64, 128, 255]],
    # standardize: mean 2.5, population std sqrt(1.25) = 1.1180 -> (x - 2.5) / 1.1180.
    [{"mode": "standardize"}, [1, 2, 3, 4], [-1.3416408, -0.4472136, 0.4472136, 1.3416408]],
    # standardize of a constant image: std 0 is floored at 1/sqrt(N) = 0.5 -> all zeros.
    [{"mode": "standardize"}, [7, 7, 7, 7], [0, 0, 0, 0]],
    # percentile (0, 100): min..max -> 0..1.
    [{"mode": "percentile", "percentiles": (0, 100)}, [2, 4, 6, 10], [0, 0.25, 0.5, 1.0]],
    # percentile (25, 75) of [0, 1, 2, 3, 100] (linear interpolation): q25 = 1, q75 = 3 -> clip((x - 1) / 2).
    [{"mode": "percentile", "percentiles": (25, 75)}, [0, 1, 2, 3, 100, 2], [0, 0, 0.5, 1, 1, 0.5]],
    # equalize with 4 bins over [0, 3] (width 0.75): 0 -> bin 0 (pos 0), 1 -> bin 1 (pos 1.333), 2 -> bin 2
    # (pos 2.667), 3 -> top edge (pos 4, clipped to bin 3, frac 1). Counts [1, 1, 1, 1], N = 4:
    # 0 -> 0/4; 1 -> (1 + 0.333 * 1) / 4 = 0.3333; 2 -> (2 + 0.667) / 4 = 0.6667; 3 -> (3 + 1) / 4 = 1.
    [{"mode": "equalize", "bins": 4}, [0, 1, 2, 3], [0.0, 1 / 3, 2 / 3, 1.0]],
    # equalize: a skewed image spreads out: [0, 0, 0, 10] with 2 bins (width 5): counts [3, 1];
    # 0 -> 0; 10 -> top edge (bin 1, frac 1) -> (3 + 1) / 4 = 1.
    [{"mode": "equalize", "bins": 2}, [0, 0, 0, 10], [0.0, 0.0, 0.0, 1.0]],
    # equalize of a constant image -> 0.5 everywhere.
    [{"mode": "equalize"}, [3, 3, 3, 3], [0.5, 0.5, 0.5, 0.5]],
]


@pytest.mark.parametrize("kwargs, pixels, expected", TEST_CASES)
def test_worked_values(kwargs, pixels, expected):
    x = np.asarray(pixels, "float32").reshape(1, 1, -1, 1)
    out = to_np(IntensityNormalization(**kwargs)(x))
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.ravel(), expected, atol=1e-5)


def _images(n=3, size=32, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = 0.3 + 0.4 * np.sin(3 * xx) * np.cos(2 * yy)
    return np.stack([base + 0.05 * rng.normal(size=base.shape) for _ in range(n)])[..., None].astype("float32")


@pytest.mark.parametrize("mode", ["standardize", "percentile", "equalize"])
def test_invariant_to_gain_and_offset(mode):
    # The same radiograph taken brighter and with lower contrast maps to (nearly) the same model input.
    x = _images()
    layer = IntensityNormalization(mode)
    np.testing.assert_allclose(to_np(layer(0.6 * x + 0.3)), to_np(layer(x)), atol=1e-4 if mode != "equalize" else 2e-2)


def test_standardize_output_statistics_ignore_a_constant_shift():
    x = _images()
    out = to_np(IntensityNormalization("standardize")(x + 5.0)).reshape(3, -1)
    np.testing.assert_allclose(out.mean(1), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(1), 1, atol=1e-4)


def test_equalize_is_invariant_to_gamma_and_flattens_the_histogram():
    x = _images(seed=1)
    layer = IntensityNormalization("equalize")
    a, b = to_np(layer(x)), to_np(layer(x**0.6))
    assert np.abs(a - b).max() < 0.02
    hist = np.histogram(a[0], bins=4, range=(0, 1))[0] / a[0].size
    np.testing.assert_allclose(hist, 0.25, atol=0.02)


def test_unbatched_input_and_uint8():
    x = (_images(1)[0] * 255).astype("uint8")
    out = to_np(IntensityNormalization("percentile", percentiles=(0, 100))(x))
    assert out.shape == x.shape and out.min() == 0 and out.max() == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mode": "zscore"}, "Received: mode='zscore'"),
        ({"mode": "percentile", "percentiles": (99, 1)}, "percentiles"),
        ({"mode": "percentile", "percentiles": (1, 101)}, "percentiles"),
        ({"mode": "percentile", "percentiles": "high"}, "percentiles"),
        ({"bins": 1}, "Received: bins=1"),
        ({"bins": 2.5}, "bins"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        IntensityNormalization(**kwargs)


@pytest.mark.parametrize("mode", ["standardize", "percentile", "equalize"])
def test_keras_round_trip_in_a_model(tmp_path, mode):
    inputs = keras.Input((32, 32, 1))
    outputs = keras.layers.Conv2D(1, 3, padding="same")(IntensityNormalization(mode, bins=64)(inputs))
    model = keras.Model(inputs, outputs)
    x = _images(2)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    layer = loaded.layers[1]
    assert isinstance(layer, IntensityNormalization) and layer.mode == mode and layer.bins == 64
    np.testing.assert_allclose(to_np(loaded.predict(x, verbose=0)), to_np(model.predict(x, verbose=0)), atol=1e-5)
    assert IntensityNormalization.from_config(layer.get_config()).get_config() == layer.get_config()


def test_symbolic_call_and_output_shape():
    layer = IntensityNormalization("equalize")
    out = layer(keras.Input((None, None, 1)))
    assert tuple(out.shape) == (None, None, None, 1)
    assert layer.compute_output_shape((2, 8, 8, 1)) == (2, 8, 8, 1)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.data needs the TensorFlow backend")
def test_in_tf_data_map():
    import tensorflow as tf

    x = _images(4)
    layer = IntensityNormalization("equalize")
    ds = tf.data.Dataset.from_tensor_slices(x).batch(2).map(layer)
    out = np.concatenate([b.numpy() for b in ds])
    np.testing.assert_allclose(out, to_np(layer(x)), atol=1e-6)
