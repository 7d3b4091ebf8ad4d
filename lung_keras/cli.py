"""`lung-keras` command line: train, evaluate, data check/download, augment, preview, compare."""

import argparse
import sys


def _cmd_train(args):
    from lung_keras.train import TrainConfig
    from lung_keras.train import train

    config = TrainConfig(
        data=args.data,
        out_dir=args.out,
        name=args.name,
        image_size=args.image_size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        lr_schedule=args.lr_schedule,
        base_filters=args.base_filters,
        depth=args.depth,
        momentum=args.momentum,
        loss=args.loss,
        seed=args.seed,
        split_seed=args.split_seed,
        healthy_only=args.healthy_only,
        train_size=args.train_size,
        policy=args.policy,
        skip_invalid=args.skip_invalid,
        verbose=0 if args.quiet else 1,
    )
    train(config)
    return 0


def _cmd_evaluate(args):
    from lung_keras.train import evaluate

    size = None if args.image_size is None else (args.image_size, args.image_size)
    summary = evaluate(args.model, args.data, args.out, size, args.threshold, skip_invalid=args.skip_invalid)
    print(
        f"{summary['n']} images: mean Dice {summary['mean_dice']:.4f} (median {summary['median_dice']:.4f}), "
        f"mean IoU {summary['mean_iou']:.4f} -> {args.out}"
    )
    return 0


def _cmd_data_check(args):
    from lung_keras.data import check_dataset

    report = check_dataset(args.dir, pixel_checks=not args.pairs_only)
    print(report.format())
    return 1 if report.fatal else 0


def _cmd_data_download(args):
    from lung_keras.data import download_montgomery

    path = download_montgomery(args.dest, url=args.url)
    print(f"Montgomery set ready in {path}; use it with --data {path} or LUNG_KERAS_DATA={path}")
    return 0


def _add_train_options(p):
    p.add_argument("--data", help="dataset folder (default: $LUNG_KERAS_DATA, else the cached Montgomery set)")
    p.add_argument("--out", default="runs", help="parent folder of run folders (default: runs)")
    p.add_argument("--name", help="run name (default: unet-<timestamp>)")
    p.add_argument("--image-size", type=int, default=128, help="square size images are resized to (default 128)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--lr-schedule", default="cosine", choices=["constant", "cosine"],
                   help="constant learning rate, or cosine decay to 5%% over the run")
    p.add_argument("--base-filters", type=int, default=16)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--momentum", type=float, default=0.9, help="BatchNormalization momentum (default 0.9)")
    p.add_argument("--loss", default="bce_dice", choices=["bce_dice", "dice", "bce"])
    p.add_argument("--seed", type=int, default=0, help="seed of weights, shuffling and augmentation")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the train/val/test split")
    p.add_argument("--healthy-only", action="store_true", help="train and validate on `normal` cases only; every abnormal case becomes test data")
    p.add_argument("--train-size", type=int, help="use only this many training images (small-data regime)")
    p.add_argument("--policy", help="augmentation policy file (Albumentations JSON/YAML or lung_keras)")
    p.add_argument("--skip-invalid", action="store_true", help="leave out bad pairs with a warning")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser():
    parser = argparse.ArgumentParser(prog="lung-keras", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a U-Net and write a run folder")
    _add_train_options(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="score a saved model on a dataset folder")
    p.add_argument("--model", required=True, help="a .keras model file")
    p.add_argument("--data", required=True, help="dataset folder (NLM or images/ + masks/ layout)")
    p.add_argument("--out", default="evaluation", help="output folder (default: evaluation)")
    p.add_argument("--image-size", type=int, help="resize to this square size (default: the model's input size)")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--skip-invalid", action="store_true")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("data", help="dataset utilities")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    c = data_sub.add_parser("check", help="list every problem in a dataset folder; exit 1 if any is fatal")
    c.add_argument("dir")
    c.add_argument("--pairs-only", action="store_true", help="check pairing only, do not decode files")
    c.set_defaults(func=_cmd_data_check)
    d = data_sub.add_parser("download", help="download and convert the NLM Montgomery set")
    d.add_argument("--dest", help="target folder (default: the cache folder)")
    d.add_argument("--url", help="archive URL (default: NLM's public archive)")
    d.set_defaults(func=_cmd_data_download)

    for module in ("lung_keras.augment.commands", "lung_keras.compare"):
        try:
            mod = __import__(module, fromlist=["add_commands"])
        except ImportError:
            continue
        mod.add_commands(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"lung-keras {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
