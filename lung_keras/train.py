"""Train and evaluate segmentation models: the code behind `lung-keras train` and `lung-keras evaluate`.

A training run writes `runs/<name>/`:

- `config.json`: every setting, the resolved data folder, the split ids (and `split_groups`, the patients of
  each split, when samples carry groups) and library versions;
- `history.csv`: loss, accuracy, dice and their `val_` twins per epoch (plus wall time);
- `logs/`: TensorBoard event files: `train/` and `validation/` scalars with Keras' `TensorBoard` tags, written
  by `lung_keras.callbacks.ScalarLogger` (TensorBoard's `EventFileWriter`, so any backend, no TensorFlow), and
  prediction grids when the display callback is available;
- `best.keras`: the plain model (no augmentation wrapper) at the epoch of best validation Dice;
- `metrics.json`: per-image test Dice/IoU with the mean, and training times;
- `curves.png`: loss, accuracy and Dice, train vs validation.

`train` reads as its steps (check the arguments, seed, decode, split, open the run folder, build the inputs,
fit, test); the run folder and the resume state live in `lung_keras._run_folder`. The module stays one (over
500 lines) because `evaluate` scores with the same functions as the test step, and `compare` uses both.
"""

import csv
import dataclasses
import datetime
import json
import pathlib
import platform
import shutil
import time
import warnings

import numpy as np

from lung_keras import data as lk_data
from lung_keras._io import atomic_path
from lung_keras._io import write_csv
from lung_keras._io import write_text
from lung_keras._run_folder import open_run_dir
from lung_keras.postprocess import postprocess_masks
from lung_keras.saving import load_model

LOSSES = ("bce_dice", "dice", "bce")
SCHEDULES = ("constant", "cosine")
#: Where augmentation runs: in the model's train step (on the accelerator, the default) or in the tf.data pipeline.
AUGMENT_IN = ("model", "pipeline")


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
    binarize_threshold: float = None
    deterministic: bool = True
    display_samples: int = 4
    min_epoch_samples: int = None
    data_cache: str = "auto"
    cache_dir: str = None
    workers: int = None
    strategy: str = "none"
    augment_in: str = "model"
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
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.number)) or not np.isfinite(lr) or lr <= 0:
            raise ValueError(f"`learning_rate` must be a positive number. Received: learning_rate={lr!r}")
        lk_data.check_binarize_threshold(self.binarize_threshold)
        from lung_keras.data.store import CACHES
        from lung_keras.distribute import STRATEGIES

        if self.data_cache not in CACHES:
            raise ValueError(f"`data_cache` must be one of {CACHES}. Received: data_cache={self.data_cache!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"`strategy` must be one of {STRATEGIES}. Received: strategy={self.strategy!r}")
        if self.augment_in not in AUGMENT_IN:
            raise ValueError(f"`augment_in` must be one of {AUGMENT_IN}. Received: augment_in={self.augment_in!r}")
        if self.workers is not None and int(self.workers) < 1:
            raise ValueError(f"`workers` must be a positive integer or None. Received: workers={self.workers!r}")

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
    """Seeded stratified subset of `train_size` training samples (the small-data regime).

    Samples are drawn one by one even when they carry a `group` (a CT patient's slices): every sample here is
    already a training patient's, so a subset cannot leak into validation or test.
    """
    if train_size is None or train_size >= len(samples):
        return list(samples)
    each = [dataclasses.replace(s, group=None) if getattr(s, "group", None) is not None else s for s in samples]
    ids = lk_data.split_dataset(each, (train_size / len(samples), 1 - train_size / len(samples), 0.0), seed=seed)
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

    Samples carrying a `group` (the slices of a CT patient, `SliceSet.to_store`) are split by group: every
    sample of a group is in one of train, val and test (the filters below only move whole diagnoses, whose
    groups are whole, or drop training samples).

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
    for split, part in (("train", train), ("validation", val), ("test", test)):
        if not part:
            counts = ", ".join(f"{d}: {sum(s.diagnosis == d for s in dataset.samples)}"
                               for d in sorted({s.diagnosis for s in dataset.samples}))
            groups = _groups(dataset.samples)
            unit = f"; {len(groups)} groups (patients), each kept in one split" if groups else ""
            raise ValueError(f"The {split} split of {len(dataset.samples)} pairs in {dataset.root} ({counts}) is empty "
                             f"(fractions {tuple(config.fractions)}, split per diagnosis{unit}); add pairs.")
    return Splits(train, val, test)


def _groups(samples):
    """The sorted groups (e.g. CT patients) of `samples`; empty when no sample carries one."""
    return sorted({str(s.group) for s in samples if getattr(s, "group", None) is not None})


def _epoch_timer(offset=0.0):
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Adds `time` (seconds of training, counting the time before a resume) to each epoch's logs."""

        def on_train_begin(self, logs=None):
            self.start = time.perf_counter() - offset

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["time"] = time.perf_counter() - self.start

    return EpochTimer()


def _best_checkpoint(path, monitor="val_dice", best=-np.inf, best_epoch=None):
    import keras

    class BestCheckpoint(keras.callbacks.Callback):
        """Saves the plain model (unwrapped from any augmentation wrapper) when `monitor` improves."""

        def __init__(self):
            super().__init__()
            self.best = best
            self.best_epoch = best_epoch

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


@dataclasses.dataclass
class TrainResult:
    """What a training run returns; also read by its former dict keys (`result["metrics"]`, `result["model"]`...).

    `metrics` is the run's `metrics.json`; `history` each epoch's logs by name; `model` the best checkpoint;
    `dashboard` the Segmentation dashboard record `lung_keras.compare` extends (None without the plugin);
    `resumed` is `"finished"` when `--resume` found the run already finished.
    """

    run_dir: pathlib.Path
    metrics: dict
    history: dict
    model: object
    splits: Splits
    dashboard: dict = None
    resumed: str = None

    def __getitem__(self, key):
        if key not in {f.name for f in dataclasses.fields(self)}:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key, default=None):
        value = getattr(self, key, None)
        return default if value is None else value


