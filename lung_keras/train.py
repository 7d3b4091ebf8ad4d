"""Train and evaluate segmentation models: the code behind `lung-keras train` and `lung-keras evaluate`.

A training run writes `runs/<name>/`:

- `config.json`: every setting, the resolved data folder, the split ids and library versions;
- `history.csv`: loss, accuracy, dice and their `val_` twins per epoch (plus wall time);
- `logs/`: TensorBoard event files (scalars, and prediction grids when the display callback is available);
- `best.keras`: the plain model (no augmentation wrapper) at the epoch of best validation Dice;
- `metrics.json`: per-image test Dice/IoU with the mean, and training times;
- `curves.png`: loss, accuracy and Dice, train vs validation.
"""

import csv
import dataclasses
import datetime
import io
import json
import pathlib
import platform
import time

import numpy as np

from lung_keras import data as lk_data
from lung_keras._io import atomic_path
from lung_keras._io import write_text
from lung_keras.saving import load_model

LOSSES = ("bce_dice", "dice", "bce")
SCHEDULES = ("constant", "cosine")


@dataclasses.dataclass
class TrainConfig:
    """Settings of one training run (every field is a `lung-keras train` option)."""

    data: str = None
    out_dir: str = "runs"
    name: str = None
    image_size: int = 128
    epochs: int = 40
    batch_size: int = 8
    learning_rate: float = 1e-3
    lr_schedule: str = "cosine"
    base_filters: int = 16
    depth: int = 4
    momentum: float = 0.9
    loss: str = "bce_dice"
    normalization: str = "none"
    seed: int = 0
    split_seed: int = 0
    fractions: tuple = (0.7, 0.15, 0.15)
    healthy_only: bool = False
    train_size: int = None
    policy: str = None
    skip_invalid: bool = False
    deterministic: bool = True
    display_samples: int = 4
    min_epoch_samples: int = None
    verbose: int = 1

    def __post_init__(self):
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(f"`lr_schedule` must be one of {SCHEDULES}. Received: lr_schedule={self.lr_schedule!r}")
        from lung_keras.preprocessing.intensity_normalization import MODES

        if self.normalization not in MODES:
            raise ValueError(f"`normalization` must be one of {MODES}. Received: normalization={self.normalization!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"`loss` must be one of {LOSSES}. Received: loss={self.loss!r}")
        for field in ("epochs", "batch_size", "image_size", "base_filters", "depth"):
            if int(getattr(self, field)) < 1:
                raise ValueError(f"`{field}` must be a positive integer. Received: {field}={getattr(self, field)}")
        if self.train_size is not None and int(self.train_size) < 1:
            raise ValueError(f"`train_size` must be >= 1 or None. Received: train_size={self.train_size}")

    @property
    def size(self):
        return (int(self.image_size), int(self.image_size))


def make_loss(name):
    from lung_keras.losses import BceDiceLoss
    from lung_keras.losses import DiceLoss

    import keras

    return {
        "bce_dice": BceDiceLoss,
        "dice": DiceLoss,
        "bce": lambda: keras.losses.BinaryCrossentropy(name="bce"),
    }[name]()


def make_metrics():
    import keras

    from lung_keras.metrics import Dice

    return [keras.metrics.BinaryAccuracy(name="accuracy"), Dice(name="dice")]


def subsample_train(samples, train_size, seed):
    """Seeded stratified subset of `train_size` training samples (the small-data regime)."""
    if train_size is None or train_size >= len(samples):
        return list(samples)
    ids = lk_data.split_dataset(samples, (train_size / len(samples), 1 - train_size / len(samples), 0.0), seed=seed)
    chosen = set(ids["train"])
    # Rounding per diagnosis may miss by one; top up or trim deterministically.
    ordered = sorted(samples, key=lambda s: (s.id not in chosen, s.id))
    rng = np.random.default_rng(seed)
    rest = [s for s in ordered if s.id not in chosen]
    rng.shuffle(rest)
    picked = [s for s in ordered if s.id in chosen][:train_size]
    picked += rest[: train_size - len(picked)]
    return sorted(picked, key=lambda s: s.id)


@dataclasses.dataclass
class Splits:
    train: list
    val: list
    test: list


def make_splits(dataset, config):
    """The run's train/val/test samples: seeded stratified split, then healthy-only / train-size filters.

    With `healthy_only`, training and validation (checkpoint selection) use `normal` cases only, and every
    other case (each abnormal case of the data set, whatever split it fell in, plus the normal test cases)
    is test data: no abnormal case ever influences the model, and the shifted test set is as large as possible.
    """
    ids = lk_data.split_dataset(dataset, config.fractions, seed=config.split_seed)
    by_id = {s.id: s for s in dataset.samples}
    train = [by_id[i] for i in ids["train"]]
    val = [by_id[i] for i in ids["val"]]
    test = [by_id[i] for i in ids["test"]]
    if config.healthy_only:
        train = lk_data.filter_diagnosis(train, "normal")
        val = lk_data.filter_diagnosis(val, "normal")
        if not train or not val:
            raise ValueError("--healthy-only left no training or validation sample: no case is marked `normal`.")
        kept = {s.id for s in train + val}
        test = sorted((s for s in dataset.samples if s.id not in kept and (s.diagnosis != "normal" or s.id in ids["test"])),
                      key=lambda s: s.id)
    train = subsample_train(train, config.train_size, config.split_seed)
    return Splits(train, val, test)


def _epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Adds `time` (seconds since training began) to each epoch's logs."""

        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["time"] = time.perf_counter() - self.start

    return EpochTimer()


def _best_checkpoint(path, monitor="val_dice"):
    import keras

    class BestCheckpoint(keras.callbacks.Callback):
        """Saves the plain model (unwrapped from any augmentation wrapper) when `monitor` improves."""

        def __init__(self):
            super().__init__()
            self.best = -np.inf
            self.best_epoch = None

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(monitor)
            if value is not None and value > self.best:
                self.best, self.best_epoch = float(value), epoch + 1
                with atomic_path(path) as tmp:  # a kill mid-save leaves the previous best intact
                    unwrap(self.model).save(tmp)

    return BestCheckpoint()


def unwrap(model):
    """The segmentation model inside an augmentation wrapper (or the model itself)."""
    for attr in ("inner_model", "model", "segmentation_model"):
        inner = getattr(model, attr, None)
        if inner is not None and hasattr(inner, "predict") and inner is not model:
            return inner
    return model


def load_policy(policy):
    """A policy object, or a policy file (Albumentations JSON/YAML or ours) loaded through the bridge."""
    if policy is None or not isinstance(policy, (str, pathlib.Path)):
        return policy
    from lung_keras.augment import bridge

    return bridge.load_policy(policy)


def _versions():
    import keras

    return {"lung_keras": __import__("lung_keras").__version__, "keras": keras.__version__,
            "backend": keras.backend.backend(), "python": platform.python_version(), "numpy": np.__version__}


def score_predictions(y_true, y_pred, threshold=0.5):
    """Per-image Dice, IoU and pixel accuracy as numpy arrays."""
    from lung_keras.metrics import dice_per_image
    from lung_keras.metrics import iou_per_image

    dice = np.asarray(dice_per_image(y_true, y_pred, threshold=threshold))
    iou = np.asarray(iou_per_image(y_true, y_pred, threshold=threshold))
    acc = ((y_pred >= threshold) == (y_true > 0.5)).reshape(len(y_true), -1).mean(axis=1)
    return dice, iou, acc


def train(config, dataset=None, policy=None, extra_callbacks=()):
    """Run one training run as `config` says; return a dict with the run folder and test results.

    Args:
        config: a `TrainConfig`.
        dataset: an already loaded `lung_keras.data.Dataset` (else loaded from `config.data`).
        policy: augmentation policy (a `lung_keras.augment.Compose` or a policy file); applied in the
            model's train step only. Overrides `config.policy`.
        extra_callbacks: more Keras callbacks for `model.fit`.
    """
    import keras

    from lung_keras.models import unet

    config = dataclasses.replace(config)
    keras.utils.set_random_seed(config.seed)
    if config.deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()

    if dataset is None:
        root = lk_data.resolve_data_dir(config.data)
        dataset = lk_data.load_dataset(root, skip_invalid=config.skip_invalid)
    config.data = str(dataset.root)
    splits = make_splits(dataset, config)
    name = config.name or datetime.datetime.now().strftime("unet-%Y%m%d-%H%M%S")
    run_dir = pathlib.Path(config.out_dir) / name
    run_dir.mkdir(parents=True, exist_ok=True)

    x_train, y_train = lk_data.load_arrays(splits.train, config.size)
    x_val, y_val = lk_data.load_arrays(splits.val, config.size)
    x_test, y_test = lk_data.load_arrays(splits.test, config.size)
    if config.min_epoch_samples and len(x_train) < config.min_epoch_samples:
        # Small-data regime: repeat the few images so every epoch has as many steps as a full-data epoch
        # (the augmented arm then sees new draws of each image within an epoch).
        reps = -(-int(config.min_epoch_samples) // len(x_train))
        x_train, y_train = np.concatenate([x_train] * reps), np.concatenate([y_train] * reps)

    policy = load_policy(policy if policy is not None else config.policy)
    record = dataclasses.asdict(config)
    record.update(
        run_name=name,
        splits={k: [s.id for s in getattr(splits, k)] for k in ("train", "val", "test")},
        versions=_versions(),
        policy_config=keras.saving.serialize_keras_object(policy) if policy is not None else None,
    )
    write_text(run_dir / "config.json", json.dumps(record, indent=2, default=str))

    net = unet((*config.size, x_train.shape[-1]), config.base_filters, config.depth, momentum=config.momentum,
               normalization=config.normalization)
    model = net
    if policy is not None:
        from lung_keras.augment import AugmentedModel

        model = AugmentedModel(net, policy)
    learning_rate = config.learning_rate
    if config.lr_schedule == "cosine":
        steps = config.epochs * -(-len(x_train) // config.batch_size)
        learning_rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps, alpha=0.05)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=make_loss(config.loss),
        metrics=make_metrics(),
    )
    checkpoint = _best_checkpoint(str(run_dir / "best.keras"))
    callbacks = [
        _epoch_timer(),
        checkpoint,
        keras.callbacks.CSVLogger(str(run_dir / "history.csv")),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs"), write_graph=False),
    ]
    display = _display_callback(x_val, y_val, [s.id for s in splits.val], run_dir / "logs", config)
    if display is not None:
        callbacks.append(display)
    callbacks += list(extra_callbacks)

    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        callbacks=callbacks,
        verbose=config.verbose,
    )
    train_seconds = time.perf_counter() - start

    best = load_model(run_dir / "best.keras")
    predictions = best.predict(x_test, batch_size=config.batch_size, verbose=0)
    dice, iou, acc = score_predictions(y_test, predictions)
    hist = history.history
    val_dice = hist.get("val_dice", [])
    times = hist.get("time", [])
    first_95 = next((t for v, t in zip(val_dice, times) if v >= 0.95), None)
    metrics = {
        "run_name": name,
        "test": {
            "n": int(len(dice)),
            "mean_dice": float(np.mean(dice)),
            "median_dice": float(np.median(dice)),
            "mean_iou": float(np.mean(iou)),
            "mean_accuracy": float(np.mean(acc)),
            "per_image": [
                {"id": s.id, "diagnosis": s.diagnosis, "dice": float(d), "iou": float(j), "accuracy": float(a)}
                for s, d, j, a in zip(splits.test, dice, iou, acc)
            ],
        },
        "best_epoch": checkpoint.best_epoch,
        "best_val_dice": checkpoint.best,
        "train_seconds": train_seconds,
        "seconds_to_val_dice_0.95": first_95,
        "train_images_per_second": len(x_train) * len(val_dice) / train_seconds if val_dice else None,
        "epochs_run": len(val_dice),
        "num_train": len(splits.train),
        "num_val": len(splits.val),
        "num_test": len(splits.test),
    }
    write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2))
    _plot_curves(run_dir)
    if config.verbose:
        print(
            f"{name}: test Dice {metrics['test']['mean_dice']:.4f} (n={len(dice)}), best val Dice "
            f"{checkpoint.best:.4f} at epoch {checkpoint.best_epoch}, {train_seconds:.0f}s -> {run_dir}"
        )
    return {"run_dir": run_dir, "metrics": metrics, "history": hist, "model": best, "splits": splits}


