import csv

import numpy as np
import pytest
from PIL import Image

from lung_keras.viz import load_history
from lung_keras.viz import plot_histories
from lung_keras.viz import plot_history

HIST = {
    "loss": [0.9, 0.5, 0.3],
    "accuracy": [0.7, 0.85, 0.9],
    "dice": [0.4, 0.7, 0.8],
    "val_loss": [1.0, 0.6, 0.4],
    "val_accuracy": [0.65, 0.8, 0.88],
    "val_dice": [0.35, 0.65, 0.78],
}


def _write_csv(path, hist):
    keys = list(hist)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch"] + keys)
        for i in range(len(hist[keys[0]])):
            w.writerow([i] + [hist[k][i] for k in keys])


def _panel_lines(ax):
    return {line.get_label(): line.get_ydata() for line in ax.get_lines()}


class _FakeHistory:
    def __init__(self, h):
        self.history = h


@pytest.mark.parametrize("kind", ["dict", "history", "csv"])
def test_plot_history_inputs_give_same_curves(tmp_path, kind):
    if kind == "dict":
        src = HIST
    elif kind == "history":
        src = _FakeHistory(HIST)
    else:
        src = tmp_path / "history.csv"
        _write_csv(src, HIST)
    fig = plot_history(src)
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["Loss", "Accuracy", "Dice"]
    dice = _panel_lines(axes[2])
    np.testing.assert_allclose(dice["train"], HIST["dice"])
    np.testing.assert_allclose(dice["val"], HIST["val_dice"])
    np.testing.assert_allclose(axes[0].get_lines()[0].get_xdata(), [1, 2, 3])


def test_plot_history_skips_missing_metrics_and_saves_png(tmp_path):
    out = tmp_path / "sub" / "curves.png"
    fig = plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}, path=out, title="run")
    assert [ax.get_title() for ax in fig.get_axes()] == ["Loss"]
    img = np.asarray(Image.open(out))
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert img[..., :3].std() > 10  # not a blank canvas


def test_plot_history_uses_alias_key_for_metric():
    fig = plot_history({"loss": [1.0], "binary_accuracy": [0.5], "val_binary_accuracy": [0.4]})
    assert [ax.get_title() for ax in fig.get_axes()] == ["Loss", "Accuracy"]


def test_plot_history_no_metric_present_raises():
    with pytest.raises(ValueError, match="Received: metrics"):
        plot_history({"foo": [1.0]})


def test_load_history_csv_keeps_epoch(tmp_path):
    p = tmp_path / "h.csv"
    _write_csv(p, HIST)
    h = load_history(p)
    np.testing.assert_allclose(h["epoch"], [0, 1, 2])
    np.testing.assert_allclose(h["val_loss"], HIST["val_loss"])


def test_plot_history_with_real_keras_history():
    keras = pytest.importorskip("keras")
    x = np.random.default_rng(0).random((8, 4)).astype("float32")
    y = (x.sum(1, keepdims=True) > 2).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, epochs=2, validation_data=(x, y), verbose=0)
    fig = plot_history(h)
    assert [ax.get_title() for ax in fig.get_axes()] == ["Loss", "Accuracy"]


def test_plot_histories_mean_and_band_across_seeds(tmp_path):
    s1 = {"val_dice": [0.5, 0.7], "dice": [0.6, 0.8]}
    s2 = {"val_dice": [0.7, 0.9], "dice": [0.6, 0.8]}
    fig = plot_histories({"baseline": [s1, s2], "augmented": HIST}, metrics=("dice",), path=tmp_path / "a.png")
    (ax,) = fig.get_axes()
    lines = _panel_lines(ax)
    np.testing.assert_allclose(lines["baseline val (n=2)"], [0.6, 0.8])
    np.testing.assert_allclose(lines["augmented val"], HIST["val_dice"])
    # one band per multi-seed arm and split: std of (0.5,0.7) = 0.1
    bands = ax.collections
    assert len(bands) == 2
    train_band, val_band = (b.get_paths()[0].vertices[:, 1] for b in bands)
    np.testing.assert_allclose([train_band.min(), train_band.max()], [0.6, 0.8], atol=1e-9)  # seeds agree
    np.testing.assert_allclose([val_band.min(), val_band.max()], [0.5, 0.9], atol=1e-9)
    assert (tmp_path / "a.png").stat().st_size > 1000


def test_plot_histories_unequal_lengths_and_bad_band():
    fig = plot_histories({"a": [{"val_loss": [1.0, 0.5, 0.2]}, {"val_loss": [0.8]}]}, metrics=("loss",), band="minmax")
    np.testing.assert_allclose(fig.get_axes()[0].get_lines()[0].get_ydata(), [0.9, 0.5, 0.2])
    with pytest.raises(ValueError, match="band"):
        plot_histories({"a": HIST}, band="iqr")
