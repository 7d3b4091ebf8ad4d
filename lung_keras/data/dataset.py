"""Load datasets, split them, and feed them as numpy arrays or `tf.data` pipelines."""

import dataclasses
import pathlib
import warnings

import numpy as np

from lung_keras.data.checks import DatasetError
from lung_keras.data.checks import check_dataset
from lung_keras.data.preprocess import load_sample


@dataclasses.dataclass
class Dataset:
    """Samples of one dataset folder that passed the checks (see `load_dataset`)."""

    root: pathlib.Path
    samples: list
    report: object = None

    @property
    def ids(self):
        return [s.id for s in self.samples]

    def subset(self, ids):
        wanted = set(ids)
        return Dataset(self.root, [s for s in self.samples if s.id in wanted], self.report)

    def __len__(self):
        return len(self.samples)


def load_dataset(root, skip_invalid=False, pixel_checks=True):
    """Scan and check a dataset folder.

    Args:
        root: folder in the NLM layout (`CXR_png/`, `ManualMask/leftMask/`, `ManualMask/rightMask/`) or the
            folder layout (`images/` + `masks/`), optionally with `manifest.csv` (`id`, `diagnosis`).
        skip_invalid: leave out pairs with fatal problems and warn with their list, instead of raising.
        pixel_checks: decode every file to check sizes and mask values (default). False checks pairing only.

    Returns:
        A `Dataset`. Raises `DatasetError` listing every problem file when fatal problems exist and
        `skip_invalid` is False.
    """
    report = check_dataset(root, pixel_checks=pixel_checks)
    if report.fatal:
        if not skip_invalid:
            raise DatasetError(report)
        warnings.warn(
            f"Skipping {len(report.fatal)} problem(s) in {report.root}:\n"
            + "\n".join(f"  {p}" for p in report.fatal),
            stacklevel=2,
        )
    if not report.valid_samples:
        raise DatasetError(report) if report.fatal else ValueError(f"No image/mask pairs found in {report.root}")
    return Dataset(report.root, list(report.valid_samples), report)


def split_dataset(samples, fractions=(0.7, 0.15, 0.15), seed=0, stratify=True):
    """Seeded train/val/test split, stratified by diagnosis, each id in exactly one split.

    Args:
        samples: list of `Sample` (or a `Dataset`).
        fractions: `(train, val, test)` fractions summing to 1.
        seed: integer seed; the same seed and samples give the same split.
        stratify: keep each diagnosis' share equal across splits.

    Returns:
        dict `{"train": [...], "val": [...], "test": [...]}` of ids, each sorted.
    """
    samples = samples.samples if isinstance(samples, Dataset) else list(samples)
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"`fractions` must be three non-negative numbers summing to 1. Received: fractions={fractions}")
    ids = sorted({s.id for s in samples})
    if len(ids) != len(samples):
        raise ValueError("Sample ids must be unique to split without leakage.")
    groups = {}
    for s in sorted(samples, key=lambda s: s.id):
        groups.setdefault(s.diagnosis if stratify else "all", []).append(s.id)
    rng = np.random.default_rng(seed)
    out = {"train": [], "val": [], "test": []}
    for key in sorted(groups):
        group = list(groups[key])
        rng.shuffle(group)
        n = len(group)
        n_val = int(round(n * fractions[1]))
        n_test = int(round(n * fractions[2]))
        n_val, n_test = min(n_val, n), min(n_test, n - min(n_val, n))
        out["test"] += group[:n_test]
        out["val"] += group[n_test : n_test + n_val]
        out["train"] += group[n_test + n_val :]
    return {k: sorted(v) for k, v in out.items()}


def filter_diagnosis(samples, diagnosis="normal"):
    """Keep only samples with the given diagnosis (e.g. healthy `normal` cases for training)."""
    return [s for s in samples if s.diagnosis == diagnosis]


def load_arrays(samples, image_size=(128, 128), channels=1):
    """Load samples into `(images float32 NxHxWxC in [0, 1], masks float32 NxHxWx1 in {0, 1})`.

    Every sample is resized to `image_size` (image: antialiased bilinear; mask: nearest).
    """
    samples = samples.samples if isinstance(samples, Dataset) else list(samples)
    if not samples:
        raise ValueError("No samples to load.")
    pairs = [load_sample(s, image_size, channels) for s in samples]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def make_tf_dataset(
    samples,
    image_size=(128, 128),
    batch_size=8,
    shuffle=False,
    seed=0,
    cache=True,
    channels=1,
    repeat=False,
    map_fn=None,
):
    """A `tf.data` pipeline: decode, resize, cache, seeded shuffle, (optional map), batch, prefetch.

    Decoding goes through TensorFlow (PNG, JPEG, BMP; 8- and 16-bit) so any file size works; NLM left/right
    masks are merged. Yields `(image float32 HxWxC in [0, 1], mask float32 HxWx1 in {0, 1})` batches.
    TensorFlow backend only (tf.data is TensorFlow's).

    Args:
        map_fn: optional function `(image_batch, mask_batch) -> (image_batch, mask_batch)` applied after
            batching, e.g. an augmentation layer.
    """
    import tensorflow as tf

    samples = samples.samples if isinstance(samples, Dataset) else list(samples)
    n_masks = {len(s.mask_paths) for s in samples}
    if len(n_masks) != 1:
        raise ValueError("All samples must have the same number of mask files.")
    image_paths = [str(s.image_path) for s in samples]
    mask_paths = [[str(p) for p in s.mask_paths] for s in samples]
    h, w = image_size

    def decode(path, chans):
        raw = tf.io.read_file(path)
        img = tf.io.decode_image(raw, channels=0, dtype=tf.uint16, expand_animations=False)
        img = tf.cast(img, tf.float32)
        # decode_image with uint16 scales 8-bit files to the 16-bit range; both end in [0, 65535].
        img = img / 65535.0
        if chans == 1:
            n = tf.shape(img)[-1]
            img = tf.cond(n >= 3, lambda: tf.image.rgb_to_grayscale(img[..., :3]), lambda: img[..., :1])
            img.set_shape([None, None, 1])
        return img

    def load(image_path, mask_path_list):
        image = decode(image_path, channels)
        image.set_shape([None, None, None])
        if channels == 3:
            image = tf.cond(tf.shape(image)[-1] == 1, lambda: tf.repeat(image, 3, -1), lambda: image[..., :3])
        image = tf.image.resize(image, (h, w), method="bilinear", antialias=True)
        masks = [decode(mask_path_list[i], 1)[..., 0] for i in range(len(mask_paths[0]))]
        mask = tf.reduce_max(tf.stack(masks), axis=0)
        mask = tf.cast(mask > 0.5, tf.float32)[..., None]
        mask = tf.image.resize(mask, (h, w), method="nearest")
        return tf.clip_by_value(image, 0.0, 1.0), mask

    ds = tf.data.Dataset.from_tensor_slices((image_paths, mask_paths))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if repeat:
        ds = ds.repeat()
    if shuffle:
        ds = ds.shuffle(len(image_paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if map_fn is not None:
        ds = ds.map(map_fn, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
