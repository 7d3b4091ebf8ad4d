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


def load_dataset(root, skip_invalid=False, pixel_checks=True, binarize_threshold=None):
    """Scan and check a dataset folder.

    Args:
        root: folder in the NLM layout (`CXR_png/`, `ManualMask/leftMask/`, `ManualMask/rightMask/`) or the
            folder layout (`images/` + `masks/`), optionally with `manifest.csv` (`id`, `diagnosis`).
        skip_invalid: leave out pairs with fatal problems and warn with their list, instead of raising.
        pixel_checks: decode every file to check sizes and mask values (default). False checks pairing only.
        binarize_threshold: None (default): soft masks (more than two levels) are errors; a fraction in (0, 1)
            of the mask dtype's full range binarizes them (see `read_mask`). Kept on every sample, so
            `load_arrays` and `make_tf_dataset` read the masks the same way.

    Returns:
        A `Dataset`. Raises `DatasetError` listing every problem file when fatal problems exist and
        `skip_invalid` is False.
    """
    report = check_dataset(root, pixel_checks=pixel_checks, binarize_threshold=binarize_threshold)
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


def min_split_size(fractions):
    """The fewest samples (or groups, for grouped samples) that `split_dataset` (without stratification) splits
    with at least one in every split of non-zero fraction."""
    fractions = tuple(float(f) for f in fractions)
    for n in range(1, 100_000):
        n_val = min(int(round(n * fractions[1])), n)
        n_test = min(int(round(n * fractions[2])), n - n_val)
        sizes = (n - n_val - n_test, n_val, n_test)
        if all(size >= 1 for size, f in zip(sizes, fractions) if f > 0):
            return n
    raise ValueError(f"No dataset size gives every split a sample. Received: fractions={fractions}")


def split_dataset(samples, fractions=(0.7, 0.15, 0.15), seed=0, stratify=True):
    """Seeded train/val/test split, stratified by diagnosis, each id in exactly one split.

    The split allocates units: a sample's `group` (e.g. the CT patient of a slice), so every sample of a group
    falls in one split, or the sample itself when its `group` is None. Samples without groups split exactly as
    they always did.

    Args:
        samples: list of `Sample` (or a `Dataset`).
        fractions: `(train, val, test)` fractions summing to 1 (of units: samples, or groups when grouped).
        seed: integer seed; the same seed and samples give the same split.
        stratify: keep each diagnosis' share of units equal across splits (a group's diagnosis is its samples').

    Returns:
        dict `{"train": [...], "val": [...], "test": [...]}` of sample ids, each sorted.

    Raises:
        ValueError: when there are fewer units than `min_split_size(fractions)` (saying how many were found and
            how many the split needs), for bad fractions, for repeated ids, for a group whose samples disagree on
            the diagnosis (when `stratify`), or for a group named like an ungrouped sample.
    """
    root = getattr(samples, "root", None)
    samples = samples.samples if isinstance(samples, Dataset) else list(samples)
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"`fractions` must be three non-negative numbers summing to 1. Received: fractions={fractions}")
    ids = sorted({s.id for s in samples})
    if len(ids) != len(samples):
        raise ValueError("Sample ids must be unique to split without leakage.")
    units = _units(samples, stratify)
    grouped = any(getattr(s, "group", None) is not None for s in samples)
    needed = min_split_size(fractions)
    if len(units) < needed:
        where = f" in {root}" if root is not None else ""
        names = [name for name, f in zip(("train", "val", "test"), fractions) if f > 0]
        if grouped:
            raise ValueError(
                f"Found {len(units)} group(s) (patients){where} holding {len(samples)} sample(s); a train/val/test "
                f"split with fractions {fractions} keeps each group in one split, so it needs at least {needed} "
                f"groups (one in each of {', '.join(names)})."
            )
        raise ValueError(
            f"Found {len(samples)} image/mask pair(s){where}; a train/val/test split with fractions {fractions} needs "
            f"at least {needed} (one in each of {', '.join(names)})."
        )
    strata = {}
    for key in sorted(units):
        strata.setdefault(units[key][0] if stratify else "all", []).append(key)
    rng = np.random.default_rng(seed)
    out = {"train": [], "val": [], "test": []}
    for stratum in sorted(strata):
        group = list(strata[stratum])
        rng.shuffle(group)
        n = len(group)
        n_val = int(round(n * fractions[1]))
        n_test = int(round(n * fractions[2]))
        n_val, n_test = min(n_val, n), min(n_test, n - min(n_val, n))
        out["test"] += group[:n_test]
        out["val"] += group[n_test : n_test + n_val]
        out["train"] += group[n_test + n_val :]
    return {k: sorted(i for key in v for i in units[key][1]) for k, v in out.items()}