def train(config, dataset=None, policy=None, extra_callbacks=(), resume=False, overwrite=False, store=None):
    """Run one training run as `config` says; return its `TrainResult` (run folder, test metrics, model).

    Args:
        config: a `TrainConfig`.
        dataset: an already loaded `lung_keras.data.Dataset` (else loaded from `config.data`).
        policy: augmentation policy (a `lung_keras.augment.Compose` or a policy file); applied in the
            model's train step only. Overrides `config.policy`.
        extra_callbacks: more Keras callbacks for `model.fit`.
        resume: continue the run folder `<out_dir>/<name>` from its last complete epoch (a finished run is
            loaded and scored again, not retrained); the settings must match.
        overwrite: delete an existing run folder of that name first. Without `resume` or `overwrite` an
            existing run folder is an error, raised before anything is written.
        store: an `ArrayStore` already decoded at `config.image_size` (`lung_keras.data.build_store`; `compare`
            decodes once for all its runs). Else the data is decoded once here, in memory or in the disk cache
            as `config.data_cache` says.
    """
    from lung_keras.distribute import make_distribution

    config = _checked(config, resume, overwrite)
    distribution = make_distribution(config.strategy)  # first: TensorFlow sets devices up once, at start
    _seed_everything(config)
    store = _decoded(config, dataset, store)
    dataset = store.dataset if dataset is None else dataset
    config.data = str(dataset.root)
    splits = make_splits(dataset, config)
    name = config.name or datetime.datetime.now().strftime("unet-%Y%m%d-%H%M%S")
    policy = _load_policy(policy if policy is not None else config.policy)
    record = _run_record(config, name, splits, policy, distribution)
    run_dir, state = open_run_dir(pathlib.Path(config.out_dir) / name, record, distribution, resume, overwrite)
    if resume and (run_dir / "metrics.json").is_file() and (run_dir / "best.keras").is_file():
        return _finished_run(run_dir, name, splits, config)
    reps = _repeats(config, splits)
    train_data, val_data, fit_args = _fit_inputs(config, store, splits, policy, distribution, reps)
    checkpoint, start = _fit(config, store, splits, policy, distribution, state, run_dir, train_data, val_data,
                             fit_args, reps, extra_callbacks)
    train_seconds = state.seconds if state.rows else time.perf_counter() - start
    best = load_model(run_dir / "best.keras")
    metrics, hist, dashboard = _test(config, store, splits, best, state, run_dir, distribution, name, checkpoint,
                                     train_seconds, len(splits.train) * reps)
    shutil.rmtree(state.backup, ignore_errors=True)  # finished: nothing left to resume
    _plot_curves(run_dir)
    if not distribution.is_chief:
        shutil.rmtree(run_dir.parent, ignore_errors=True)
        run_dir = pathlib.Path(config.out_dir) / name
    elif config.verbose:
        print(f"{name}: test Dice {metrics['test']['mean_dice']:.4f} (n={metrics['test']['n']}), best val Dice "
              f"{checkpoint.best:.4f} at epoch {checkpoint.best_epoch}, {train_seconds:.0f}s -> {run_dir}")
    return TrainResult(run_dir, metrics, hist, best, splits, dashboard)


