import keras
from keras import ops

from lung_keras.metrics.functional import check_finite


def _soft_counts(y_true, y_pred, from_logits, include_background, squared_pred):
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) == len(y_pred.shape) - 1:
        y_true = ops.expand_dims(y_true, -1)
    num_classes = y_pred.shape[-1]
    y_pred = ops.cast(y_pred, "float32")
    if from_logits:
        y_pred = ops.sigmoid(y_pred) if num_classes == 1 else ops.softmax(y_pred, axis=-1)
    if num_classes > 1 and y_true.shape[-1] != num_classes:
        y_true = ops.one_hot(ops.cast(y_true[..., 0], "int32"), num_classes, dtype="float32")
    y_true = ops.cast(y_true, "float32")
    if num_classes > 1 and not include_background:
        y_true, y_pred = y_true[..., 1:], y_pred[..., 1:]
    batch = ops.shape(y_pred)[0]
    channels = y_pred.shape[-1]
    t = ops.reshape(y_true, (batch, -1, channels))
    p = ops.reshape(y_pred, (batch, -1, channels))
    p_sum = ops.sum(p * p if squared_pred else p, axis=1)
    t_sum = ops.sum(t * t if squared_pred else t, axis=1)
    return ops.sum(t * p, axis=1), t_sum, p_sum


@keras.saving.register_keras_serializable(package="lung_keras")
class DiceLoss(keras.losses.Loss):
    """Soft Dice loss `1 - (2 Σ t·p + smooth_nr) / (Σ t + Σ p + smooth_dr)`, averaged over classes.

    Args:
        smooth_nr: added to the numerator. Defaults to 1e-5.
        smooth_dr: added to the denominator; keeps the loss and its gradient finite when both masks are
            empty (then the loss is `1 - smooth_nr / smooth_dr`, 0 with the defaults). Defaults to 1e-5.
        batch: False (default): one Dice per image, the loss is their mean (each image counts the same).
            True: sums over the whole batch before the ratio (global Dice; big masks weigh more).
        squared_pred: use `Σ p²` and `Σ t²` in the denominator (V-Net form).
        from_logits: apply sigmoid (one channel) or softmax (several) to `y_pred` first.
        include_background: multi-class only: whether channel 0 enters the average.
        reduction, name: as for every `keras.losses.Loss`.

    Example:
        >>> import numpy as np
        >>> y = np.ones((1, 2, 2, 1), "float32")
        >>> float(DiceLoss()(y, y))  # perfect prediction
        0.0
    """

    def __init__(
        self,
        smooth_nr=1e-5,
        smooth_dr=1e-5,
        batch=False,
        squared_pred=False,
        from_logits=False,
        include_background=True,
        reduction="sum_over_batch_size",
        name="dice_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if smooth_nr < 0 or smooth_dr < 0:
            raise ValueError(
                f"Smoothing terms must be >= 0. Received: smooth_nr={smooth_nr}, smooth_dr={smooth_dr}"
            )
        self.smooth_nr = float(smooth_nr)
        self.smooth_dr = float(smooth_dr)
        self.batch = bool(batch)
        self.squared_pred = bool(squared_pred)
        self.from_logits = bool(from_logits)
        self.include_background = bool(include_background)

    def call(self, y_true, y_pred):
        check_finite(y_true, "y_true", type(self).__name__)
        check_finite(y_pred, "y_pred", type(self).__name__)
        inter, t_sum, p_sum = _soft_counts(y_true, y_pred, self.from_logits, self.include_background, self.squared_pred)
        if self.batch:
            inter, t_sum, p_sum = (ops.sum(v, axis=0, keepdims=True) for v in (inter, t_sum, p_sum))
        dice = (2.0 * inter + self.smooth_nr) / (t_sum + p_sum + self.smooth_dr)
        loss = 1.0 - ops.mean(dice, axis=-1)
        if self.batch:
            loss = ops.broadcast_to(loss, (ops.shape(y_pred)[0],))
        return loss

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "smooth_nr": self.smooth_nr,
                "smooth_dr": self.smooth_dr,
                "batch": self.batch,
                "squared_pred": self.squared_pred,
                "from_logits": self.from_logits,
                "include_background": self.include_background,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="lung_keras")
class BceDiceLoss(keras.losses.Loss):
    """`bce_weight * cross-entropy + dice_weight * DiceLoss`, per image.

    Cross-entropy is binary for one output channel and categorical for several (labels one-hot or integer).

    Args:
        bce_weight: weight of the pixel-mean cross-entropy. Defaults to 1.0.
        dice_weight: weight of the soft Dice loss. Defaults to 1.0.
        smooth_nr, smooth_dr, batch, squared_pred, from_logits, include_background: as in `DiceLoss`.
    """

    def __init__(
        self,
        bce_weight=1.0,
        dice_weight=1.0,
        smooth_nr=1e-5,
        smooth_dr=1e-5,
        batch=False,
        squared_pred=False,
        from_logits=False,
        include_background=True,
        reduction="sum_over_batch_size",
        name="bce_dice_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if bce_weight < 0 or dice_weight < 0:
            raise ValueError(
                f"Loss weights must be >= 0. Received: bce_weight={bce_weight}, dice_weight={dice_weight}"
            )
        self.bce_weight = float(bce_weight)
        self.dice_weight = float(dice_weight)
        self.from_logits = bool(from_logits)
        self.dice = DiceLoss(smooth_nr, smooth_dr, batch, squared_pred, from_logits, include_background)

    def call(self, y_true, y_pred):
        check_finite(y_true, "y_true", type(self).__name__)
        check_finite(y_pred, "y_pred", type(self).__name__)
        y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
        y_true = ops.cast(ops.convert_to_tensor(y_true), "float32")
        if len(y_true.shape) == len(y_pred.shape) - 1:
            y_true = ops.expand_dims(y_true, -1)
        batch = ops.shape(y_pred)[0]
        if y_pred.shape[-1] == 1:
            ce = keras.losses.binary_crossentropy(y_true, y_pred, from_logits=self.from_logits)
        elif y_true.shape[-1] == y_pred.shape[-1]:
            ce = keras.losses.categorical_crossentropy(y_true, y_pred, from_logits=self.from_logits)
        else:
            ce = keras.losses.sparse_categorical_crossentropy(y_true[..., 0], y_pred, from_logits=self.from_logits)
        ce = ops.mean(ops.reshape(ce, (batch, -1)), axis=-1)
        return self.bce_weight * ce + self.dice_weight * self.dice.call(y_true, y_pred)

    def get_config(self):
        config = super().get_config()
        dice = self.dice.get_config()
        config.update({"bce_weight": self.bce_weight, "dice_weight": self.dice_weight})
        for key in ("smooth_nr", "smooth_dr", "batch", "squared_pred", "from_logits", "include_background"):
            config[key] = dice[key]
        return config
