"""`DisplayCallback`: per-epoch prediction grids and segmentation-dashboard summaries."""

import io
import os

import keras
import numpy as np

from lung_keras.callbacks.events import EventWriter
from lung_keras.viz._arrays import as_binary_mask
from lung_keras.viz._arrays import dice_np
from lung_keras.viz._arrays import to_numpy


def _import_plugin_summary():
    try:
        from lung_keras_tb import summary
    except ImportError as error:
        raise ImportError(
            "DisplayCallback writes the segmentation dashboard's summaries with the `lung_keras_tb` "
            "TensorBoard plugin, which is not installed. Install it with "
            "`pip install -e tensorboard_plugins/lung_keras_tb`, or pass `write_plugin=False` to log "
            "only the image grids."
        ) from error
    return summary


def _image_summary_value(tag, rgb_uint8, description=""):
    """A `Summary.Value` in the image plugin's tensor format: [width, height, png]."""
    from PIL import Image
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.image import metadata as image_metadata
    from tensorboard.util import tensor_util

    buf = io.BytesIO()
    Image.fromarray(rgb_uint8).save(buf, format="PNG")
    h, w = rgb_uint8.shape[:2]
    tensor = tensor_util.make_tensor_proto(
        np.array([str(w).encode(), str(h).encode(), buf.getvalue()], dtype=object), shape=[3]
    )
    return summary_pb2.Summary.Value(
        tag=tag,
        metadata=image_metadata.create_summary_metadata(display_name=tag, description=description),
        tensor=tensor,
    )


def foreground_probability(pred):
    """(N, H, W, 1) or (N, H, W) probabilities -> (N, H, W); (N, H, W, C>1) -> 1 - p[..., 0]."""
    p = to_numpy(pred).astype("float32")
    if p.ndim == 4:
        p = p[..., 0] if p.shape[-1] == 1 else 1.0 - p[..., 0]
    return p


