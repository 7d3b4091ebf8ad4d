"""Summary API of the Segmentation dashboard: log images, masks, predictions and Dice.

Two ways to write the same summary:

* `SegmentationWriter(logdir)` -- needs no TensorFlow (TensorBoard's protos and
  record format, a plain local file), so JAX or PyTorch users can log::

      from lung_keras_tb import summary
      with summary.SegmentationWriter("runs/baseline/segmentation") as w:
          w.write(step, images, masks, predictions, sample_ids, dice)

* `segmentation(name, ..., step=None)` -- a `tf.summary` op for code that already
  writes through a default `tf.summary` writer (TensorFlow imported lazily).

Both emit the identical `Summary.Value`: tag ``tag`` (default ``"segmentation"``)
at ``step``, holding a blob sequence ``[manifest_json, image_0, mask_0,
prediction_0, image_1, ...]``; the exact layout (8-bit PNGs, probability map of
the prediction, dashboard threshold 0.5) is documented in `lung_keras_tb.metadata`.
One value per step keeps all samples of a step together, so TensorBoard's
per-series downsampling (``--samples_per_plugin lung_segmentation=N``) keeps or
drops whole steps, never single samples.

Inputs (NumPy, JAX, TensorFlow or anything `np.asarray` accepts):

* ``images``: ``(N, H, W)``, ``(N, H, W, 1)`` or ``(N, H, W, 3)``; float in
  ``[0, 1]`` (clipped) or integers in ``[0, 255]``.
* ``masks``: ``(N, H, W)`` or ``(N, H, W, 1)``; foreground where ``>= 0.5``
  (integer masks whose maximum exceeds 1 are read as 0/255: foreground ``>= 128``).
* ``predictions``: same spatial shape as ``masks``; probabilities, clipped to
  ``[0, 1]``, NaN stored as 0. The probability map is stored (not only the
  thresholded mask), so the dashboard can show both.
* ``sample_ids``: N distinct non-empty strings; ``dice``: N floats
  (non-finite values are stored as ``null``).

Write each writer to its own directory (a TensorBoard run), e.g.
``<logdir>/<run>/segmentation``; the dashboard compares runs on equal sample ids.

Many runs predicting the same test set (the arms and seeds of a comparison)
share its images and masks (format version 2, `lung_keras_tb.metadata`)::

    summary.write_shared("runs/c/augmented-seed0/logs/test", "runs/_test_images",
                         step, images, masks, predictions, sample_ids, dice, tag="test/abnormal")

writes the images and masks once per test set (`write_shared_source`, keyed by
tag, ids and pixels) and the run's predictions (`SegmentationWriter.write_predictions`,
16 grey levels) and Dice into its own folder. Serve a logdir holding both.

One module, a little over 500 lines, with its own event writer: the plugin installs and runs without
`lung_keras` (which has the other writer, `lung_keras.callbacks.events`), so it cannot import it.
"""

import hashlib
import io
import json
import math
import os
import re
import socket
import struct
import threading
import time

import numpy as np
from PIL import Image
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.proto import summary_pb2
from tensorboard.summary.writer import record_writer
from tensorboard.util import tensor_util

from lung_keras_tb import metadata

DEFAULT_TAG = "segmentation"
MAX_SAMPLE_ID_LENGTH = 256
THRESHOLD = 0.5

_uid_lock = threading.Lock()
_uid = [0]


def _next_uid():
    with _uid_lock:
        _uid[0] += 1
        return _uid[0]


def _to_numpy(x, name):
    try:
        return np.asarray(x)
    except Exception as e:  # e.g. a symbolic tensor
        raise TypeError(
            f"`{name}` must be convertible to a NumPy array. Received: {name} of type {type(x)}"
        ) from e


def _to_uint8_image(images):
    if images.dtype == bool:
        return images.astype(np.uint8) * 255
    if np.issubdtype(images.dtype, np.integer):
        if images.size and (images.min() < 0 or images.max() > 255):
            raise ValueError(
                "Integer `images` must lie in [0, 255]. "
                f"Received: images with range [{images.min()}, {images.max()}]"
            )
        return images.astype(np.uint8)
    if np.issubdtype(images.dtype, np.floating):
        x = np.nan_to_num(images.astype(np.float64), nan=0.0)
        return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)
    raise TypeError(f"`images` must be float or integer. Received: dtype={images.dtype}")


