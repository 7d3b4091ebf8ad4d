"""Bytes the Segmentation dashboard's test-set log adds per training run, with and without shared images.

Takes the first `--images` Montgomery pairs at `--size`, gets predictions (a saved model's with `--model`,
else a small U-Net trained here for `--epochs`, else with `--stand-in` the true masks blurred into
probability maps), and logs them as `lung_keras.callbacks.log_test_predictions` does at the end of a run,
for `--runs` runs:

  - self-contained (format v1): every run stores image, mask and prediction PNGs;
  - shared (format v2, what `train` and `compare` write): the images and masks once per test set under
    `_test_images/`, each run only its prediction PNGs and Dice.

Prints the mean PNG bytes per image of each kind, the bytes per run both ways, the shared store, and the
totals for `--runs` runs.

Usage:
    .venv/bin/python benchmarks/dashboard_storage.py                         # trains a small model (~minutes)
    .venv/bin/python benchmarks/dashboard_storage.py --model runs/x/best.keras
    .venv/bin/python benchmarks/dashboard_storage.py --stand-in --runs 9
"""

import argparse
import pathlib
import sys
import tempfile

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="dataset folder (default: $LUNG_KERAS_DATA or ../shared/data/...)")
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--runs", type=int, default=9, help="runs predicting the same test set (make demo: 3 arms x 3)")
    p.add_argument("--model", default=None, help="a saved .keras model to predict with")
    p.add_argument("--epochs", type=int, default=3, help="epochs of the small U-Net trained when no --model")
    p.add_argument("--stand-in", action="store_true", help="no model: blurred true masks as probabilities")
    return p.parse_args(argv)


def _predictions(args, dataset, x, y):
    if args.stand_in:
        from scipy.ndimage import gaussian_filter

        return np.stack([gaussian_filter(m[..., 0], 1.5)[..., None] for m in y]), "blurred true masks (stand-in)"
    from lung_keras import load_model

    if args.model:
        return np.asarray(load_model(args.model).predict(x, verbose=0)), f"model {args.model}"
    from lung_keras.train import TrainConfig
    from lung_keras.train import train

    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(out_dir=tmp, name="storage", image_size=args.size, epochs=args.epochs,
                             base_filters=8, depth=3, display_samples=0, verbose=0)
        result = train(config, dataset=dataset)
        pred = np.asarray(result["model"].predict(x, verbose=0))
        label = f"U-Net (8 filters, depth 3) after {args.epochs} epochs, test Dice {result['metrics']['test']['mean_dice']:.3f}"
    return pred, label


def _bytes(folder):
    return sum(p.stat().st_size for p in pathlib.Path(folder).rglob("*") if p.is_file())


def main(argv=None):
    args = parse_args(argv)
    from lung_keras import data as lk_data
    from lung_keras.callbacks import log_test_predictions
    from lung_keras.callbacks.display_callback import foreground_probability
    from lung_keras.train import score_predictions
    from lung_keras_tb import summary

    default = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "montgomery_cxr"
    root = args.data or (None if not default.is_dir() else default)
    dataset = lk_data.load_dataset(lk_data.resolve_data_dir(root, download=False), pixel_checks=False)
    samples = sorted(dataset.samples, key=lambda s: s.id)[: args.images]
    x, y = lk_data.load_arrays(samples, (args.size, args.size))
    pred, label = _predictions(args, dataset, x, y)
    dice, _, _ = score_predictions(y, pred)
    ids = [s.id for s in samples]

    blobs = summary.segmentation_blobs(x, y, foreground_probability(pred), ids, dice)
    per_kind = np.array([len(b) for b in blobs[1:]]).reshape(-1, 3).mean(axis=0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for r in range(args.runs):
            log_test_predictions(tmp / "own" / f"run{r}" / "logs", "test", x, y, pred, ids, dice, step=0)
            log_test_predictions(tmp / "shared" / f"run{r}" / "logs", "test", x, y, pred, ids, dice, step=0,
                                 shared_dir=tmp / "shared" / "_test_images")
        own_run = _bytes(tmp / "own" / "run0")
        shared_run = _bytes(tmp / "shared" / "run0")
        store = _bytes(tmp / "shared" / "_test_images")

    print(f"{len(ids)} images at {args.size}x{args.size}; predictions: {label}")
    print(f"mean PNG bytes per image: image {per_kind[0]:.0f}, mask {per_kind[1]:.0f}, "
          f"prediction {per_kind[2]:.0f} (256 levels, v1; v2 stores {summary.PREDICTION_LEVELS} levels)")
    print(f"bytes added per run, self-contained (v1): {own_run:,}")
    print(f"bytes added per run, shared images (v2):  {shared_run:,}  ({shared_run / own_run:.0%} of v1)")
    print(f"shared images and masks, once per test set: {store:,}")
    print(f"{args.runs} runs: v1 {args.runs * own_run:,} bytes, v2 {args.runs * shared_run + store:,} bytes "
          f"({(args.runs * shared_run + store) / (args.runs * own_run):.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
