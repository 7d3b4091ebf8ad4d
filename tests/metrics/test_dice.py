import keras
import numpy as np
import pytest

from lung_keras.metrics import Dice
from lung_keras.metrics import IoU
from lung_keras.metrics import dice_per_image
from lung_keras.metrics import iou_per_image


def img(rows):
    return np.array(rows, "float32")[..., None]


T = img([[1, 1, 0, 0], [1, 1, 0, 0]])  # 4 foreground pixels
P_HALF = img([[1, 1, 1, 1], [0, 0, 0, 0]])  # 4 predicted, 2 overlap
EMPTY = img([[0, 0, 0, 0], [0, 0, 0, 0]])
ONE = img([[0, 0, 0, 1], [0, 0, 0, 0]])

# [kwargs, y_true batch, y_pred batch, expected per_image result, expected global result]
TEST_CASES = [
    # perfect: Dice 1
    [{}, [T], [T], 1.0, 1.0],
    # 2*2 / (4+4) = 0.5
    [{}, [T], [P_HALF], 0.5, 0.5],
    # both empty counts 1.0 by default
    [{}, [EMPTY], [EMPTY], 1.0, 1.0],
    # empty truth, one false positive: 0 / (0 + 1) = 0
    [{}, [EMPTY], [ONE], 0.0, 0.0],
    # per_image: mean(0.5, 1.0) = 0.75; global: 2*(2+0) / (4+4+0+0) = 0.5
    [{}, [T, EMPTY], [P_HALF, EMPTY], 0.75, 0.5],
    # ignore_empty: the empty pair leaves the mean -> 0.5
    [{"ignore_empty": True}, [T, EMPTY], [P_HALF, EMPTY], 0.5, 0.5],
    # empty_score=0 counts a both-empty image as a miss: mean(0.5, 0) = 0.25
    [{"empty_score": 0.0}, [T, EMPTY], [P_HALF, EMPTY], 0.25, 0.5],
    # threshold: probabilities 0.6 are foreground at 0.5, background at 0.7
    [{"threshold": 0.7}, [T], [T * 0.6], 0.0, 0.0],
]


@pytest.mark.parametrize("kwargs, y_true, y_pred, per_image, global_", TEST_CASES)
def test_dice_table(kwargs, y_true, y_pred, per_image, global_):
    y_true, y_pred = np.stack(y_true), np.stack(y_pred)
    for reduction, expected in (("per_image", per_image), ("global", global_)):
        m = Dice(reduction=reduction, **kwargs)
        m.update_state(y_true, y_pred)
        assert float(m.result()) == pytest.approx(expected, abs=1e-6), reduction


def test_iou_worked_numbers():
    # |T∩P| = 2, |T∪P| = 6 -> 1/3 ; Dice would be 0.5
    assert float(iou_per_image(T[None], P_HALF[None])[0]) == pytest.approx(1 / 3)
    m = IoU()
    m.update_state(np.stack([T, EMPTY]), np.stack([P_HALF, EMPTY]))
    assert float(m.result()) == pytest.approx((1 / 3 + 1) / 2)


def test_streaming_equals_one_shot():
    rng = np.random.default_rng(0)
    y_true = (rng.random((10, 16, 16, 1)) > 0.6).astype("float32")
    y_pred = rng.random((10, 16, 16, 1)).astype("float32")
    for reduction in ("per_image", "global"):
        one = Dice(reduction=reduction)
        one.update_state(y_true, y_pred)
        stream = Dice(reduction=reduction)
        for i in range(0, 10, 3):
            stream.update_state(y_true[i : i + 3], y_pred[i : i + 3])
        assert float(stream.result()) == pytest.approx(float(one.result()), abs=1e-6)
    per_image = np.asarray(dice_per_image(y_true, y_pred))
    assert float(one.result()) != pytest.approx(per_image.mean())  # global differs from per-image here
    stream.reset_state()
    assert np.isnan(float(Dice().result()))


def test_ignore_empty_all_empty_is_nan():
    m = Dice(ignore_empty=True)
    m.update_state(EMPTY[None], EMPTY[None])
    assert np.isnan(float(m.result()))


def test_multiclass_argmax_and_background():
    # 2x2 image, classes 0/1/2; labels as integer map.
    labels = np.array([[[0], [1]], [[2], [2]]], "float32")[None]
    probs = keras.ops.convert_to_numpy(keras.ops.one_hot(np.array([[[0, 1], [2, 1]]]), 3))
    # class0: 1/1 -> 1; class1: 2*1/(1+2) = 2/3; class2: 2*1/(2+1) = 2/3
    with_bg = Dice(num_classes=3)
    with_bg.update_state(labels, probs)
    assert float(with_bg.result()) == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    no_bg = Dice(num_classes=3, include_background=False, reduction="global")
    no_bg.update_state(labels, probs)
    assert float(no_bg.result()) == pytest.approx(2 / 3)


def test_serialization_and_compile_fit():
    m = Dice(threshold=0.4, reduction="global", ignore_empty=True, name="gdice")
    clone = keras.metrics.deserialize(keras.metrics.serialize(m))
    assert clone.get_config() == m.get_config()
    with pytest.raises(ValueError, match="reduction"):
        Dice(reduction="mean")
    with pytest.raises(ValueError, match="threshold"):
        Dice(threshold=1.5)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(1, 1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=[Dice(), IoU()])
    x = np.random.default_rng(0).random((4, 8, 8, 1)).astype("float32")
    hist = model.fit(x, (x > 0.5).astype("float32"), epochs=1, verbose=0)
    assert 0.0 <= hist.history["dice"][0] <= 1.0 and "iou" in hist.history
