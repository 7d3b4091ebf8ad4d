"""Overlap scores per image (and per class), in `keras.ops`, shared by the metrics and the evaluation code."""

import numpy as np
from keras import ops

REDUCTIONS = ("per_image", "global")


def check_finite(x, name, owner):
    """Raise a `ValueError` naming `owner` and `name` when `x` holds NaN or infinite values.

    A NaN prediction thresholds to background and a NaN label compares as background, so without this check
    a diverged model or a broken label array would score as a plausible number. The values are checked when
    they are known now (numpy arrays, eager tensors); inside a traced graph (`model.fit`, `tf.function`,
    `jax.jit`) they are not, and the check is skipped.
    """
    if isinstance(x, (np.ndarray, list, tuple, float, int)):
        values = np.asarray(x)
    else:
        try:
            values = np.asarray(ops.convert_to_numpy(x))
        except Exception:  # a symbolic or traced tensor: no values to check
            return
    if values.dtype.kind not in "fc":
        return
    finite = np.isfinite(values)
    if finite.all():
        return
    n_nan = int(np.isnan(values).sum())
    n_inf = int(values.size - finite.sum()) - n_nan
    raise ValueError(
        f"{owner}: `{name}` must be finite; it holds {n_nan} NaN and {n_inf} infinite value(s) out of {values.size} "
        f"(a diverged model or a broken array?). Received: {name}.shape={tuple(values.shape)}"
    )


def one_hot_pair(y_true, y_pred, threshold=0.5, from_logits=False, include_background=True):
    """Binarize a prediction and align it with the labels as `(batch, pixels, classes)` float tensors.

    - One output channel: foreground where `sigmoid?(y_pred) >= threshold`; labels foreground where `> 0.5`.
    - Several channels: the arg-max class (softmax outputs); labels either one-hot with the same channels
      or integer class maps (`(..., 1)` or without a channel axis). `include_background=False` drops class 0.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    num_classes = y_pred.shape[-1]
    if len(y_true.shape) == len(y_pred.shape) - 1:
        y_true = ops.expand_dims(y_true, -1)
    batch = ops.shape(y_pred)[0]
    if num_classes == 1:
        if from_logits:
            y_pred = ops.sigmoid(y_pred)
        pred = ops.cast(ops.greater_equal(ops.cast(y_pred, "float32"), threshold), "float32")
        true = ops.cast(ops.greater(ops.cast(y_true, "float32"), 0.5), "float32")
    else:
        pred = ops.one_hot(ops.argmax(y_pred, axis=-1), num_classes, dtype="float32")
        if y_true.shape[-1] == num_classes:
            true = ops.cast(y_true, "float32")
        else:
            true = ops.one_hot(ops.cast(y_true[..., 0], "int32"), num_classes, dtype="float32")
        if not include_background:
            pred, true = pred[..., 1:], true[..., 1:]
    channels = pred.shape[-1]
    return ops.reshape(true, (batch, -1, channels)), ops.reshape(pred, (batch, -1, channels))


def overlap_counts(y_true, y_pred, **kwargs):
    """Return `(intersection, true_sum, pred_sum)`, each `(batch, classes)`. kwargs as in `one_hot_pair`."""
    true, pred = one_hot_pair(y_true, y_pred, **kwargs)
    return ops.sum(true * pred, axis=1), ops.sum(true, axis=1), ops.sum(pred, axis=1)


def _score(intersection, true_sum, pred_sum, kind):
    if kind == "dice":
        num, den = 2.0 * intersection, true_sum + pred_sum
    else:
        num, den = intersection, true_sum + pred_sum - intersection
    empty = ops.equal(true_sum + pred_sum, 0.0)
    return ops.where(empty, 0.0, num / ops.where(empty, 1.0, den)), empty


def scores_from_counts(intersection, true_sum, pred_sum, kind="dice", ignore_empty=False, empty_score=1.0):
    """Per-row scores from counts of shape `(rows, classes)`, averaged over classes.

    Rows where a class has neither true nor predicted pixels count `empty_score` for that class, or are left
    out of the class average when `ignore_empty=True`; a row with every class left out scores NaN.
    """
    score, empty = _score(intersection, true_sum, pred_sum, kind)
    if ignore_empty:
        keep = ops.cast(ops.logical_not(empty), "float32")
        n = ops.sum(keep, axis=-1)
        total = ops.sum(score * keep, axis=-1)
        return ops.where(n > 0, total / ops.maximum(n, 1.0), float("nan"))
    score = ops.where(empty, float(empty_score), score)
    return ops.mean(score, axis=-1)


def dice_per_image(y_true, y_pred, threshold=0.5, ignore_empty=False, empty_score=1.0, **kwargs):
    """Dice of each image (mean over classes): `2|T∩P| / (|T| + |P|)`.

    Both masks empty: `empty_score` (default 1.0), or NaN when `ignore_empty=True`.

    Example:
        >>> import numpy as np
        >>> t = np.array([[[1, 1], [0, 0]]], "float32")[..., None]
        >>> p = np.array([[[1, 0], [0, 0]]], "float32")[..., None]
        >>> float(dice_per_image(t, p)[0])  # 2*1 / (2 + 1)
        0.6666666865348816
    """
    check_finite(y_true, "y_true", "dice_per_image")
    check_finite(y_pred, "y_pred", "dice_per_image")
    counts = overlap_counts(y_true, y_pred, threshold=threshold, **kwargs)
    return scores_from_counts(*counts, kind="dice", ignore_empty=ignore_empty, empty_score=empty_score)


def iou_per_image(y_true, y_pred, threshold=0.5, ignore_empty=False, empty_score=1.0, **kwargs):
    """Intersection over union of each image: `|T∩P| / |T∪P|`; empty handling as in `dice_per_image`."""
    check_finite(y_true, "y_true", "iou_per_image")
    check_finite(y_pred, "y_pred", "iou_per_image")
    counts = overlap_counts(y_true, y_pred, threshold=threshold, **kwargs)
    return scores_from_counts(*counts, kind="iou", ignore_empty=ignore_empty, empty_score=empty_score)


def validate(reduction, threshold):
    if reduction not in REDUCTIONS:
        raise ValueError(f"`reduction` must be one of {REDUCTIONS}. Received: reduction={reduction!r}")
    if not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"`threshold` must be in (0, 1). Received: threshold={threshold}")

