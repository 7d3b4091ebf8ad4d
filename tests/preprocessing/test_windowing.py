"""Windowing: worked Hounsfield-unit arithmetic, several windows as channels, serialization, tf.data, a model."""

import numpy as np
import pytest

import keras

from lung_keras.preprocessing import LUNG_WINDOW
from lung_keras.preprocessing import MEDIASTINUM_WINDOW
from lung_keras.preprocessing import Windowing


def to_np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


# [kwargs, input HU (one pixel per value, one channel), expected output channels per pixel]
TEST_CASES = [
    # Lung window L -600, W 1500: low = -600 - 750 = -1350, y = (x + 1350) / 1500, clipped to [0, 1].
    # -3024 (outside the scan circle) -> clipped 0; -1350 -> 0; -1000 (air) -> 350/1500 = 0.23333;
    # -600 (level) -> 0.5; 150 (top) -> 1; 1000 (bone) -> clipped 1.
    [{}, [-3024, -1350, -1000, -600, 150, 1000], [[0], [0], [0.233333], [0.5], [1], [1]]],
    # Mediastinum window L 40, W 400: low -160, y = (x + 160) / 400: -160 -> 0, 0 -> 0.4, 40 -> 0.5,
    # 100 -> 0.65, 240 -> 1, -1000 -> clipped 0.
    [{"level": 40, "width": 400}, [-160, 0, 40, 100, 240, -1000], [[0], [0.4], [0.5], [0.65], [1], [0]]],
    # Two windows -> two channels, lung then mediastinum: -1000 -> (0.23333, 0); 40 -> ((40 + 1350) / 1500
    # = 0.92667, 0.5); 200 -> (1, 360/400 = 0.9).
    [{"windows": [(-600, 1500), (40, 400)]}, [-1000, 40, 200], [[0.233333, 0], [0.926667, 0.5], [1, 0.9]]],
    # A one-pair list is the same as level/width: width 2 around 0: -1 -> 0, 0 -> 0.5, 0.5 -> 0.75.
    [{"windows": [(0, 2)]}, [-1, 0, 0.5], [[0], [0.5], [0.75]]],
]


@pytest.mark.parametrize("kwargs, hu, expected", TEST_CASES)
def test_worked_values(kwargs, hu, expected):
    x = np.asarray(hu, "float32").reshape(1, 1, -1, 1)
    out = to_np(Windowing(**kwargs)(x))
    expected = np.asarray(expected, "float32")
    assert out.shape == (1, 1, len(hu), expected.shape[1]) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0], expected, atol=1e-5)


def test_integer_input_and_several_input_channels():
    # int16 HU, two input channels (e.g. neighbouring slices), two windows: channels [c0 w0, c1 w0, c0 w1, c1 w1].
    # c0 = -600: lung 0.5, mediastinum clipped 0; c1 = 40: lung 0.92667, mediastinum 0.5.
    x = np.asarray([-600, 40], "int16").reshape(1, 1, 2)  # unbatched (H, W, C)
    out = to_np(Windowing(windows=[LUNG_WINDOW, MEDIASTINUM_WINDOW])(x))
    np.testing.assert_allclose(out.reshape(-1), [0.5, 0.926667, 0.0, 0.5], atol=1e-5)


def test_output_always_in_unit_range():
    x = np.random.default_rng(0).uniform(-4000, 4000, (2, 8, 8, 1)).astype("float32")
    out = to_np(Windowing(windows=[LUNG_WINDOW, MEDIASTINUM_WINDOW])(x))
    assert out.min() == 0.0 and out.max() == 1.0 and out.shape == (2, 8, 8, 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"width": 0}, "Received: level=-600.0, width=0"),
        ({"width": -10}, "width must be a finite number > 0"),
        ({"level": float("nan")}, "level finite"),
        ({"windows": []}, "at least one"),
        ({"windows": [(-600,)]}, "list of \\(level, width\\) pairs"),
        ({"windows": [(-600, 1500), (40, 0)]}, "Received: windows="),
        ({"level": 40, "windows": [(40, 400)]}, "either `level`/`width` or `windows`"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Windowing(**kwargs)


@pytest.mark.parametrize("kwargs", [{}, {"level": -500, "width": 1200}, {"windows": [LUNG_WINDOW, MEDIASTINUM_WINDOW]}])
def test_keras_round_trip_in_a_model(tmp_path, kwargs):
    inputs = keras.Input((16, 16, 1))
    outputs = keras.layers.Conv2D(1, 3, padding="same")(Windowing(**kwargs)(inputs))
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(1).uniform(-1200, 300, (2, 16, 16, 1)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    layer = loaded.layers[1]
    assert isinstance(layer, Windowing) and layer.windows == Windowing(**kwargs).windows
    np.testing.assert_allclose(to_np(loaded.predict(x, verbose=0)), to_np(model.predict(x, verbose=0)), atol=1e-5)
    assert Windowing.from_config(layer.get_config()).get_config() == layer.get_config()


def test_symbolic_call_and_output_shape():
    layer = Windowing(windows=[LUNG_WINDOW, MEDIASTINUM_WINDOW])
    out = layer(keras.Input((None, None, 1)))
    assert tuple(out.shape) == (None, None, None, 2)
    assert layer.compute_output_shape((2, 8, 8, 3)) == (2, 8, 8, 6)
    assert Windowing().compute_output_shape((2, 8, 8, 1)) == (2, 8, 8, 1)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.data needs the TensorFlow backend")
def test_in_tf_data_map():
    import tensorflow as tf

    x = np.random.default_rng(2).uniform(-1200, 300, (4, 8, 8, 1)).astype("float32")
    layer = Windowing(windows=[LUNG_WINDOW, MEDIASTINUM_WINDOW])
    ds = tf.data.Dataset.from_tensor_slices(x).batch(2).map(layer)
    out = np.concatenate([b.numpy() for b in ds])
    np.testing.assert_allclose(out, to_np(layer(x)), atol=1e-6)
