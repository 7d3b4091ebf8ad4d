"""lung_keras.preprocessing: in-graph preprocessing layers that are saved with the model.

`IntensityNormalization`: per-image standardization, percentile clipping/rescale or histogram equalization.
"""

from lung_keras.preprocessing.intensity_normalization import MODES
from lung_keras.preprocessing.intensity_normalization import IntensityNormalization

__all__ = ["IntensityNormalization", "MODES"]

from lung_keras import saving as _saving  # noqa: E402

_saving.register_pending()  # see lung_keras.saving: registration that waited for this import to finish
