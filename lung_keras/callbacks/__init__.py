"""lung_keras.callbacks: Keras callbacks for segmentation training (prediction grids, scalars), the final
test-set log, and the one TensorBoard event writer (`EventWriter`)."""

from lung_keras.callbacks.display_callback import DisplayCallback
from lung_keras.callbacks.events import EventWriter
from lung_keras.callbacks.events import ScalarLogger
from lung_keras.callbacks.test_predictions import dashboard_available
from lung_keras.callbacks.test_predictions import dashboard_tag
from lung_keras.callbacks.test_predictions import log_test_predictions
from lung_keras.callbacks.test_predictions import log_test_split
from lung_keras.callbacks.test_predictions import shared_images_dir