def _squeeze_mask(x, name, n):
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or x.shape[0] != n:
        raise ValueError(
            f"`{name}` must have shape (N, H, W) or (N, H, W, 1) with N={n}. "
            f"Received: {name}.shape={x.shape}"
        )
    return x


def _mask_to_uint8(masks):
    if masks.dtype == bool:
        fg = masks
    elif np.issubdtype(masks.dtype, np.integer) and masks.size and masks.max() > 1:
        fg = masks >= 128
    else:
        fg = np.nan_to_num(masks.astype(np.float64), nan=0.0) >= 0.5
    return fg.astype(np.uint8) * 255


def _prob_to_uint8(predictions, levels=256):
    p = np.clip(np.nan_to_num(predictions.astype(np.float64), nan=0.0), 0.0, 1.0)
    if levels == 256:
        # round(255 * p) >= 128 exactly when p >= 0.5 (127.5 rounds half to even: 128).
        return np.round(p * 255.0).astype(np.uint8)
    # k = levels - 1 odd and dividing 255: (255 / k) * floor(k * p + 1/2) >= 128 exactly when p >= 0.5.
    k = levels - 1
    return (np.floor(p * k + 0.5) * (255 // k)).astype(np.uint8)


def _png(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _check_ids(sample_ids, n):
    if isinstance(sample_ids, (str, bytes)):
        raise TypeError(f"`sample_ids` must be a sequence of strings. Received: sample_ids={sample_ids!r}")
    ids = [s.decode("utf-8") if isinstance(s, bytes) else s for s in list(sample_ids)]
    if len(ids) != n:
        raise ValueError(f"`sample_ids` must have N={n} entries. Received: {len(ids)} entries")
    for s in ids:
        if not isinstance(s, str) or not s or len(s) > MAX_SAMPLE_ID_LENGTH:
            raise ValueError(
                f"Each sample id must be a non-empty string of at most {MAX_SAMPLE_ID_LENGTH} "
                f"characters. Received: {s!r}"
            )
    if len(set(ids)) != n:
        raise ValueError(f"`sample_ids` must be distinct. Received: sample_ids={ids!r}")
    return [str(s) for s in ids]


def _check_dice(dice, n):
    d = _to_numpy(dice, "dice").astype(np.float64).reshape(-1)
    if d.shape[0] != n:
        raise ValueError(f"`dice` must have N={n} values. Received: {d.shape[0]} values")
    return [float(v) if math.isfinite(v) else None for v in d]


def _check_images(images):
    images = _to_numpy(images, "images")
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if not (images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 3)):
        raise ValueError(
            "`images` must have shape (N, H, W), (N, H, W, 1) or (N, H, W, 3). "
            f"Received: images.shape={images.shape}"
        )
    if images.shape[0] == 0:
        raise ValueError("Nothing to log: `images` has N=0 samples.")
    return images


def _check_same_size(hw, **arrays):
    if any(a.shape[1:3] != tuple(hw) for a in arrays.values()):
        sizes = ", ".join(f"{k} {a.shape[1:3]}" for k, a in arrays.items())
        raise ValueError(
            f"`images`, `masks` and `predictions` must share height and width. Received: images {tuple(hw)}, {sizes}"
        )


def segmentation_blobs(images, masks, predictions, sample_ids, dice):
    """Encodes one step of samples as the blob list ``[manifest, img, mask, pred, ...]``.

    Returns:
      A list of ``1 + 3 * N`` `bytes`.
    """
    images = _check_images(images)
    n = images.shape[0]
    hw = images.shape[1:3]
    masks = _squeeze_mask(_to_numpy(masks, "masks"), "masks", n)
    predictions = _squeeze_mask(_to_numpy(predictions, "predictions"), "predictions", n)
    _check_same_size(hw, masks=masks, predictions=predictions)
    ids = _check_ids(sample_ids, n)
    dice_values = _check_dice(dice, n)

    img8 = _to_uint8_image(images)
    mask8 = _mask_to_uint8(masks)
    pred8 = _prob_to_uint8(predictions)
    manifest = {
        "version": metadata.FORMAT_VERSION,
        "threshold": THRESHOLD,
        "height": int(hw[0]),
        "width": int(hw[1]),
        "samples": [{"id": i, "dice": d} for i, d in zip(ids, dice_values)],
    }
    blobs = [json.dumps(manifest, sort_keys=True).encode("utf-8")]
    for k in range(n):
        blobs.extend([_png(img8[k]), _png(mask8[k]), _png(pred8[k])])
    return blobs


def _check_step(step):
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise TypeError(f"`step` must be an integer. Received: step={step!r}")


def _check_tag(tag):
    reason = metadata.check_tag(tag)
    if reason:
        raise ValueError(f"Invalid tag: {reason}. Received: tag={tag!r}")


def _summary_of(tag, blobs, summary_metadata):
    tensor = tensor_util.make_tensor_proto(np.array(blobs, dtype=object), shape=[len(blobs)])
    summary = summary_pb2.Summary()
    summary.value.add(tag=tag, metadata=summary_metadata, tensor=tensor)
    return summary


def segmentation_pb(
    tag, images, masks, predictions, sample_ids, dice, description=""
):
    """Builds the `Summary` proto of one step, stamped with the plugin metadata.

    Returns:
      A `tensorboard.compat.proto.summary_pb2.Summary` with one value.
    """
    _check_tag(tag)
    blobs = segmentation_blobs(images, masks, predictions, sample_ids, dice)
    return _summary_of(tag, blobs, metadata.create_summary_metadata(description))


# ---------------------------------------------------------------------------
# Shared images (format version 2, see `lung_keras_tb.metadata`): images and
# masks of a test set stored once, predictions per run.

SHARED_DIRNAME = "_test_images"
# Levels of a shared-layout prediction PNG: 16 (0, 17, ..., 255) keeps the dashboard's threshold exact and
# stores a trained U-Net's probability map in about a third of the bytes of 256 levels.
PREDICTION_LEVELS = 16
_LEVEL_CHOICES = (2, 4, 6, 16, 18, 52, 86, 256)  # levels - 1 divides 255
_SHARED_EVENT_NAME = "events.out.tfevents.0000000000.lung_keras_tb.shared"


def source_key(tag, sample_ids, images, masks):
    """The key of a shared source: SHA-256 (32 hex digits) over tag, ids, and 8-bit images and masks.

    Equal keys mean the same tag, the same samples in the same order and the same pixels.
    """
    _check_tag(tag)
    images = _check_images(images)
    n = images.shape[0]
    masks = _squeeze_mask(_to_numpy(masks, "masks"), "masks", n)
    _check_same_size(images.shape[1:3], masks=masks)
    return _source_key(tag, _check_ids(sample_ids, n), _to_uint8_image(images), _mask_to_uint8(masks))


def _source_key(tag, ids, img8, mask8):
    digest = hashlib.sha256()
    digest.update(json.dumps([tag, ids, list(img8.shape), list(mask8.shape)]).encode("utf-8"))
    digest.update(np.ascontiguousarray(img8).tobytes())
    digest.update(np.ascontiguousarray(mask8).tobytes())
    return digest.hexdigest()[:32]


def shared_source_pb(tag, images, masks, sample_ids, description=""):
    """The `Summary` of a shared source: ``[manifest, image_0, mask_0, ...]``.

    Returns:
      ``(summary, key)``; `key` is what `shared_predictions_pb` needs.
    """
    _check_tag(tag)
    images = _check_images(images)
    n = images.shape[0]
    masks = _squeeze_mask(_to_numpy(masks, "masks"), "masks", n)
    _check_same_size(images.shape[1:3], masks=masks)
    ids = _check_ids(sample_ids, n)
    img8, mask8 = _to_uint8_image(images), _mask_to_uint8(masks)
    key = _source_key(tag, ids, img8, mask8)
    manifest = {
        "version": metadata.SHARED_FORMAT_VERSION,
        "layout": metadata.LAYOUT_SOURCE,
        "source": key,
        "height": int(images.shape[1]),
        "width": int(images.shape[2]),
        "samples": [{"id": i, "dice": None} for i in ids],
    }
    blobs = [json.dumps(manifest, sort_keys=True).encode("utf-8")]
    for k in range(n):
        blobs.extend([_png(img8[k]), _png(mask8[k])])
    meta = metadata.create_summary_metadata(description, layout=metadata.LAYOUT_SOURCE, source=key)
    return _summary_of(tag, blobs, meta), key


def shared_predictions_pb(tag, predictions, sample_ids, dice, source, description="",
                          levels=PREDICTION_LEVELS):
    """The `Summary` of one run's predictions on a shared source: ``[manifest, prediction_0, ...]``.

    `sample_ids` must be the source's ids in the source's order (the key guarantees
    it when both come from the same arrays; see `write_shared`). The probability
    map is stored with `levels` grey levels (``levels - 1`` divides 255; pixel
    ``(255 / k) * floor(k * p + 1/2)`` with ``k = levels - 1``), so a pixel is
    ``>= 128`` exactly when ``p >= 0.5``; Dice is the caller's, from the
    unquantized predictions.
    """
    _check_tag(tag)
    if levels not in _LEVEL_CHOICES:
        raise ValueError(f"`levels` must be one of {_LEVEL_CHOICES}. Received: levels={levels!r}")
    predictions = _to_numpy(predictions, "predictions")
    if predictions.ndim == 4 and predictions.shape[-1] == 1:
        predictions = predictions[..., 0]
    n = predictions.shape[0] if predictions.ndim == 3 else -1
    if n < 1:
        raise ValueError(
            f"`predictions` must have shape (N, H, W) or (N, H, W, 1) with N >= 1. Received: shape={predictions.shape}"
        )
    ids = _check_ids(sample_ids, n)
    dice_values = _check_dice(dice, n)
    manifest = {
        "version": metadata.SHARED_FORMAT_VERSION,
        "layout": metadata.LAYOUT_PREDICTIONS,
        "source": source,
        "threshold": THRESHOLD,
        "levels": levels,
        "height": int(predictions.shape[1]),
        "width": int(predictions.shape[2]),
        "samples": [{"id": i, "dice": d} for i, d in zip(ids, dice_values)],
    }
    pred8 = _prob_to_uint8(predictions, levels)
    blobs = [json.dumps(manifest, sort_keys=True).encode("utf-8")] + [_png(p) for p in pred8]
    meta = metadata.create_summary_metadata(description, layout=metadata.LAYOUT_PREDICTIONS, source=source)
    return _summary_of(tag, blobs, meta)


def write_shared_source(store_dir, tag, images, masks, sample_ids):
    """Writes a shared source once: ``<store_dir>/<tag-slug>-<key[:16]>/`` (one TensorBoard run).

    A folder that already holds the source's event file is left alone, so every
    run predicting the same test set adds only its predictions. The event file
    is written under a temporary name and renamed into place (two writers of the
    same key produce the same bytes).

    Returns:
      ``(key, folder)``.
    """
    pb, key = shared_source_pb(tag, images, masks, sample_ids)
    folder = os.path.join(os.fspath(store_dir), "%s-%s" % (re.sub(r"[^A-Za-z0-9_.-]+", "-", tag).strip("-"), key[:16]))
    final = os.path.join(folder, _SHARED_EVENT_NAME)
    if os.path.exists(final):
        return key, folder
    os.makedirs(folder, exist_ok=True)
    partial = os.path.join(folder, ".partial-%s-%s" % (os.getpid(), _next_uid()))
    with open(partial, "wb") as f:
        writer = record_writer.RecordWriter(f)
        for event in (
            event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2",
                            source_metadata=event_pb2.SourceMetadata(writer="lung_keras_tb")),
            event_pb2.Event(wall_time=time.time(), step=0, summary=pb),
        ):
            writer.write(event.SerializeToString())
        writer.flush()
        os.fsync(f.fileno())
    os.replace(partial, final)
    return key, folder


def write_shared(logdir, store_dir, step, images, masks, predictions, sample_ids, dice, tag=DEFAULT_TAG):
    """Logs one step of a test set with its images and masks shared across runs.

    The images and masks go to `write_shared_source(store_dir, ...)` (once per
    test set), the predictions and Dice to the run `logdir`. Point TensorBoard at
    a folder holding both (e.g. the parent of the runs and of `store_dir`).

    Returns:
      The source key.
    """
    images = _check_images(images)
    _check_same_size(images.shape[1:3], predictions=_squeeze_mask(
        _to_numpy(predictions, "predictions"), "predictions", images.shape[0]))
    key, _ = write_shared_source(store_dir, tag, images, masks, sample_ids)
    with SegmentationWriter(logdir) as writer:
        writer.write_predictions(step, predictions, sample_ids, dice, source=key, tag=tag)
    return key


def segmentation(
    name, images, masks, predictions, sample_ids, dice, step=None, description=""
):
    """Writes the segmentation summary through the default `tf.summary` writer.

    TensorFlow is imported only here. Runs eagerly (the PNGs are encoded in
    NumPy). Returns what `tf.summary.write` returns: True if a default writer
    recorded it.
    """
    import tensorflow as tf  # lazy: only this function needs TensorFlow

    _check_tag(name)
    blobs = segmentation_blobs(images, masks, predictions, sample_ids, dice)
    return tf.summary.write(
        tag=name,
        tensor=tf.constant(blobs, dtype=tf.string),
        step=step,
        metadata=metadata.create_summary_metadata(description).SerializeToString(),
    )


class SegmentationWriter:
    """Writes segmentation summaries to a TensorBoard event file, without TensorFlow.

    Args:
      logdir: local directory (created if missing) that becomes one TensorBoard run.
      filename_suffix: appended to the event file name.

    Example:
      >>> with SegmentationWriter("runs/baseline/segmentation") as w:  # doctest: +SKIP
      ...     w.write(epoch, images, masks, probs, ids, dice)
    """

    def __init__(self, logdir, filename_suffix=".lung_keras_tb"):
        logdir = os.fspath(logdir)
        if "://" in logdir:
            raise ValueError(
                "SegmentationWriter writes local directories only; use "
                f"`summary.segmentation` with a tf.summary writer for remote paths. Received: logdir={logdir!r}"
            )
        os.makedirs(logdir, exist_ok=True)
        self._logdir = logdir
        self._path = os.path.join(
            logdir,
            "events.out.tfevents.%010d.%s.%s.%s%s"
            % (time.time(), socket.gethostname(), os.getpid(), _next_uid(), filename_suffix),
        )
        self._file = open(self._path, "wb")
        self._writer = record_writer.RecordWriter(self._file)
        self._lock = threading.Lock()
        self._closed = False
        self._add_event(
            event_pb2.Event(
                wall_time=time.time(),
                file_version="brain.Event:2",
                source_metadata=event_pb2.SourceMetadata(writer="lung_keras_tb"),
            )
        )
        self.flush()

    @property
    def logdir(self):
        return self._logdir

    @property
    def path(self):
        """Path of the event file being written."""
        return self._path

    def _add_event(self, event):
        with self._lock:
            if self._closed:
                raise RuntimeError("SegmentationWriter is closed.")
            self._writer.write(event.SerializeToString())

    def write(
        self,
        step,
        images,
        masks,
        predictions,
        sample_ids,
        dice,
        tag=DEFAULT_TAG,
        wall_time=None,
        description="",
    ):
        """Appends one step of samples; see the module docstring for the inputs."""
        _check_step(step)
        summary = segmentation_pb(tag, images, masks, predictions, sample_ids, dice, description)
        self._add_summary(step, summary, wall_time)

    def write_predictions(
        self, step, predictions, sample_ids, dice, source, tag=DEFAULT_TAG, wall_time=None, description=""
    ):
        """Appends one step of predictions whose images and masks live in the shared `source`.

        `source` is the key `write_shared_source` returned for the same ids.
        """
        _check_step(step)
        summary = shared_predictions_pb(tag, predictions, sample_ids, dice, source, description)
        self._add_summary(step, summary, wall_time)

    def _add_summary(self, step, summary, wall_time):
        self._add_event(
            event_pb2.Event(
                wall_time=time.time() if wall_time is None else float(wall_time),
                step=int(step),
                summary=summary,
            )
        )

    def flush(self):
        """Makes everything written so far visible to TensorBoard."""
        with self._lock:
            if not self._closed:
                self._writer.flush()

    def close(self):
        """Flushes and closes the event file; further writes raise."""
        with self._lock:
            if not self._closed:
                self._writer.close()
                self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
