import keras
from keras import ops

from lung_keras.metrics import functional as F


class _OverlapMetric(keras.metrics.Metric):
    _kind = None

    def __init__(
        self,
        threshold=0.5,
        reduction="per_image",
        ignore_empty=False,
        empty_score=1.0,
        from_logits=False,
        include_background=True,
        num_classes=1,
        name=None,
        dtype="float32",
    ):
        super().__init__(name=name or self._kind, dtype=dtype)
        F.validate(reduction, threshold)
        self.threshold = float(threshold)
        self.reduction = reduction
        self.ignore_empty = bool(ignore_empty)
        self.empty_score = float(empty_score)
        self.from_logits = bool(from_logits)
        self.include_background = bool(include_background)
        if int(num_classes) < 1:
            raise ValueError(f"`num_classes` must be >= 1. Received: num_classes={num_classes}")
        self.num_classes = int(num_classes)
        # per_image: running sum of image scores and number of images counted.
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")
        # global: pixel counts summed over every image seen, per class.
        channels = 1 if num_classes == 1 else num_classes - (0 if include_background else 1)
        self.intersection = self.add_variable(shape=(channels,), initializer="zeros", name="intersection")
        self.true_sum = self.add_variable(shape=(channels,), initializer="zeros", name="true_sum")
        self.pred_sum = self.add_variable(shape=(channels,), initializer="zeros", name="pred_sum")

    def _counts(self, y_true, y_pred):
        return F.overlap_counts(
            y_true,
            y_pred,
            threshold=self.threshold,
            from_logits=self.from_logits,
            include_background=self.include_background,
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        F.check_finite(y_true, "y_true", type(self).__name__)
        F.check_finite(y_pred, "y_pred", type(self).__name__)
        inter, tsum, psum = self._counts(y_true, y_pred)
        if self.reduction == "global":
            self.intersection.assign_add(ops.sum(inter, axis=0))
            self.true_sum.assign_add(ops.sum(tsum, axis=0))
            self.pred_sum.assign_add(ops.sum(psum, axis=0))
            return
        scores = F.scores_from_counts(
            inter, tsum, psum, kind=self._kind, ignore_empty=self.ignore_empty, empty_score=self.empty_score
        )
        weight = ops.ones_like(scores) if sample_weight is None else ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
        valid = ops.logical_not(ops.isnan(scores))
        weight = ops.where(valid, weight, 0.0)
        self.total.assign_add(ops.sum(ops.where(valid, scores, 0.0) * weight))
        self.count.assign_add(ops.sum(weight))

    def result(self):
        if self.reduction == "global":
            scores = F.scores_from_counts(
                self.intersection[None],
                self.true_sum[None],
                self.pred_sum[None],
                kind=self._kind,
                ignore_empty=self.ignore_empty,
                empty_score=self.empty_score,
            )
            return scores[0]
        return ops.where(self.count > 0, self.total / ops.maximum(self.count, 1e-12), float("nan"))

    def reset_state(self):
        for v in (self.total, self.count, self.intersection, self.true_sum, self.pred_sum):
            v.assign(ops.zeros(v.shape, v.dtype))

    def get_config(self):
        return {
            "threshold": self.threshold,
            "reduction": self.reduction,
            "ignore_empty": self.ignore_empty,
            "empty_score": self.empty_score,
            "from_logits": self.from_logits,
            "include_background": self.include_background,
            "num_classes": self.num_classes,
            "name": self.name,
            "dtype": self.dtype,
        }


@keras.saving.register_keras_serializable(package="lung_keras")
class Dice(_OverlapMetric):
    """Streaming Dice coefficient `2|T∩P| / (|T| + |P|)` of thresholded predictions.

    Args:
        threshold: probability at or above which a pixel is predicted foreground (one-channel outputs;
            several channels use the arg-max class). Defaults to 0.5.
        reduction: `"per_image"` (default): the mean over images of each image's Dice, so every patient
            counts the same; `"global"`: one Dice from pixel counts summed over every image seen, so large
            lungs weigh more.
        ignore_empty: how to count an image whose true and predicted masks are both empty. False (default)
            scores it `empty_score`; True leaves it out of the mean (`global`: a class empty in every image
            is left out; NaN if nothing is left).
        empty_score: score of a both-empty image when `ignore_empty=False`. Defaults to 1.0 (a correct
            "no lung here"). An empty truth with a non-empty prediction always scores 0.
        from_logits: apply a sigmoid to one-channel predictions before thresholding.
        include_background: multi-class only: whether class 0 enters the class average.
        num_classes: output channels of the model (1 for a sigmoid lung mask); sizes the `global` counters.

    Example:
        >>> m = Dice()
        >>> m.update_state([[[[1.0], [1.0]], [[0.0], [0.0]]]], [[[[0.9], [0.2]], [[0.1], [0.0]]]])
        >>> round(float(m.result()), 4)  # 2*1 / (2 + 1)
        0.6667
    """

    _kind = "dice"


@keras.saving.register_keras_serializable(package="lung_keras")
class IoU(_OverlapMetric):
    """Streaming intersection over union (Jaccard) `|T∩P| / |T∪P|`; arguments as in `Dice`."""

    _kind = "iou"
