"""`lung-keras` command line: train, evaluate, data check/download, augment, preview, compare."""

import argparse
import pathlib
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
        **({} if args.normalization is None else {"normalization": args.normalization}),
        seed=args.seed,
        split_seed=args.split_seed,
        healthy_only=args.healthy_only,
        train_size=args.train_size,
        policy=args.policy,
        skip_invalid=args.skip_invalid,
        binarize_threshold=args.binarize_threshold,
        verbose=0 if args.quiet else 1,
    )
    train(config, resume=args.resume, overwrite=args.overwrite)
    return 0


def _cmd_evaluate(args):
    from lung_keras.train import evaluate

    size = None if args.image_size is None else (args.image_size, args.image_size)
    summary = evaluate(args.model, args.data, args.out, size, args.threshold, skip_invalid=args.skip_invalid,
                       binarize_threshold=args.binarize_threshold)
    print(
        f"{summary['n']} images: mean Dice {summary['mean_dice']:.4f} (median {summary['median_dice']:.4f}), "
        f"mean IoU {summary['mean_iou']:.4f}; after post-processing mean Dice "
        f"{summary['mean_dice_postprocessed']:.4f} -> {args.out}"
    )
    return 0


def _cmd_data_check(args):
    from lung_keras.data import check_dataset

    report = check_dataset(args.dir, pixel_checks=not args.pairs_only, binarize_threshold=args.binarize_threshold)
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
    _add_normalization_option(p)
    p.add_argument("--seed", type=int, default=0, help="seed of weights, shuffling and augmentation")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the train/val/test split")
    p.add_argument("--healthy-only", action="store_true", help="train and validate on `normal` cases only; every abnormal case becomes test data")
    p.add_argument("--train-size", type=int, help="use only this many training images (small-data regime)")
    p.add_argument("--policy", help="augmentation policy file (Albumentations JSON/YAML or lung_keras)")
    p.add_argument("--skip-invalid", action="store_true", help="leave out bad pairs with a warning")
    _add_binarize_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--resume", action="store_true",
                   help="continue the run folder --out/--name from its last complete epoch (same settings)")
    p.add_argument("--overwrite", action="store_true", help="delete an existing run folder of that name first")


def _add_binarize_option(p):
    p.add_argument("--binarize-threshold", type=float, metavar="FRACTION",
                   help="accept soft masks (more than two levels): lung where the value is above this fraction of "
                        "the full range, e.g. 0.5 (default: soft masks are errors; two-level masks: nonzero is lung)")


def _add_normalization_option(p):
    # Choices are checked by TrainConfig (lung_keras.preprocessing.MODES), so --help imports no Keras.
    p.add_argument("--normalization", metavar="{none,standardize,percentile,equalize}",
                   help="per-image intensity normalization inside the model, saved with it "
                        "(default: TrainConfig's, see README)")


def _cmd_augment(args):
    from lung_keras.augment.offline import expand_dataset

    try:
        manifest = expand_dataset(
            args.data,
            args.out,
            copies=args.copies,
            policy=args.policy,
            seed=args.seed,
            force=args.force,
            progress=not args.quiet,
        )
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        print(f"lung-keras augment: error: {e}", file=sys.stderr)
        return 2
    print(f"Wrote {manifest}")
    return 0


def _cmd_preview(args):
    from lung_keras.augment.offline import preview

    try:
        path = preview(
            args.policy,
            args.data,
            args.out,
            num_samples=args.samples,
            num_draws=args.draws,
            seed=args.seed,
        )
    except (FileNotFoundError, ValueError) as e:
        print(f"lung-keras preview: error: {e}", file=sys.stderr)
        return 2
    print(f"Wrote {path}")
    return 0


def _cmd_compare(args):
    from lung_keras.compare import CompareConfig
    from lung_keras.compare import run_comparison

    kwargs = dict(
        data=args.data,
        out=args.out,
        policy=args.policy,
        seeds=args.seeds,
        epochs=args.epochs,
        train_sizes=tuple(s.strip() for s in args.train_sizes.split(",") if s.strip()),
        healthy_only=args.healthy_only,
        extra_test=tuple(args.extra_test),
        flip_ablation=not args.no_flip_ablation,
        ablate=args.ablate,
        arms=tuple(args.arms or ()),
        **({} if args.normalization is None else {"normalization": args.normalization}),
        postprocess=not args.no_postprocess,
        image_size=args.image_size,
        batch_size=args.batch_size,
        split_seed=args.split_seed,
        skip_invalid=args.skip_invalid,
        resume=args.resume,
        overwrite=args.overwrite,
    )
    if args.quick:
        kwargs.update(seeds=2, epochs=3, image_size=64, subset=36, base_filters=4, depth=3)
    results = run_comparison(CompareConfig(**kwargs))
    for note in results["notes"]:
        print(note)
    print(f"report: {pathlib.Path(args.out) / 'report.md'}")
    return 0


