"""lung_keras.callbacks: Keras callbacks for segmentation training."""

from lung_keras.callbacks.display_callback import DisplayCallback
