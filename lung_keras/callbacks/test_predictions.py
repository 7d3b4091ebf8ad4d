"""Final test-set predictions for the Segmentation dashboard: every image, one tag per test set.

At the end of a training run the best model's predictions on each test set go
through the dashboard's summary API (`lung_keras_tb.summary`) into the run's
TensorBoard folder, `<run>/logs/test` (one TensorBoard run per training run), at
the run's last step (the last 0-based epoch, the step `DisplayCallback` uses),
with each image's Dice.

Test set names (as `lung_keras.compare` and `train` name them) map to tags:

==================== ====================
set name             tag
==================== ====================
``test``             ``test``
``test (normal)``    ``test/normal``
``test (abnormal)``  ``test/abnormal``
``extra: <folder>``  ``extra/<folder>``
anything else        its slug
==================== ====================

A folder name keeps ASCII letters (accents dropped), digits, ``_ . -``; every
other run of characters becomes ``_`` (``extra: Hospital B`` ->
``extra/Hospital_B``); an empty, ``.`` or ``..`` name becomes ``unnamed``.

Storage: with `shared_dir`, a test set's image and mask PNGs are written once
(`lung_keras_tb.summary.write_shared_source`, keyed by the tag, ids and pixels)
and each run adds only its prediction PNGs and Dice; without it, each run's
summary holds its own copy. `benchmarks/dashboard_storage.py` measures both: for
100 test images at 128x128, about 0.32 MB per run shared (plus 0.9 MB once per
test set) against 1.9 MB per run unshared.
"""

import importlib.util
import os
import re
import unicodedata

import numpy as np

from lung_keras.callbacks.display_callback import foreground_probability

TEST_SUBDIR = "test"
_MAX_SEGMENT = 200


def dashboard_available():
    """Whether the Segmentation dashboard's summary API (`lung_keras_tb`) is installed."""
    return importlib.util.find_spec("lung_keras_tb") is not None


def _summary():
    try:
        from lung_keras_tb import summary
    except ImportError as error:
        raise ImportError(
            "Logging test predictions needs the `lung_keras_tb` TensorBoard plugin. Install it with "
            "`pip install -e tensorboard_plugins/lung_keras_tb`."
        ) from error
    return summary


def _segment(text):
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", ascii_text.strip()).strip("_")[:_MAX_SEGMENT]
    return slug if slug not in ("", ".", "..") else "unnamed"


def dashboard_tag(set_name):
    """The dashboard tag of a test set name (table in the module docstring).

    Example:
        >>> dashboard_tag("test (abnormal)"), dashboard_tag("extra: shenzhen_dev")
        ('test/abnormal', 'extra/shenzhen_dev')
    """
    name = str(set_name).strip()
    match = re.fullmatch(r"test \((.+)\)", name)
    if match:
        return "test/" + _segment(match.group(1))
    match = re.fullmatch(r"extra:\s*(.+)", name)
    if match:
        return "extra/" + _segment(match.group(1))
    return _segment(name)


def shared_images_dir(out_dir):
    """Where runs written under `out_dir` share their test images: `<out_dir>/_test_images`."""
    return os.path.join(os.fspath(out_dir), _summary().SHARED_DIRNAME)


def log_test_predictions(
    log_dir, set_name, images, masks, predictions, ids, dice, step, subdir=TEST_SUBDIR, shared_dir=None
):
    """Writes one test set's predictions and per-image Dice for the Segmentation dashboard.

    Args:
        log_dir: the run's TensorBoard folder (`<run>/logs`).
        set_name: test set name, e.g. `"test (abnormal)"` or `"extra: shenzhen_dev"`; its tag is
            `dashboard_tag(set_name)`.
        images: (N, H, W[, C]) images in [0, 1] (or uint8).
        masks: (N, H, W[, 1]) true masks.
        predictions: the model's output: (N, H, W[, 1]) foreground probabilities (or per-class
            probabilities, background first).
        ids: N distinct sample ids.
        dice: N per-image Dice values.
        step: the run's last step (0-based index of the last epoch).
        subdir: folder under `log_dir` to write (one TensorBoard run); None writes `log_dir` itself.
        shared_dir: folder where the test set's images and masks are stored once for every run
            (see `shared_images_dir`); None stores them with this run's predictions.

    Returns:
        The tag written.
    """
    summary = _summary()
    tag = dashboard_tag(set_name)
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"`step` must be a non-negative integer. Received: step={step!r}")
    probs = foreground_probability(predictions)
    ids = [str(i) for i in ids]
    run_dir = os.path.join(os.fspath(log_dir), subdir) if subdir else os.fspath(log_dir)
    if shared_dir is None:
        with summary.SegmentationWriter(run_dir) as writer:
            writer.write(int(step), images, masks, probs, ids, dice, tag=tag)
    else:
        summary.write_shared(run_dir, shared_dir, int(step), images, masks, probs, ids, dice, tag=tag)
    return tag


def log_test_split(log_dir, samples, images, masks, predictions, dice, step, by_diagnosis=False, shared_dir=None):
    """Logs a run's in-domain test split: one set, or one per diagnosis (`test (<diagnosis>)`).

    The sets are named as `lung_keras.compare` names them, so a comparison adds only its other sets.

    Args:
        samples: the split's samples (`.id`, `.diagnosis`), in the order of the arrays.
        by_diagnosis: one set per diagnosis (healthy-only training), else one set `test`.
        Others: as `log_test_predictions`.

    Returns:
        `{"log_dir", "step", "shared_dir", "sets": [set names written]}` (the record a later
        `log_test_predictions` of the same run uses).
    """
    samples = list(samples)
    if by_diagnosis:
        groups = [(f"test ({d})", [i for i, s in enumerate(samples) if s.diagnosis == d])
                  for d in sorted({s.diagnosis for s in samples})]
    else:
        groups = [("test", list(range(len(samples))))]
    record = {"log_dir": os.fspath(log_dir), "step": int(step),
              "shared_dir": None if shared_dir is None else os.fspath(shared_dir), "sets": []}
    for name, idx in groups:
        if not idx:
            continue
        log_test_predictions(log_dir, name, images[idx], masks[idx], np.asarray(predictions)[idx],
                             [samples[i].id for i in idx], np.asarray(dice)[idx], step, shared_dir=shared_dir)
        record["sets"].append(name)
    return record
