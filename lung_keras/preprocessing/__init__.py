"""lung_keras.preprocessing: in-graph preprocessing layers that are saved with the model.

`IntensityNormalization`: per-image standardization, percentile clipping/rescale or histogram equalization.
`Windowing`: CT Hounsfield-unit windows (level/width, one or several as channels) to [0, 1]; `window_hu` is its
arithmetic as a function (numpy arrays or tensors).
"""

from lung_keras.preprocessing.intensity_normalization import MODES
from lung_keras.preprocessing.intensity_normalization import IntensityNormalization
from lung_keras.preprocessing.windowing import LUNG_WINDOW
from lung_keras.preprocessing.windowing import MEDIASTINUM_WINDOW
from lung_keras.preprocessing.windowing import Windowing
from lung_keras.preprocessing.windowing import window_hu

__all__ = ["IntensityNormalization", "LUNG_WINDOW", "MEDIASTINUM_WINDOW", "MODES", "Windowing", "window_hu"]

from lung_keras import saving as _saving  # noqa: E402

_saving.register_pending()  # see lung_keras.saving: registration that waited for this import to finish
