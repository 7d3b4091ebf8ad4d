"""`lung-keras augment` and `lung-keras preview` subcommands (registered by `lung_keras.cli`)."""

import sys


def _augment(args):
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


def _preview(args):
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


def add_commands(subparsers):
    """Add `augment` and `preview` to an argparse subparsers object; each sets `func(args) -> exit code`."""
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
    p.set_defaults(func=_augment)

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
    q.set_defaults(func=_preview)
    return subparsers