def _units(samples, stratify):
    """`{unit: (diagnosis, [sample ids])}`: a sample's unit is its `group`, or its own id without one."""
    units, diagnoses = {}, {}
    own = {s.id for s in samples if getattr(s, "group", None) is None}
    for s in sorted(samples, key=lambda s: s.id):
        group = getattr(s, "group", None)
        key = s.id if group is None else str(group)
        if group is not None and key in own:
            raise ValueError(f"Group {key!r} has the name of a sample without a group; name groups apart from ids.")
        units.setdefault(key, []).append(s.id)
        diagnoses.setdefault(key, set()).add(s.diagnosis)
    mixed = {key: sorted(d) for key, d in diagnoses.items() if len(d) > 1}
    if stratify and mixed:
        shown = "; ".join(f"group {key!r}: {', '.join(d)}" for key, d in sorted(mixed.items()))
        raise ValueError(f"The samples of a group must share one diagnosis to stratify by it ({shown}); give the "
                         "group one diagnosis or split with stratify=False.")
    return {key: (sorted(diagnoses[key])[0], ids) for key, ids in units.items()}


def filter_diagnosis(samples, diagnosis="normal"):
    """Keep only samples with the given diagnosis (e.g. healthy `normal` cases for training)."""
    return [s for s in samples if s.diagnosis == diagnosis]


def load_arrays(samples, image_size=(128, 128), channels=1):
    """Load samples into `(images float32 NxHxWxC in [0, 1], masks float32 NxHxWx1 in {0, 1})`.

    Every sample is resized to `image_size` (image: antialiased bilinear; mask: nearest). Images follow the
    intensity rule and masks the mask rule (see `read_image`, `read_mask`).
    """
    samples = samples.samples if isinstance(samples, Dataset) else list(samples)
    if not samples:
        raise ValueError("No samples to load: the list of samples is empty (an empty split or filter?).")
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
    """A `tf.data` pipeline: load, cache, seeded shuffle, (optional map), batch, prefetch.

    Each sample is read by `load_sample` through `tf.numpy_function`, so images and masks follow the very
    same intensity and mask rules as `load_arrays` (and give the same arrays); NLM left/right masks are
    merged. Yields `(image float32 HxWxC in [0, 1], mask float32 HxWx1 in {0, 1})` batches. TensorFlow only
    (tf.data is TensorFlow's); decoding runs in Python (Pillow), once per sample when `cache`.

    Args:
        map_fn: optional function `(image_batch, mask_batch) -> (image_batch, mask_batch)` applied after
            batching, e.g. an augmentation layer.
    """
    import tensorflow as tf

    samples = samples.samples if isinstance(samples, Dataset) else list(samples)
    if not samples:
        raise ValueError("make_tf_dataset needs at least one sample. Received: samples=[]")
    h, w = (int(v) for v in image_size)

    def load_numpy(index):
        return load_sample(samples[int(index)], (h, w), channels)

    def load(index):
        image, mask = tf.numpy_function(load_numpy, [index], (tf.float32, tf.float32), stateful=False)
        image.set_shape((h, w, channels))
        mask.set_shape((h, w, 1))
        return image, mask

    ds = tf.data.Dataset.range(len(samples))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if repeat:
        ds = ds.repeat()
    if shuffle:
        ds = ds.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if map_fn is not None:
        ds = ds.map(map_fn, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
