"""lung_keras: Keras 3 lung segmentation on chest X-rays when healthy-lung data is scarce.

Subpackages: `augment`, `data`, `models`, `metrics`, `losses`, `callbacks`, `viz`.
"""

__version__ = "0.1.0"
