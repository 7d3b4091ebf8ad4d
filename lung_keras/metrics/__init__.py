"""lung_keras.metrics: Dice and IoU with explicit reduction and empty-mask semantics."""

from lung_keras.metrics.functional import dice_per_image
from lung_keras.metrics.functional import iou_per_image
from lung_keras.metrics.overlap import Dice
from lung_keras.metrics.overlap import IoU

from lung_keras import saving as _saving  # noqa: E402

_saving.register_pending()  # see lung_keras.saving: registration that waited for this import to finish