def _add_augment_commands(subparsers):
    p = subparsers.add_parser(
        "augment",
        help="write augmented copies of a dataset (images, masks, manifest.csv with sampled parameters)",
        description="Expand a dataset on disk: COPIES augmented image/mask pairs per source pair, drawn from a "
        "policy file (A.save JSON/YAML or Keras config JSON), with a manifest of the sampled parameters.",
    )
    p.add_argument("--data", required=True, help="dataset folder (images/ + masks/, or the NLM layout)")
    p.add_argument("--out", required=True, help="output folder (must be empty unless --force)")
    p.add_argument("--copies", type=int, default=1, help="augmented copies per pair (default 1)")
    p.add_argument("--policy", required=True, help="policy file: A.save JSON/YAML or Keras config JSON")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--force", action="store_true", help="write into a non-empty output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_augment)

    q = subparsers.add_parser(
        "preview",
        help="write a grid PNG of a policy's draws on a few samples, with mask contours",
    )
    q.add_argument("--policy", required=True, help="policy file: A.save JSON/YAML or Keras config JSON")
    q.add_argument("--data", required=True, help="dataset folder")
    q.add_argument("--out", default="augment_preview.png", help="PNG to write (default augment_preview.png)")
    q.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    q.add_argument("--samples", type=int, default=4, help="rows: samples shown (default 4)")
    q.add_argument("--draws", type=int, default=6, help="columns: draws per sample (default 6)")
    q.set_defaults(func=_cmd_preview)


def _add_compare_command(subparsers):
    p = subparsers.add_parser("compare", help="train on original vs augmented data and report the difference")
    p.add_argument("--data", help="dataset folder (default: $LUNG_KERAS_DATA, else the cached Montgomery set)")
    p.add_argument("--out", default="runs/compare", help="output folder (default: runs/compare)")
    p.add_argument("--policy", help="augmentation policy file (Albumentations JSON/YAML or lung_keras)")
    p.add_argument("--seeds", type=int, default=3, help="training seeds per arm (default 3)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--train-sizes", default="all", help="comma-separated sizes, e.g. 10,20,all (default all)")
    p.add_argument("--healthy-only", action="store_true",
                   help="train and validate on normal cases; test held-out normal and all abnormal cases separately")
    p.add_argument("--extra-test", action="append", default=[], metavar="DIR",
                   help="another dataset folder to test on (repeatable)")
    p.add_argument("--no-flip-ablation", action="store_true", help="skip the augmented+flip ablation arm")
    p.add_argument("--ablate", action="store_true",
                   help="add one leave-one-out arm per transform of the policy and report what each transform changes")
    p.add_argument("--arms", nargs="+", metavar="FILE",
                   help="compare these named policy files (arm name = file stem) against the baseline "
                        "instead of --policy; the first is the headline comparison")
    _add_normalization_option(p)
    p.add_argument("--no-postprocess", action="store_true",
                   help="do not also report Dice after post-processing (two largest components, holes filled)")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--skip-invalid", action="store_true")
    p.add_argument("--resume", action="store_true",
                   help="continue a killed comparison in --out: finished runs are reused, a killed run continues")
    p.add_argument("--overwrite", action="store_true", help="delete an existing --out folder first")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 24 cases at 64x64, 2 seeds, 3 epochs, small U-Net (numbers mean nothing)")
    p.set_defaults(func=_cmd_compare)


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
    _add_binarize_option(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("data", help="dataset utilities")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    c = data_sub.add_parser("check", help="list every problem in a dataset folder; exit 1 if any is fatal")
    c.add_argument("dir")
    c.add_argument("--pairs-only", action="store_true", help="check pairing only, do not decode files")
    _add_binarize_option(c)
    c.set_defaults(func=_cmd_data_check)
    d = data_sub.add_parser("download", help="download and convert the NLM Montgomery set")
    d.add_argument("--dest", help="target folder (default: the cache folder)")
    d.add_argument("--url", help="archive URL (default: NLM's public archive)")
    d.set_defaults(func=_cmd_data_download)

    _add_augment_commands(sub)
    _add_compare_command(sub)
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