def _checked(config, resume, overwrite):
    """A copy of `config` (the run records the resolved data folder in it), with the run arguments checked."""
    from lung_keras.distribute import check_strategy

    check_strategy(config.strategy)
    if resume and overwrite:
        raise ValueError("Pass either resume=True (--resume) or overwrite=True (--overwrite), not both.")
    if resume and not config.name:
        raise ValueError("--resume needs the --name of the run to continue.")
    return dataclasses.replace(config)


def _seed_everything(config):
    import keras

    keras.utils.set_random_seed(config.seed)
    if config.deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def _decoded(config, dataset, store):
    """`store` when decoded at the run's size, else the data decoded once (memory or disk cache)."""
    if store is not None and tuple(store.image_size) == config.size:
        return store
    source = dataset if dataset is not None else lk_data.resolve_data_dir(config.data)
    return lk_data.build_store(source, config.size, cache=config.data_cache, cache_dir=config.cache_dir,
                               workers=config.workers, skip_invalid=config.skip_invalid,
                               binarize_threshold=config.binarize_threshold, verbose=config.verbose)


def _load_policy(policy):
    """A policy object as is, or a policy file loaded by `lung_keras.augment.bridge.load_policy`."""
    if policy is None or not isinstance(policy, (str, pathlib.Path)):
        return policy
    from lung_keras.augment.bridge import load_policy

    return load_policy(policy)


def _run_record(config, name, splits, policy, distribution):
    """`config.json`: every setting, the run name, the split ids, versions, the policy and the distribution."""
    import keras

    record = dataclasses.asdict(config)
    record.update(
        run_name=name,
        splits={k: [s.id for s in getattr(splits, k)] for k in ("train", "val", "test")},
        versions=_versions(),
        policy_config=keras.saving.serialize_keras_object(policy) if policy is not None else None,
        distribution=distribution.describe(config.batch_size),
    )
    groups = {k: _groups(getattr(splits, k)) for k in ("train", "val", "test")}
    if any(groups.values()):  # split by group (a CT slice store: by patient); each group listed in its one split
        record["split_groups"] = groups
    return record