def _display_callback(x_val, y_val, ids, log_dir, config):
    if not config.display_samples:
        return None
    try:
        from lung_keras.callbacks import DisplayCallback
    except ImportError:
        return None
    n = min(config.display_samples, len(x_val))
    try:
        return DisplayCallback((x_val[:n], y_val[:n]), str(log_dir), sample_ids=ids[:n])
    except ImportError:
        return None


def _plot_curves(run_dir):
    try:
        from lung_keras.viz import plot_history
    except ImportError:
        return None
    return plot_history(str(run_dir / "history.csv"), path=str(run_dir / "curves.png"))


def evaluate(model_path, data_dir, out_dir, image_size=None, threshold=0.5, batch_size=16, skip_invalid=False):
    """Score a saved model on every pair of a dataset folder.

    Writes `per_image.csv` (id, diagnosis, dice, iou, accuracy) and `summary.json` (n, mean, median,
    standard deviation and mean per diagnosis) into `out_dir`; returns the summary dict.
    """
    model = load_model(model_path)
    if image_size is None:
        h, w = model.input_shape[1:3]
        if h is None or w is None:
            raise ValueError(f"{model_path}: the model accepts any size; pass image_size=(height, width).")
        image_size = (h, w)
    elif isinstance(image_size, int):
        image_size = (image_size, image_size)
    dataset = lk_data.load_dataset(data_dir, skip_invalid=skip_invalid)
    channels = model.input_shape[-1]
    rows = []
    for start in range(0, len(dataset.samples), 64):
        chunk = dataset.samples[start : start + 64]
        x, y = lk_data.load_arrays(chunk, image_size, channels=channels)
        pred = model.predict(x, batch_size=batch_size, verbose=0)
        dice, iou, acc = score_predictions(y, pred, threshold)
        rows += [
            {"id": s.id, "diagnosis": s.diagnosis, "dice": float(d), "iou": float(j), "accuracy": float(a)}
            for s, d, j, a in zip(chunk, dice, iou, acc)
        ]
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text(out_dir / "per_image.csv", buffer.getvalue())
    dice = np.array([r["dice"] for r in rows])
    summary = {
        "model": str(model_path),
        "data": str(dataset.root),
        "image_size": list(image_size),
        "threshold": threshold,
        "n": len(rows),
        "mean_dice": float(dice.mean()),
        "median_dice": float(np.median(dice)),
        "std_dice": float(dice.std(ddof=1)) if len(dice) > 1 else 0.0,
        "mean_iou": float(np.mean([r["iou"] for r in rows])),
        "mean_accuracy": float(np.mean([r["accuracy"] for r in rows])),
        "by_diagnosis": {
            d: {"n": int(sum(r["diagnosis"] == d for r in rows)),
                "mean_dice": float(np.mean([r["dice"] for r in rows if r["diagnosis"] == d]))}
            for d in sorted({r["diagnosis"] for r in rows})
        },
    }
    write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    return summary