class DisplayCallback(keras.callbacks.Callback):
    """Logs prediction grids of fixed samples to TensorBoard while training.

    At the chosen epochs the model predicts the fixed `samples`, computes each
    sample's Dice (foreground where the probability `>= threshold`, as
    `lung_keras.metrics`), and writes into `<log_dir>/<subdir>` (one event
    file, one TensorBoard run, no TensorFlow needed, so it works with
    `model.fit` on TensorFlow and JAX):

    - for every sample an image grid `image | true mask | prediction |
      overlay`, the overlay captioned `"<sample_id>  Dice 0.953"`, under the
      stable tag `"<tag_prefix>/<sample_id>"` (Images dashboard);
    - one segmentation-dashboard summary (`lung_keras_tb`, tag `plugin_tag`)
      holding all samples with their ids and Dice.

    The step is the 0-based epoch index, as `keras.callbacks.TensorBoard`
    uses for its `epoch_*` scalars.

    Args:
        samples: `(images, masks)` numpy arrays (or a dict with `"images"` and
            `"segmentation_masks"`), the fixed samples, e.g. the first
            validation images. Only the first `max_samples` are used.
        log_dir: TensorBoard log folder of the run (the one given to
            `keras.callbacks.TensorBoard`).
        every_n_epochs: log after epochs `n, 2n, ...` (1-based; 1 = every epoch).
        sample_ids: distinct string ids, one per sample (default
            `"sample_000"`, `"sample_001"`, ...). They name the tags, so keep
            them the same across runs to compare runs.
        threshold: probability threshold for the masks and Dice.
        max_samples: at most this many samples are logged.
        subdir: sub-folder of `log_dir` to write (None: `log_dir` itself).
        tag_prefix: image grid tags are `"<tag_prefix>/<sample_id>"`.
        plugin_tag: tag of the segmentation-dashboard summary.
        write_images: write the image grids.
        write_plugin: write the segmentation-dashboard summary (needs
            `lung_keras_tb`; an `ImportError` with install instructions is
            raised at construction when it is missing).
        batch_size: batch size for `model.predict`.
        renderer: `"fast"` (numpy + PIL, `lung_keras.viz.segmentation_grid_array`,
            milliseconds per sample) or `"matplotlib"` (`segmentation_grid`,
            contour lines, about a second per epoch for a few samples).
        dpi: resolution of the matplotlib grid images.

    Example:
    ```python
    cb = DisplayCallback((x_val[:4], y_val[:4]), "runs/baseline/logs", sample_ids=val_ids[:4])
    model.fit(x, y, epochs=20, callbacks=[keras.callbacks.TensorBoard("runs/baseline/logs"), cb])
    ```
    """

    def __init__(
        self,
        samples,
        log_dir,
        every_n_epochs=1,
        sample_ids=None,
        threshold=0.5,
        max_samples=8,
        subdir="display",
        tag_prefix="display",
        plugin_tag="segmentation",
        write_images=True,
        write_plugin=True,
        batch_size=None,
        renderer="fast",
        dpi=72,
    ):
        super().__init__()
        if isinstance(samples, dict):
            samples = (samples["images"], samples["segmentation_masks"])
        if not isinstance(samples, (tuple, list)) or len(samples) != 2:
            raise ValueError(f"samples must be (images, masks). Received: samples of type {type(samples).__name__}")
        if not isinstance(every_n_epochs, int) or isinstance(every_n_epochs, bool) or every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be an integer >= 1. Received: every_n_epochs={every_n_epochs!r}")
        if not isinstance(max_samples, int) or max_samples < 1:
            raise ValueError(f"max_samples must be an integer >= 1. Received: max_samples={max_samples!r}")
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold must be in (0, 1). Received: threshold={threshold}")
        if renderer not in ("fast", "matplotlib"):
            raise ValueError(f"renderer must be 'fast' or 'matplotlib'. Received: renderer={renderer!r}")
        if not (write_images or write_plugin):
            raise ValueError("Nothing to write: write_images and write_plugin are both False.")
        images, masks = to_numpy(samples[0]), to_numpy(samples[1])
        if images.shape[0] != masks.shape[0] or images.shape[0] == 0:
            raise ValueError(
                f"images and masks need the same, non-zero length. Received: {images.shape[0]} and {masks.shape[0]}"
            )
        n = min(images.shape[0], max_samples)
        self.images = images[:n]
        self.masks = masks[:n]
        if sample_ids is None:
            sample_ids = [f"sample_{i:03d}" for i in range(images.shape[0])]
        sample_ids = [str(s) for s in list(sample_ids)]
        if len(sample_ids) != images.shape[0]:
            raise ValueError(f"Need one sample id per sample. Received: {len(sample_ids)} ids for {images.shape[0]} samples")
        sample_ids = sample_ids[:n]
        if len(set(sample_ids)) != n or any(not s for s in sample_ids):
            raise ValueError(f"sample_ids must be distinct, non-empty strings. Received: sample_ids={sample_ids!r}")
        self.sample_ids = sample_ids
        self.log_dir = os.fspath(log_dir)
        self.every_n_epochs = every_n_epochs
        self.threshold = float(threshold)
        self.max_samples = max_samples
        self.subdir = subdir
        self.tag_prefix = tag_prefix
        self.plugin_tag = plugin_tag
        self.write_images = bool(write_images)
        self.write_plugin = bool(write_plugin)
        self.batch_size = batch_size
        self.renderer = renderer
        self.dpi = dpi
        self._plugin_summary = _import_plugin_summary() if self.write_plugin else None
        self._writer = None
        self.last_dice = None

    @property
    def output_dir(self):
        """The folder (TensorBoard run) this callback writes."""
        return os.path.join(self.log_dir, self.subdir) if self.subdir else self.log_dir

    def image_tags(self):
        """The image tags this callback writes, one per sample."""
        return [f"{self.tag_prefix}/{s}" for s in self.sample_ids]

    def _get_writer(self):
        if self._writer is None:
            self._writer = EventWriter(self.output_dir, filename_suffix=".lung_keras_display")
        return self._writer

    def log_samples(self, step, predictions=None):
        """Predicts (unless `predictions` is given) and writes one step; returns the per-sample Dice."""
        from tensorboard.compat.proto import summary_pb2

        from lung_keras.viz.fast_grid import segmentation_grid_array
        from lung_keras.viz.grid import grid_to_array
        from lung_keras.viz.grid import segmentation_grid

        if predictions is None:
            predictions = self.model.predict(self.images, batch_size=self.batch_size, verbose=0)
        probs = foreground_probability(predictions)
        dice = np.array(
            [dice_np(as_binary_mask(m, 0.5), as_binary_mask(p, self.threshold)) for m, p in zip(self.masks, probs)]
        )
        summary = summary_pb2.Summary()
        if self.write_images:
            for i, (sid, tag) in enumerate(zip(self.sample_ids, self.image_tags())):
                args = (self.images[i : i + 1], self.masks[i : i + 1], probs[i : i + 1])
                if self.renderer == "fast":
                    rgb = segmentation_grid_array(*args, ids=[sid], dice=[dice[i]], threshold=self.threshold)
                else:
                    rgb = grid_to_array(segmentation_grid(
                        *args, ids=[sid], dice=[dice[i]], threshold=self.threshold, dpi=self.dpi, panel_size=2.0,
                        title=f"epoch {step + 1}",
                    ))
                summary.value.append(
                    _image_summary_value(tag, rgb, description=f"image | true mask | prediction | overlay of {sid}")
                )
        if self.write_plugin:
            summary.value.extend(
                self._plugin_summary.segmentation_pb(
                    self.plugin_tag, self.images, self.masks, probs, self.sample_ids, dice
                ).value
            )
        writer = self._get_writer()
        writer.add_summary(summary, step)
        writer.flush()
        self.last_dice = dice
        return dice

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs == 0:
            self.log_samples(epoch)

    def on_train_end(self, logs=None):
        self.close()

    def close(self):
        """Flushes and closes the event file (a later epoch opens a new one)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
