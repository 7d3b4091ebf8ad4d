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


def test_train_dashed_val_solid_in_both_plots():
    single = {line.get_label(): line.get_linestyle() for line in plot_history(HIST, best=None).get_axes()[2].get_lines()}
    arms = {line.get_label(): line.get_linestyle()
            for line in plot_histories({"a": HIST}, best=None).get_axes()[2].get_lines()}
    assert single == {"train": "--", "val": "-"}
    assert arms == {"a train": "--", "a val": "-"}


def test_plot_history_marks_the_best_validation_epoch():
    hist = dict(HIST, val_dice=[0.35, 0.81, 0.78])  # best val Dice at epoch 2 (1-based), not the last
    axes = plot_history(hist).get_axes()
    for ax in axes:  # a dotted line at epoch 2 on every panel, its legend naming the epoch and value
        (vline,) = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
        np.testing.assert_allclose(vline.get_xdata(), [2, 2])
        assert vline.get_label() == "best epoch 2 (val_dice 0.810)"
        assert "best epoch 2 (val_dice 0.810)" in [t.get_text() for t in ax.get_legend().get_texts()]
    stars = [line for ax in axes for line in ax.get_lines() if line.get_marker() == "*"]
    assert len(stars) == 1  # on the Dice panel only, on the validation curve
    assert stars[0] in axes[2].get_lines()
    np.testing.assert_allclose(stars[0].get_xydata(), [[2, 0.81]])
    # Without val_dice the lowest validation loss is the best epoch; best=None marks nothing.
    no_dice = {k: v for k, v in HIST.items() if "dice" not in k}
    (loss_star,) = [line for line in plot_history(no_dice).get_axes()[0].get_lines() if line.get_marker() == "*"]
    np.testing.assert_allclose(loss_star.get_xydata(), [[3, 0.4]])
    assert not [line for ax in plot_history(hist, best=None).get_axes() for line in ax.get_lines()
                if line.get_linestyle() == ":" or line.get_marker() == "*"]


def test_plot_histories_stars_each_arms_best_mean_epoch():
    s1 = {"val_dice": [0.5, 0.9, 0.7], "dice": [0.6, 0.8, 0.9]}
    s2 = {"val_dice": [0.7, 0.7, 0.8], "dice": [0.6, 0.8, 0.9]}  # mean val Dice 0.6, 0.8, 0.75 -> epoch 2
    (ax,) = plot_histories({"baseline": [s1, s2], "augmented": HIST}, metrics=("dice",)).get_axes()
    stars = {line.get_label(): line.get_xydata().tolist() for line in ax.get_lines() if line.get_marker() == "*"}
    assert stars == {"baseline best: epoch 2": [[2, 0.8]], "augmented best: epoch 3": [[3, 0.78]]}
    colours = {line.get_label(): line.get_color() for line in ax.get_lines()}
    assert colours["baseline best: epoch 2"] == colours["baseline val (n=2)"]