def _repeats(config, splits):
    """How often the training images repeat per epoch: in the small-data regime, enough for as many steps as
    a full-data epoch (the augmented arm then sees new draws of each image within an epoch)."""
    if config.min_epoch_samples and len(splits.train) < config.min_epoch_samples:
        return -(-int(config.min_epoch_samples) // len(splits.train))
    return 1


def _fit_inputs(config, store, splits, policy, distribution, reps):
    """`(train_data, val_data, fit_args)` for `model.fit`: arrays from a memory store, batches streamed from a
    disk store or a data-parallel mesh, or a tf.data pipeline that augments (`augment_in="pipeline"`)."""
    import keras

    in_pipeline = policy is not None and config.augment_in == "pipeline"
    if in_pipeline and keras.backend.backend() != "tensorflow":
        raise ValueError("augment_in='pipeline' augments in a tf.data pipeline and needs KERAS_BACKEND=tensorflow; "
                         "use augment_in='model' (the default) on other backends.")
    streaming = store.location is not None  # a disk store streams; a memory store trains from arrays
    if in_pipeline:
        def augment(images, masks):
            out = policy({"images": images, "segmentation_masks": masks}, training=True)
            return out["images"], out["segmentation_masks"]

        train_data = store.tf_dataset(splits.train, config.batch_size, shuffle=True, seed=config.seed, repeat=reps,
                                      map_fn=augment)
        return train_data, _stream(store, splits.val, config) if streaming else store.arrays(splits.val), {}
    if streaming or distribution.name == "data-parallel":
        # A data-parallel mesh needs batches divisible by its devices: a short last batch is topped up with
        # the epoch's first rows (so up to replicas - 1 validation images count twice; see the README).
        multiple = distribution.replicas if distribution.name == "data-parallel" else 1
        return (_stream(store, splits.train, config, shuffle=True, repeat=reps, multiple=multiple),
                _stream(store, splits.val, config, multiple=multiple), {})
    x_train, y_train = store.arrays(splits.train)
    if reps > 1:
        x_train, y_train = np.concatenate([x_train] * reps), np.concatenate([y_train] * reps)
    return x_train, store.arrays(splits.val), {"y": y_train, "batch_size": config.batch_size, "shuffle": True}


def _compiled_model(config, channels, policy, distribution, num_train):
    """The U-Net (wrapped with the policy unless it augments in the pipeline), compiled; call in the scope."""
    import keras

    from lung_keras.models import unet

    model = unet((*config.size, channels), config.base_filters, config.depth, momentum=config.momentum,
                 normalization=config.normalization, synchronized=distribution.synchronized_batchnorm)
    if policy is not None and config.augment_in != "pipeline":
        from lung_keras.augment import AugmentedModel

        if distribution.engine is not None:
            # Its seed state must live where the model's variables live (mirrored, or on the JAX mesh): rebuilt
            # here, inside the strategy's scope, from its config (same seed, same draws).
            policy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(policy))
        model = AugmentedModel(model, policy)
    learning_rate = config.learning_rate
    if config.lr_schedule == "cosine":
        steps = config.epochs * -(-num_train // config.batch_size)
        learning_rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=make_loss(config.loss), metrics=make_metrics())
    return model


