"""TensorBoard "Segmentation" dashboard for lung_keras.

`lung_keras_tb.summary` writes per-sample image / mask / prediction PNGs and Dice
(with or without TensorFlow); `lung_keras_tb.plugin.SegmentationPlugin` serves
the dashboard, registered through the ``tensorboard_plugins`` entry point.
The plugin module is not imported here, so logging never pulls in the server.
"""

__version__ = "0.1.0"
