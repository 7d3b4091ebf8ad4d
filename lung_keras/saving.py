"""Saved models that load anywhere: registration of every lung_keras serializable, and `load_model`.

Keras finds a custom class in a `.keras` file only if the class was registered
(`keras.saving.register_keras_serializable`) in the loading process, which happens when the module that
defines it is imported. `import lung_keras` therefore arranges for every serializable to be registered:

- if Keras is already imported, at once;
- otherwise as soon as Keras is imported (a post-import hook), so `import lung_keras` alone stays light and
  `lung-keras --help` never loads Keras or TensorFlow.

`lung_keras.load_model(path)` registers explicitly and turns the usual failures (missing file, a file that is
not a `.keras` archive, an unknown class) into one `ValueError` naming the file.
"""

import importlib
import importlib.abc
import pathlib
import sys
import threading
import warnings
import zipfile

# Every subpackage that defines a registered serializable (layers, models, losses, metrics).
SERIALIZABLE_MODULES = (
    "lung_keras.models",
    "lung_keras.preprocessing",
    "lung_keras.augment",
    "lung_keras.losses",
    "lung_keras.metrics",
)

_lock = threading.RLock()
_registered = False
_pending = False  # Keras is loaded but registration met a lung_keras module still being imported


def register_serializables():
    """Import every lung_keras module that registers a Keras serializable (idempotent)."""
    global _registered, _pending
    with _lock:
        if _registered:
            return
        for name in SERIALIZABLE_MODULES:
            importlib.import_module(name)
        _registered, _pending = True, False


def _try_register():
    """Register now; if a lung_keras module is mid-import (it imported Keras itself), leave it pending: every
    serializable subpackage calls `register_pending()` when it finishes importing."""
    global _pending
    try:
        register_serializables()
    except ImportError:
        _pending = True


def register_pending():
    """Finish a registration that had to wait for a lung_keras module to finish importing."""
    if _pending and not _registered:
        _try_register()


class _KerasImportHook(importlib.abc.MetaPathFinder):
    """Registers lung_keras' serializables right after the `keras` package finishes importing."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        # Ask the finders after this one (site-packages, editable installs, ...) where Keras is.
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _RegisteringLoader(spec.loader)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _remove_hook()
        try:
            _try_register()
        except Exception as error:  # never break `import keras`; load_model registers again and raises
            warnings.warn(f"lung_keras: could not register its Keras classes ({error!r})", stacklevel=2)

    def __getattr__(self, name):  # get_resource_reader, is_package, ... of the wrapped loader
        return getattr(self._loader, name)


_hook = _KerasImportHook()


def _remove_hook():
    with _lock:
        if _hook in sys.meta_path:
            sys.meta_path.remove(_hook)


def install():
    """Register now if Keras is loaded, else once it is (called by `import lung_keras`)."""
    if "keras" in sys.modules:
        _try_register()
        return
    with _lock:
        if _hook not in sys.meta_path:
            sys.meta_path.insert(0, _hook)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a `.keras` model saved by lung_keras (or any Keras model using its layers).

    Args:
        filepath: path of a `.keras` file.
        custom_objects: more custom classes or functions, as for `keras.saving.load_model`.
        compile: whether to compile the model after loading.
        safe_mode: as for `keras.saving.load_model`.

    Returns:
        The `keras.Model`.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: naming the file, when it is not a complete `.keras` archive (truncated, corrupt, or another
            format) or holds a class that cannot be found.
    """
    path = pathlib.Path(filepath)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    if path.suffix != ".keras":
        raise ValueError(f"{path}: not a .keras file (lung_keras saves models in the Keras v3 `.keras` format)")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the model file is empty (0 bytes); was its save interrupted?")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a valid .keras archive (corrupt or truncated; a .keras file is a zip archive)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"{path}: not a valid .keras archive ({error})") from error
    if bad is not None:
        raise ValueError(f"{path}: corrupt .keras archive (member {bad!r} fails its CRC check)")
    if "config.json" not in names:
        raise ValueError(f"{path}: not a .keras model archive (no config.json inside)")
    register_serializables()
    import keras

    try:
        return keras.saving.load_model(str(path), custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)
    except (TypeError, ValueError, KeyError, OSError) as error:
        raise ValueError(f"{path}: cannot load the model ({error})") from error
