"""The one TensorBoard event writer of lung_keras, and the training scalars written with it.

`EventWriter` writes an event file as TensorBoard's `EventFileWriter` does, through TensorBoard's own record
writer, never importing TensorFlow, with the two things lung_keras writes: summaries (`DisplayCallback`'s image
grids and dashboard summaries) and scalars. (The Segmentation dashboard's `lung_keras_tb.summary` is a separate
package that does not depend on lung_keras; its `SegmentationWriter` writes the same format.)

`ScalarLogger` is what `train` logs with in place of `keras.callbacks.TensorBoard`, so training logs under any
backend without TensorFlow. The TensorBoard Scalars tab shows the tags Keras' callback writes: in
`<log_dir>/train`, `epoch_<name>` for every training log (`loss`, `accuracy`, `dice`, `time`) and
`epoch_learning_rate`; in `<log_dir>/validation`, `epoch_<name>` for each `val_<name>` log at the epoch step and
`evaluation_<name>_vs_iterations` at the optimizer's iteration count.
"""

import itertools
import os
import socket
import threading
import time

import keras
import numpy as np


def scalar_value(tag, value):
    """A `Summary.Value` in the scalars plugin's tensor format (what `tf.summary.scalar` writes)."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.scalar import metadata as scalar_metadata
    from tensorboard.util import tensor_util

    return summary_pb2.Summary.Value(tag=tag, metadata=scalar_metadata.create_summary_metadata(display_name=tag,
                                                                                               description=""),
                                     tensor=tensor_util.make_tensor_proto(np.float32(value)))


_uid = itertools.count(1)  # distinct file names within a process (as EventFileWriter's counter)


class EventWriter:
    """One event file in `logdir` (created if missing), in TensorBoard's record format, without TensorFlow.

    The file is named and opened as TensorBoard's `EventFileWriter` does (`events.out.tfevents.<time>.<host>.
    <pid>.<n><suffix>`, a `brain.Event:2` version event first) and written through TensorBoard's
    `RecordWriter`, the layer `EventFileWriter` writes with. `EventFileWriter` itself is not used: it reaches the
    file system through `tensorboard.compat.tf`, which imports TensorFlow whenever it is installed, and a JAX
    run must not start TensorFlow to log a scalar. Thread-safe; each write is in the file when it returns.

    Example:
        >>> with EventWriter("runs/x/logs/train") as w:  # doctest: +SKIP
        ...     w.add_scalars(0, {"epoch_loss": 0.4})
    """

    def __init__(self, logdir, filename_suffix=".lung_keras"):
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter

        self.logdir = os.fspath(logdir)
        os.makedirs(self.logdir, exist_ok=True)
        self.path = os.path.join(self.logdir, "events.out.tfevents.%010d.%s.%s.%s%s" % (
            time.time(), socket.gethostname(), os.getpid(), next(_uid), filename_suffix))
        self._event_pb2 = event_pb2
        self._file = open(self.path, "wb")
        self._writer = RecordWriter(self._file)
        self._lock = threading.Lock()
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2",
                                    source_metadata=event_pb2.SourceMetadata(writer="lung_keras")))

    def _write(self, event):
        with self._lock:
            self._writer.write(event.SerializeToString())
            self._writer.flush()

    def add_summary(self, summary, step, wall_time=None):
        """Appends a `Summary` proto at `step`."""
        self._write(self._event_pb2.Event(wall_time=time.time() if wall_time is None else float(wall_time),
                                          step=int(step), summary=summary))

    def add_scalars(self, step, scalars):
        """Appends `{tag: number}` as scalar summaries at `step` (non-numbers are skipped)."""
        from tensorboard.compat.proto import summary_pb2

        values = [scalar_value(tag, v) for tag, v in scalars.items() if np.ndim(v) == 0 and np.isreal(v)]
        if values:
            self.add_summary(summary_pb2.Summary(value=values), step)

    def flush(self):
        """Makes everything written so far visible to TensorBoard (each write already does)."""
        with self._lock:
            self._writer.flush()

    def close(self):
        with self._lock:
            self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class ScalarLogger(keras.callbacks.Callback):
    """Each epoch's logs as TensorBoard scalars in `<log_dir>/train` and `<log_dir>/validation`, with Keras'
    `TensorBoard` tags (see the module docstring)."""

    def __init__(self, log_dir):
        super().__init__()
        self.log_dir = os.fspath(log_dir)
        self._writers = {}

    def _writer(self, split):
        if split not in self._writers:
            self._writers[split] = EventWriter(os.path.join(self.log_dir, split))
        return self._writers[split]

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        train = {f"epoch_{k}": v for k, v in logs.items() if not k.startswith("val_")}
        val = {k[len("val_"):]: v for k, v in logs.items() if k.startswith("val_")}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            train["epoch_learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        self._writer("train").add_scalars(epoch, train)
        if val:
            writer = self._writer("validation")
            if optimizer is not None:
                iterations = int(keras.ops.convert_to_numpy(optimizer.iterations))
                writer.add_scalars(iterations, {f"evaluation_{k}_vs_iterations": v for k, v in val.items()})
            writer.add_scalars(epoch, {f"epoch_{k}": v for k, v in val.items()})
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