def _fit(config, store, splits, policy, distribution, state, run_dir, train_data, val_data, fit_args, reps,
         extra_callbacks):
    """Build, compile and fit the model in the distribution's scope, from `state` when resuming.

    Returns `(checkpoint, start)`: the best-checkpoint callback and when fitting started.
    """
    from lung_keras.callbacks.events import ScalarLogger

    with distribution.scope():
        model = _compiled_model(config, store.channels, policy, distribution, len(splits.train) * reps)
        checkpoint = _best_checkpoint(str(run_dir / "best.keras"), best=state.best, best_epoch=state.best_epoch)
        callbacks = [
            _epoch_timer(state.seconds),
            checkpoint,
            state.callback(checkpoint),  # after the checkpoint, so the saved state knows this epoch's best
            ScalarLogger(run_dir / "logs"),  # Keras' TensorBoard tags, written without TensorFlow
        ]
        shown = splits.val[: config.display_samples or 0]
        if distribution.name == "data-parallel":  # the callback's predict batch must divide among the devices
            shown = shown[: len(shown) // distribution.replicas * distribution.replicas]
        display = _display_callback(*store.arrays(shown), [s.id for s in shown], run_dir / "logs", config) if shown \
            else None
        callbacks += ([display] if display is not None else []) + list(extra_callbacks)
        if distribution.name == "multiworker":
            _build_for_multiworker(model, store.arrays(splits.train[: config.batch_size]))
        if state.epoch:
            model.build((None, *config.size, store.channels))
            getattr(state, "restore_from", state).restore(model)
        start = time.perf_counter()
        model.fit(train_data, validation_data=val_data, epochs=config.epochs, callbacks=callbacks,
                  verbose=config.verbose, initial_epoch=state.epoch, **fit_args)
    return checkpoint, start


def _test(config, store, splits, best, state, run_dir, distribution, name, checkpoint, train_seconds, num_train):
    """Score the best checkpoint on the test split, log it to the dashboard, write `metrics.json`.

    Returns `(metrics, history, dashboard)`.
    """
    x_test, y_test = store.arrays(splits.test)
    predictions = best.predict(x_test, batch_size=config.batch_size, verbose=0)
    dice, iou, acc = score_predictions(y_test, predictions)
    hist = state.history()
    dashboard = None
    if distribution.is_chief:  # the shared test images live beside the chief's run folder
        dashboard = _log_test_predictions(run_dir, splits.test, x_test, y_test, predictions, dice, hist, config)
    val_dice = hist.get("val_dice", [])
    times = hist.get("time", [])
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
        "seconds_to_val_dice_0.95": next((t for v, t in zip(val_dice, times) if v >= 0.95), None),
        "train_images_per_second": num_train * len(val_dice) / train_seconds if val_dice else None,
        "epochs_run": len(val_dice),
        "num_train": len(splits.train),
        "num_val": len(splits.val),
        "num_test": len(splits.test),
    }
    write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2))
    return metrics, hist, dashboard


def _build_for_multiworker(model, example_batch):
    """Build `model` (weights, optimizer, metrics) from a local batch before `fit` under MultiWorkerMirroredStrategy.

    Keras 3's TensorFlow trainer builds a model at the start of `fit` by reducing the first *distributed* batch
    (`strategy.reduce` in `_maybe_symbolic_build`), which MultiWorkerMirroredStrategy cannot do eagerly: `fit`
    fails with "Attempt to convert a value (PerReplica ...)" (keras-team/keras#20585, open). So the model is built
    here inside the strategy's scope, and its recorded strategy is cleared: `fit`, which runs inside the same scope,
    finds the strategy through `tf.distribute.get_strategy()` and distributes data and steps exactly as before.
    """
    model._symbolic_build(data_batch=example_batch)  # noqa: SLF001 (no public way; see the docstring)
    model._distribute_strategy = None  # noqa: SLF001
    # Second bug: across workers Keras reduces each step's logs with `strategy.reduce("MEAN", v, axis=0)`, which
    # fails on the scalar logs every model returns ("Invalid reduction dimension 0 for input with 0 dimensions").
    # The steps below return each log as a one-element vector, which that reduction turns back into the scalar.
    # The class keeps its name and module, so nothing saved differs.
    original = type(model)

    def vector_logs(step):
        def wrapped(self, data):
            import keras

            return {k: keras.ops.reshape(v, (1,)) for k, v in step(self, data).items()}

        return wrapped

    model.__class__ = type(original.__name__, (original,), {
        "__module__": original.__module__, "__qualname__": original.__qualname__,
        "train_step": vector_logs(original.train_step), "test_step": vector_logs(original.test_step)})


def _stream(store, samples, config, shuffle=False, repeat=1, multiple=1):
    """Batches of `samples` read from a store: `tf.data` on TensorFlow, a `PyDataset` elsewhere."""
    import keras

    if keras.backend.backend() == "tensorflow" and multiple == 1:
        return store.tf_dataset(samples, config.batch_size, shuffle=shuffle, seed=config.seed, repeat=repeat)
    return store.py_dataset(samples, config.batch_size, shuffle=shuffle, seed=config.seed, repeat=repeat,
                            multiple=multiple)


