"""Writes Segmentation-dashboard logs from a tiny real Keras training run (shared by the route and e2e tests)."""

import pathlib

import numpy as np
from PIL import Image

from lung_keras_tb import summary

SIZE = 64
N_SAMPLES = 8


def load_samples(data_dir, n=N_SAMPLES, size=SIZE):
    """First `n` Montgomery pairs, resized: images float32 (n,size,size,1) in [0,1], masks {0,1}."""
    data_dir = pathlib.Path(data_dir)
    names = sorted(p.name for p in (data_dir / "images").glob("*.png"))[:n]
    images, masks = [], []
    for name in names:
        img = Image.open(data_dir / "images" / name).convert("L").resize((size, size), Image.BILINEAR)
        msk = Image.open(data_dir / "masks" / name).convert("L").resize((size, size), Image.NEAREST)
        images.append(np.asarray(img, np.float32) / 255.0)
        masks.append((np.asarray(msk) > 127).astype(np.float32))
    ids = [pathlib.Path(n).stem for n in names]
    return np.stack(images)[..., None], np.stack(masks)[..., None], ids


def dice_per_sample(masks, probs, threshold=0.5):
    """Dice of thresholded predictions per sample; 1.0 when both are empty."""
    t = masks.reshape(len(masks), -1) > 0.5
    p = probs.reshape(len(probs), -1) >= threshold
    inter = (t & p).sum(1)
    denom = t.sum(1) + p.sum(1)
    return np.where(denom == 0, 1.0, 2.0 * inter / np.maximum(denom, 1))


def _with_coords(images):
    """Appends y/x coordinate channels so two conv layers can learn where lungs are."""
    n, h, w, _ = images.shape
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    coords = np.broadcast_to(np.stack([yy, xx], -1)[None], (n, h, w, 2)).astype(np.float32)
    return np.concatenate([images, coords], -1)


def train_and_log(logdir, run, images, masks, ids, epochs=2, seed=0, augment=False):
    """Fits a 2-conv-layer model and logs every epoch's predictions to `logdir/run`.

    Each epoch sees the 8 images 8 times (16 batches of 4), enough for the Dice to
    go from about 0 after epoch 0 to 0.4-0.7 after epoch 1. Returns
    {epoch: dice array} as logged.
    """
    import keras

    keras.utils.set_random_seed(seed)
    x, y = images, masks
    if augment:  # horizontal flips as a crude "augmented" run
        x = np.concatenate([x, x[:, :, ::-1]])
        y = np.concatenate([y, y[:, :, ::-1]])
    reps = 64 // len(x)
    x_fit = np.tile(_with_coords(x), (reps, 1, 1, 1))
    y_fit = np.tile(y, (reps, 1, 1, 1))
    x_log = _with_coords(images)
    model = keras.Sequential([
        keras.Input((images.shape[1], images.shape[2], 3)),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.03), loss="binary_crossentropy")
    logged = {}
    writer = summary.SegmentationWriter(pathlib.Path(logdir) / run)

    class _Log(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            probs = np.asarray(self.model.predict(x_log, verbose=0))
            dice = dice_per_sample(masks, probs)
            writer.write(epoch, images, masks, probs, ids, dice)
            writer.flush()
            logged[epoch] = dice

    try:
        model.fit(x_fit, y_fit, batch_size=4, epochs=epochs, verbose=0, callbacks=[_Log()])
    finally:
        writer.close()
    return logged


def write_demo_logs(logdir, data_dir, epochs=2):
    """Two real runs, 'baseline' and 'augmented', on the same sample ids."""
    images, masks, ids = load_samples(data_dir)
    return {
        "ids": ids,
        "baseline": train_and_log(logdir, "baseline", images, masks, ids, epochs, seed=0),
        "augmented": train_and_log(logdir, "augmented", images, masks, ids, epochs, seed=1, augment=True),
    }


_CACHE = {}


def cached_demo_logs(tmp_path_factory, data_dir):
    """`write_demo_logs` once per test session; returns (logdir, result)."""
    key = str(data_dir)
    if key not in _CACHE:
        logdir = tmp_path_factory.mktemp("seg_demo_logs")
        _CACHE[key] = (logdir, write_demo_logs(logdir, data_dir))
    return _CACHE[key]


def make_provider(logdir):
    """A fresh multiplexer-backed data provider over `logdir` (keeps every step)."""
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.backend.event_processing import plugin_event_multiplexer

    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        size_guidance={event_accumulator.TENSORS: 0}
    )
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    return data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
