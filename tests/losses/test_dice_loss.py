import keras
import numpy as np
import pytest

from lung_keras.losses import BceDiceLoss
from lung_keras.losses import DiceLoss

T = np.array([[1, 1], [0, 0]], "float32")[None, ..., None]
P = np.array([[0.5, 0.5], [0.5, 0.0]], "float32")[None, ..., None]
Z = np.zeros((1, 2, 2, 1), "float32")

# [kwargs, y_true, y_pred, expected]
TEST_CASES = [
    # perfect prediction: loss 0 (up to smoothing)
    [{}, T, T, 0.0],
    # soft: 1 - 2*1 / (2 + 1.5) = 1 - 4/7
    [{"smooth_nr": 0.0, "smooth_dr": 0.0}, T, P, 1 - 4 / 7],
    # both empty: 1 - smooth_nr/smooth_dr = 0
    [{}, Z, Z, 0.0],
    # both empty, smooth_nr=0: 1 - 0/1 = 1 (explicit choice)
    [{"smooth_nr": 0.0, "smooth_dr": 1.0}, Z, Z, 1.0],
    # squared_pred: 1 - 2*1 / (2 + 0.75)
    [{"smooth_nr": 0.0, "smooth_dr": 0.0, "squared_pred": True}, T, P, 1 - 2 / 2.75],
]


@pytest.mark.parametrize("kwargs, y_true, y_pred, expected", TEST_CASES)
def test_dice_loss_table(kwargs, y_true, y_pred, expected):
    assert float(DiceLoss(**kwargs)(y_true, y_pred)) == pytest.approx(expected, abs=1e-5)


def test_batch_vs_per_image():
    y_true = np.concatenate([T, Z])
    y_pred = np.concatenate([P, np.ones_like(Z)])
    per_image = 0.5 * ((1 - 2 / 3.5) + 1.0)  # 0.7143
    batch = 1 - 2 * 1 / (2 + 1.5 + 4)  # 0.7333
    kw = {"smooth_nr": 0.0, "smooth_dr": 0.0}
    assert float(DiceLoss(**kw)(y_true, y_pred)) == pytest.approx(per_image, abs=1e-5)
    assert float(DiceLoss(batch=True, **kw)(y_true, y_pred)) == pytest.approx(batch, abs=1e-5)


def test_gradients_finite_at_zero_input():
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        pytest.skip("gradient check written with tf.GradientTape")
    for loss in (DiceLoss(), BceDiceLoss(), DiceLoss(from_logits=True)):
        y_pred = tf.Variable(np.zeros((2, 4, 4, 1), "float32"))
        with tf.GradientTape() as tape:
            value = loss(np.zeros((2, 4, 4, 1), "float32"), y_pred)
        grad = tape.gradient(value, y_pred).numpy()
        assert np.isfinite(value.numpy()) and np.isfinite(grad).all()


def test_bce_dice_combines():
    bce = float(keras.losses.BinaryCrossentropy()(T, P))
    dice = float(DiceLoss()(T, P))
    assert float(BceDiceLoss(bce_weight=2.0, dice_weight=0.5)(T, P)) == pytest.approx(2 * bce + 0.5 * dice, rel=1e-5)
    assert float(BceDiceLoss()(T, T)) == pytest.approx(0.0, abs=1e-5)


def test_multiclass_integer_labels():
    labels = np.array([[[0], [1]], [[1], [0]]], "float32")[None]
    onehot = keras.ops.convert_to_numpy(keras.ops.one_hot(labels[..., 0].astype("int32"), 2))
    assert float(DiceLoss()(labels, onehot)) == pytest.approx(0.0, abs=1e-5)
    assert float(DiceLoss()(onehot, onehot)) == pytest.approx(0.0, abs=1e-5)


def test_serialization():
    for loss in (DiceLoss(smooth_nr=0.1, batch=True), BceDiceLoss(bce_weight=0.3, squared_pred=True)):
        clone = keras.losses.deserialize(keras.losses.serialize(loss))
        assert clone.get_config() == loss.get_config()
    with pytest.raises(ValueError, match="smooth"):
        DiceLoss(smooth_dr=-1)