def _finished_run(run_dir, name, splits, config):
    """The result of a run that already finished (`--resume` on it): its model, metrics and history."""
    best = load_model(run_dir / "best.keras")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    with open(run_dir / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    hist = {k: [float(r[k]) for r in rows] for k in (rows[0] if rows else {}) if k != "epoch"}
    if config.verbose:
        print(f"{name}: already finished (test Dice {metrics['test']['mean_dice']:.4f}) -> {run_dir}")
    return TrainResult(run_dir, metrics, hist, best, splits, resumed="finished")


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


class DashboardMissingWarning(UserWarning):
    """Training ran without the Segmentation dashboard package, so TensorBoard shows no test images."""


def _log_test_predictions(run_dir, samples, x, y, predictions, dice, hist, config):
    """Every test image's prediction and Dice into the Segmentation dashboard (`<run>/logs/test`, by
    diagnosis when healthy-only, images shared under `<out_dir>/_test_images`) at the last epoch's step.

    Returns the record `lung_keras.compare` extends with its other test sets, or None without the plugin.
    """
    from lung_keras.callbacks import test_predictions

    if not samples:
        return None
    if not test_predictions.dashboard_available():
        warnings.warn(
            "The Segmentation dashboard package (lung-keras-tb) is not installed, so no test images are logged for "
            "TensorBoard; install it with `pip install 'lung_keras[tensorboard]'` (or `pip install "
            "tensorboard_plugins/lung_keras_tb` from a checkout).",
            DashboardMissingWarning,
            stacklevel=3,
        )
        return None
    epochs = max((len(v) for v in hist.values()), default=1)
    return test_predictions.log_test_split(
        run_dir / "logs", samples, x, y, predictions, dice, step=max(epochs - 1, 0),
        by_diagnosis=config.healthy_only, shared_dir=test_predictions.shared_images_dir(config.out_dir),
    )


def _plot_curves(run_dir):
    try:
        from lung_keras.viz import plot_history
    except ImportError:
        return None
    return plot_history(str(run_dir / "history.csv"), path=str(run_dir / "curves.png"))


def evaluate(model_path, data_dir, out_dir, image_size=None, threshold=0.5, batch_size=16, skip_invalid=False,
             binarize_threshold=None, cache="auto", cache_dir=None, workers=None):
    """Score a saved model on every pair of a dataset folder.

    Writes `per_image.csv` (id, diagnosis, dice, iou, accuracy, dice_postprocessed) and `summary.json` (n,
    mean, median, standard deviation, mean after post-processing, and mean per diagnosis) into `out_dir`;
    returns the summary dict. Post-processing (`lung_keras.postprocess`: two largest connected components,
    holes filled) is reported beside the raw Dice, never instead of it. `cache`, `cache_dir` and `workers` are
    `lung_keras.data.build_store`'s.
    """
    model = load_model(model_path)
    if image_size is None:
        h, w = model.input_shape[1:3]
        if h is None or w is None:
            raise ValueError(f"{model_path}: the model accepts any size; pass image_size=(height, width).")
        image_size = (h, w)
    elif isinstance(image_size, int):
        image_size = (image_size, image_size)
    # Each file is decoded once, in parallel, checked on the way; large sets go through the disk cache.
    store = lk_data.build_store(data_dir, image_size, channels=model.input_shape[-1], cache=cache,
                                cache_dir=cache_dir, workers=workers, skip_invalid=skip_invalid,
                                binarize_threshold=binarize_threshold)
    dataset = store.dataset
    rows = []
    for chunk, x, y in store.iter_arrays(chunk=64):
        pred = model.predict(x, batch_size=batch_size, verbose=0)
        dice, iou, acc = score_predictions(y, pred, threshold)
        dice_pp = score_predictions(y, postprocess_masks(pred, threshold))[0]
        rows += [
            {"id": s.id, "diagnosis": s.diagnosis, "dice": float(d), "iou": float(j), "accuracy": float(a),
             "dice_postprocessed": float(dp)}
            for s, d, j, a, dp in zip(chunk, dice, iou, acc, dice_pp)
        ]
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(out_dir / "per_image.csv", rows)
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
        # The same predictions after post-processing (two largest components kept, holes filled).
        "mean_dice_postprocessed": float(np.mean([r["dice_postprocessed"] for r in rows])),
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
