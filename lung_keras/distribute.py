"""Training on several devices or machines: the engines users already run, chosen by one name.

- `"none"`: one device (the default).
- `"mirrored"` (TensorFlow): `tf.distribute.MirroredStrategy` over every GPU of this machine, or over every logical
  CPU device when there is no GPU. Set `LUNG_KERAS_CPU_DEVICES=N` to split the CPU into N logical devices (how the
  tests run two replicas on a laptop).
- `"multiworker"` (TensorFlow): `tf.distribute.MultiWorkerMirroredStrategy`, one process per machine, configured by
  the `TF_CONFIG` environment variable (see the README). Every worker runs the same command; the chief (task
  `chief`, or `worker` 0 when there is no chief) writes the run folder, the others write to a temporary folder
  they delete at the end.
- `"data-parallel"` (JAX): `keras.distribution.DataParallel` over every local device (set
  `XLA_FLAGS=--xla_force_host_platform_device_count=N` for N CPU devices).

`batch_size` is always the global batch: each of N replicas gets `batch_size / N` samples per step. U-Net
batch normalization is synchronized across replicas under TensorFlow strategies (`unet(synchronized=True)`) and is
global by construction under JAX's data parallelism, so N replicas train like one device with the same batch.
"""

import contextlib
import dataclasses
import json
import os

STRATEGIES = ("none", "mirrored", "multiworker", "data-parallel")
_TF_ONLY = ("mirrored", "multiworker")
_JAX_ONLY = ("data-parallel",)


@dataclasses.dataclass
class Distribution:
    """The chosen strategy, ready to use: `scope()` around model building and `compile`, then `fit`."""

    name: str
    replicas: int = 1
    is_chief: bool = True
    devices: tuple = ()
    engine: object = None  # the tf.distribute strategy or keras.distribution object

    def scope(self):
        if self.engine is None:
            return contextlib.nullcontext()
        return self.engine.scope()

    @property
    def synchronized_batchnorm(self):
        return self.name in _TF_ONLY and self.replicas > 1

    def describe(self, batch_size):
        """What `config.json` records: the strategy, replicas, devices and the global/per-replica batch."""
        per_replica = int(batch_size) // max(1, self.replicas)
        return {"strategy": self.name, "replicas": self.replicas, "devices": list(self.devices),
                "global_batch_size": int(batch_size), "per_replica_batch_size": per_replica, "chief": self.is_chief}


def check_strategy(name, backend=None):
    """Validate a strategy name for a backend (default: Keras' current backend); returns it."""
    if name is None:
        return "none"
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}. Received: strategy={name!r}")
    if backend is None:
        import keras

        backend = keras.backend.backend()
    if name in _TF_ONLY and backend != "tensorflow":
        raise ValueError(f"strategy={name!r} is a tf.distribute strategy and needs KERAS_BACKEND=tensorflow "
                         f"(the backend is {backend!r}); on JAX use strategy='data-parallel'.")
    if name in _JAX_ONLY and backend != "jax":
        raise ValueError(f"strategy={name!r} is keras.distribution's and needs KERAS_BACKEND=jax (the backend is "
                         f"{backend!r}); on TensorFlow use strategy='mirrored' or 'multiworker'.")
    return name


def _split_cpu():
    """Split the CPU into `LUNG_KERAS_CPU_DEVICES` logical devices (before TensorFlow initializes its devices)."""
    import tensorflow as tf

    count = int(os.environ.get("LUNG_KERAS_CPU_DEVICES", "0") or 0)
    if count > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
        except RuntimeError as error:  # devices already initialized: keep what exists
            if len(tf.config.list_logical_devices("CPU")) != count:
                raise RuntimeError(
                    f"LUNG_KERAS_CPU_DEVICES={count} must take effect before TensorFlow starts ({error})") from None


def is_chief_worker(tf_config=None):
    """Whether this process is the chief of a multi-worker cluster described by `TF_CONFIG`."""
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}")) if tf_config is None else tf_config
    task = tf_config.get("task", {})
    cluster = tf_config.get("cluster", {})
    kind, index = task.get("type"), int(task.get("index", 0))
    if kind is None or kind == "chief":
        return True
    return kind == "worker" and index == 0 and "chief" not in cluster


_CREATED = {}  # TensorFlow strategies, one per process and name (collectives are configured once, at start)


def make_distribution(name="none"):
    """Create the strategy `name` (see the module docstring), or return the one this process already created.
    Call it before any other TensorFlow work in the process: TensorFlow configures devices and collective
    communication once, at start."""
    name = check_strategy(name)
    if name == "none":
        return Distribution("none")
    if name not in _CREATED:
        _CREATED[name] = _create(name)
    return _CREATED[name]


def _create(name):
    if name == "data-parallel":
        import keras

        devices = keras.distribution.list_devices()
        return Distribution(name, len(devices), True, tuple(devices), keras.distribution.DataParallel(devices=devices))
    import tensorflow as tf

    if name == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("strategy='multiworker' needs the TF_CONFIG environment variable describing the cluster "
                             "(see the README); for one machine use strategy='mirrored'.")
        _split_cpu()
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        return Distribution(name, strategy.num_replicas_in_sync, is_chief_worker(), (), strategy)
    _split_cpu()
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    strategy = tf.distribute.MirroredStrategy(devices)
    return Distribution(name, strategy.num_replicas_in_sync, True, tuple(devices), strategy)
