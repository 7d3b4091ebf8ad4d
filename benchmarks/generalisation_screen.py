"""Screen normalization modes and augmentation policies for cross-hospital generalisation.

Trains the default U-Net on the healthy (normal) Montgomery training cases only, exactly as `make demo` does
(healthy-only split, 30 epochs, checkpoint chosen on normal validation cases), once per candidate and seed,
and scores the best checkpoint on Montgomery's held-out normal and tuberculosis cases and on every
`--extra-test` folder (another hospital; never used for training or selection). Appends one JSON line per run
to `--out` and prints a table of means and seed SDs.

    python benchmarks/generalisation_screen.py --data ../shared/data/montgomery_cxr \\
        --extra-test ../shared/data/shenzhen_dev --candidates default:none,default:equalize --seeds 0,1,2

A candidate is `POLICY:NORMALIZATION`; POLICY is a name in `POLICIES` (or `none` for no augmentation).
"""

import argparse
import json
import pathlib
import sys
import tempfile
import time

import numpy as np


def policies():
    from lung_keras import augment
    from lung_keras.compare import default_policy

    def geometric():
        return [
            augment.Affine(scale=(0.85, 1.15), translate_percent=(-0.06, 0.06), rotate=(-10, 10), shear=(-5, 5),
                           p=0.7),
        ]

    return {
        "none": lambda: None,
        "default": lambda: default_policy(),  # whatever the default is now
        # the default policy before this study
        "legacy": lambda: augment.Compose([
            augment.Rotate(limit=10, p=0.7),
            augment.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.7),
            augment.GaussNoise(std_range=(0.01, 0.04), p=0.5),
        ]),
        # the default since this study (identical to `default_policy()`)
        "strong": lambda: augment.Compose([
            *geometric(),
            augment.RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=0.3, p=0.7),
            augment.RandomGamma(gamma_limit=(70, 150), p=0.5),
            augment.GaussianBlur(sigma_limit=(0.3, 1.2), p=0.2),
            augment.GaussNoise(std_range=(0.01, 0.04), p=0.5),
        ]),
        "affine": lambda: augment.Compose([
            *geometric(),
            augment.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.7),
            augment.GaussNoise(std_range=(0.01, 0.04), p=0.5),
        ]),
        "zoom": lambda: augment.Compose([
            augment.Affine(scale=(0.7, 1.1), translate_percent=(-0.08, 0.08), rotate=(-10, 10), p=0.8),
            augment.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.7),
            augment.GaussNoise(std_range=(0.01, 0.04), p=0.5),
        ]),
        "zoom_photo": lambda: augment.Compose([
            augment.Affine(scale=(0.7, 1.1), translate_percent=(-0.08, 0.08), rotate=(-10, 10), p=0.8),
            augment.RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=0.3, p=0.7),
            augment.RandomGamma(gamma_limit=(60, 160), p=0.5),
            augment.GaussianBlur(sigma_limit=(0.3, 1.2), p=0.2),
            augment.GaussNoise(std_range=(0.01, 0.04), p=0.5),
        ]),
        "strong_drop": lambda: augment.Compose([
            *geometric(),
            augment.RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=0.3, p=0.7),
            augment.RandomGamma(gamma_limit=(70, 150), p=0.5),
            augment.GaussianBlur(sigma_limit=(0.3, 1.2), p=0.2),
            augment.CoarseDropout(num_holes_range=(1, 4), hole_height_range=(0.05, 0.2),
                                  hole_width_range=(0.05, 0.2), fill="random_uniform", p=0.5),
            augment.GaussNoise(std_range=(0.01, 0.04), p=0.5),
        ]),
        "photometric": lambda: augment.Compose([
            augment.Rotate(limit=10, p=0.7),
            augment.RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=0.3, p=0.7),
            augment.RandomGamma(gamma_limit=(70, 150), p=0.5),
            augment.GaussianBlur(sigma_limit=(0.3, 1.2), p=0.2),
            augment.GaussNoise(std_range=(0.01, 0.04), p=0.5),
        ]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--extra-test", action="append", default=[])
    parser.add_argument("--candidates", required=True, help="comma-separated POLICY:NORMALIZATION")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default="runs/generalisation_screen.jsonl")
    parser.add_argument("--keep", help="folder to save each run's best model in")
    args = parser.parse_args(argv)

    from lung_keras import data as lk_data
    from lung_keras.compare import _reseeded
    from lung_keras.postprocess import postprocess_masks
    from lung_keras.train import TrainConfig
    from lung_keras.train import score_predictions
    from lung_keras.train import train

    dataset = lk_data.load_dataset(args.data)
    extra = [(pathlib.Path(p).name, lk_data.load_dataset(p)) for p in args.extra_test]
    table = policies()
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.keep:
        pathlib.Path(args.keep).mkdir(parents=True, exist_ok=True)
    cache = {}
    for candidate in args.candidates.split(","):
        policy_name, normalization = candidate.split(":")
        for seed in (int(s) for s in args.seeds.split(",")):
            policy = table[policy_name]()
            if policy is not None:
                policy = _reseeded(policy, seed)
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                config = TrainConfig(out_dir=tmp, name="run", epochs=args.epochs, seed=seed, healthy_only=True,
                                     normalization=normalization, verbose=0, display_samples=0)
                result = train(config, dataset=dataset, policy=policy)
            model, splits = result["model"], result["splits"]
            sets = [(f"test ({d})", [s for s in splits.test if s.diagnosis == d]) for d in ("normal", "abnormal")]
            sets += [(name, ds.samples) for name, ds in extra]
            row = {"candidate": candidate, "seed": seed, "seconds": time.perf_counter() - t0,
                   "best_epoch": result["metrics"]["best_epoch"]}
            for name, samples in sets:
                key = (name, len(samples))
                if key not in cache:
                    cache[key] = lk_data.load_arrays(samples, config.size)
                x, y = cache[key]
                pred = model.predict(x, batch_size=16, verbose=0)
                dice, _, _ = score_predictions(y, pred)
                row[name] = float(np.mean(dice))
                row[f"{name} post"] = float(np.mean(score_predictions(y, postprocess_masks(pred))[0]))
                row.setdefault("per_image", {})[name] = [round(float(d), 4) for d in dice]
            if args.keep:
                model.save(pathlib.Path(args.keep) / f"{candidate.replace(':', '_')}_seed{seed}.keras")
            with open(out, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    summarize(out)


def summarize(path):
    rows = [json.loads(line) for line in open(path)]
    sets = [k for k in rows[0] if k not in ("candidate", "seed", "seconds", "best_epoch", "per_image")]
    print("| candidate | seeds | " + " | ".join(f"{s} mean (SD)" for s in sets) + " |", file=sys.stdout)
    print("| --- " * (len(sets) + 2) + "|")
    for cand in dict.fromkeys(r["candidate"] for r in rows):
        mine = [r for r in rows if r["candidate"] == cand]
        cells = []
        for s in sets:
            v = np.array([r[s] for r in mine if s in r])
            cells.append(f"{v.mean():.4f} ({v.std(ddof=1) if len(v) > 1 else float('nan'):.4f})")
        print(f"| {cand} | {','.join(str(r['seed']) for r in mine)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
