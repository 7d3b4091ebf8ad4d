"""lung_keras: Keras 3 lung segmentation on chest X-rays when healthy-lung data is scarce.

Subpackages: `augment`, `data`, `models`, `preprocessing`, `metrics`, `losses`, `callbacks`, `viz`.

`import lung_keras` stays light (no Keras, no TensorFlow) yet makes every saved lung_keras model loadable
with `keras.saving.load_model`: its classes are registered as soon as Keras is imported (see
`lung_keras.saving`). `lung_keras.load_model(path)` does the same with clearer errors. Subpackages load on
first attribute access (`lung_keras.models.unet`).
"""

import importlib

from lung_keras import saving as _saving

__version__ = "0.1.0"

_SUBPACKAGES = ("augment", "callbacks", "data", "losses", "metrics", "models", "preprocessing", "report", "stats", "viz")


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a `.keras` model saved by lung_keras; see `lung_keras.saving.load_model`."""
    return _saving.load_model(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"lung_keras.{name}")
    raise AttributeError(f"module 'lung_keras' has no attribute {name!r}")


_saving.install()
