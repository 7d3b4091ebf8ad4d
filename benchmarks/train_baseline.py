"""Baseline U-Net on Montgomery at 128x128, seeded 70/15/15 split: quality and speed of the default config.

Prints mean per-image test Dice, wall time until validation Dice first reaches 0.95, total wall time and
training images/s. Usage: `python benchmarks/train_baseline.py [--data DIR] [--epochs 40] [--seeds 0]`.
"""

import argparse
import os
import statistics
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    from lung_keras.train import TrainConfig
    from lung_keras.train import train

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=None)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds")
    parser.add_argument("--out", default=None, help="run folder parent (default: a temporary folder)")
    args = parser.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="lung_keras_bench_")
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        config = TrainConfig(data=args.data, out_dir=out, name=f"baseline-seed{seed}", epochs=args.epochs,
                             seed=seed, verbose=0)
        m = train(config)["metrics"]
        rows.append(m)
        t95 = m["seconds_to_val_dice_0.95"]
        print(
            f"seed {seed}: test Dice {m['test']['mean_dice']:.4f} (n={m['test']['n']}), "
            f"time to val Dice 0.95 {'never' if t95 is None else f'{t95:.0f}s'}, total {m['train_seconds']:.0f}s, "
            f"{m['train_images_per_second']:.1f} train img/s, best epoch {m['best_epoch']}"
        )
    if len(rows) > 1:
        print(
            f"median over {len(rows)} seeds: test Dice {statistics.median(r['test']['mean_dice'] for r in rows):.4f}, "
            f"total {statistics.median(r['train_seconds'] for r in rows):.0f}s"
        )
    print(f"runs in {out}")


if __name__ == "__main__":
    main()
