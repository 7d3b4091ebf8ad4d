import io
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from lung_keras.callbacks import DisplayCallback

REPO = pathlib.Path(__file__).resolve().parents[2]


def _read_events(folder):
    """{step: {tag: (plugin_name, ndarray)}} from every event file under `folder` (no TensorFlow)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    out = {}
    files = sorted(pathlib.Path(folder).glob("events.out.tfevents.*"))
    assert files, f"no event file in {folder}"
    for f in files:
        for event in EventFileLoader(str(f)).Load():
            for v in event.summary.value:
                out.setdefault(event.step, {})[v.tag] = (
                    v.metadata.plugin_data.plugin_name,
                    tensor_util.make_ndarray(v.tensor),
                )
    return out


def _manifest(blobs):
    return json.loads(blobs[0])


def _data(n=3, size=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, size, size, 1)).astype("float32")
    y = (x > 0.5).astype("float32")  # learnable: mask = bright pixels
    return x, y


def _model():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 1))
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy")
    return model


IDS = ["MCUCXR_0001_0", "MCUCXR_0002_0", "case 3"]


def test_fit_writes_stable_tags_and_sample_ids(tmp_path):
    pytest.importorskip("lung_keras_tb")
    from lung_keras.metrics import dice_per_image

    x, y = _data()
    cb = DisplayCallback((x, y), tmp_path / "logs", sample_ids=IDS)
    model = _model()
    model.fit(x, y, epochs=3, batch_size=3, verbose=0, callbacks=[cb])
    assert cb.output_dir == os.path.join(tmp_path / "logs", "display")
    events = _read_events(cb.output_dir)
    assert sorted(events) == [0, 1, 2]
    expected_tags = {f"display/{i}" for i in IDS} | {"segmentation"}
    for step, values in events.items():
        assert set(values) == expected_tags
        for i in IDS:
            plugin, tensor = values[f"display/{i}"]
            assert plugin == "images"
            w, h = int(tensor[0]), int(tensor[1])
            png = np.asarray(Image.open(io.BytesIO(tensor[2])).convert("RGB"))
            assert png.shape == (h, w, 3) and w > 2 * h  # one row of 4 panels
            assert png.std() > 10
        plugin, blobs = values["segmentation"]
        assert plugin == "lung_segmentation"
        manifest = _manifest(blobs)
        assert [s["id"] for s in manifest["samples"]] == IDS  # same ids, same order, every step
        assert len(blobs) == 1 + 3 * len(IDS)
    # the Dice logged at the last epoch is the Dice of the trained model (project metric)
    final = np.asarray(dice_per_image(y, model.predict(x, verbose=0)))
    logged = [s["dice"] for s in _manifest(events[2]["segmentation"][1])["samples"]]
    np.testing.assert_allclose(logged, final, atol=1e-6)
    np.testing.assert_allclose(cb.last_dice, final, atol=1e-6)


def test_every_n_epochs_and_max_samples(tmp_path):
    pytest.importorskip("lung_keras_tb")
    x, y = _data(n=5)
    cb = DisplayCallback((x, y), tmp_path, every_n_epochs=2, max_samples=2, subdir=None, tag_prefix="val")
    _model().fit(x, y, epochs=5, batch_size=5, verbose=0, callbacks=[cb])
    events = _read_events(tmp_path)
    assert sorted(events) == [1, 3]  # after epochs 2 and 4
    assert set(events[1]) == {"val/sample_000", "val/sample_001", "segmentation"}


def test_images_only_without_plugin(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "lung_keras_tb", None)  # plugin not installed
    x, y = _data(n=2)
    with pytest.raises(ImportError, match="pip install -e tensorboard_plugins/lung_keras_tb"):
        DisplayCallback((x, y), tmp_path)
    cb = DisplayCallback((x, y), tmp_path, sample_ids=["a", "b"], write_plugin=False, renderer="matplotlib")
    cb.log_samples(7, predictions=y)  # perfect prediction
    np.testing.assert_allclose(cb.last_dice, [1.0, 1.0])
    cb.close()
    assert set(_read_events(cb.output_dir)[7]) == {"display/a", "display/b"}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        [{"every_n_epochs": 0}, "every_n_epochs"],
        [{"sample_ids": ["a", "a"]}, "distinct"],
        [{"sample_ids": ["a"]}, "one sample id"],
        [{"threshold": 1.0}, "threshold"],
        [{"write_images": False, "write_plugin": False}, "Nothing to write"],
        [{"renderer": "svg"}, "renderer"],
    ],
)
def test_ill_options(tmp_path, kwargs, match):
    x, y = _data(n=2)
    with pytest.raises(ValueError, match=match):
        DisplayCallback((x, y), tmp_path, **kwargs)


JAX_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    from lung_keras.callbacks import DisplayCallback, ScalarLogger
    import lung_keras.report, lung_keras.stats, lung_keras.viz  # noqa: F401  (all import without TF)

    assert keras.backend.backend() == "jax"
    rng = np.random.default_rng(0)
    x = rng.random((2, 16, 16, 1)).astype("float32")
    y = (x > 0.5).astype("float32")
    # (keras.utils.set_random_seed would import TensorFlow when installed: seed the layer instead)
    inputs = keras.Input((16, 16, 1))
    conv = keras.layers.Conv2D(1, 1, activation="sigmoid", kernel_initializer=keras.initializers.GlorotUniform(0))
    model = keras.Model(inputs, conv(inputs))
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy")
    cb = DisplayCallback((x, y), sys.argv[1], sample_ids=["left", "right"])
    model.fit(x, y, epochs=2, batch_size=2, verbose=0, validation_data=(x, y), callbacks=[cb, ScalarLogger(sys.argv[1])])
    print("DICE", *cb.last_dice)
    print("TF_IMPORTED", "tensorflow" in sys.modules)
    """
)


@pytest.mark.slow
def test_jax_fit_without_tensorflow(tmp_path):
    pytest.importorskip("jax")
    pytest.importorskip("lung_keras_tb")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT, str(tmp_path / "logs")],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "TF_IMPORTED False" in proc.stdout
    events = _read_events(tmp_path / "logs" / "display")
    assert sorted(events) == [0, 1]
    assert set(events[1]) == {"display/left", "display/right", "segmentation"}
    manifest = _manifest(events[1]["segmentation"][1])
    assert [s["id"] for s in manifest["samples"]] == ["left", "right"]
    dice_line = next(line for line in proc.stdout.splitlines() if line.startswith("DICE"))
    np.testing.assert_allclose([s["dice"] for s in manifest["samples"]], [float(v) for v in dice_line.split()[1:]])
    # `train`'s scalar logger writes Keras' TensorBoard tags without TensorFlow too.
    train, val = _read_events(tmp_path / "logs" / "train"), _read_events(tmp_path / "logs" / "validation")
    assert sorted(train) == [0, 1] and set(train[1]) == {"epoch_loss", "epoch_learning_rate"}
    assert {tag for step in val.values() for tag in step} == {"epoch_loss", "evaluation_loss_vs_iterations"}
    assert {plugin for step in (*train.values(), *val.values()) for plugin, _ in step.values()} == {"scalars"}
