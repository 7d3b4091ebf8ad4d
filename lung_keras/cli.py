"""`lung-keras` command line: train, evaluate, data check/download, augment, preview, compare.

Conventions shared by every command: `--quiet` (no progress, only results and errors) and `--verbose`
(also TensorFlow's start-up log lines, hidden otherwise); progress bars only when stdout is a terminal
(one plain line per epoch otherwise, no ANSI codes); `--json` on `evaluate`, `data check` and `compare`
prints a machine-readable summary on stdout (progress goes to stderr); `--help` shows every default.

One module, a little over 500 lines: each command's parser beside the few lines that read its options and
call the library, so an option and its use stay together; the work itself lives in the library modules.
"""

import argparse
import contextlib
import dataclasses
import json
import os
import pathlib
import re
import sys
import tempfile
import time

from lung_keras._io import json_safe

# C++ log lines TensorFlow and its libraries print while loading (absl format, e.g.
# "I0000 00:00:1796153494.657436   13261 port.cc:153] oneDNN custom operations are on..."), the absl
# pre-initialisation notice and the CPU-feature hint's continuation line.
_STARTUP_NOISE = re.compile(
    r"^([IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: .* rebuild TensorFlow)"
)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: X)" after each option's help, except for flags and options without a default."""

    def _get_help_string(self, action):
        help_text = action.help or ""
        if "default" in help_text or not action.option_strings or not _shows_default(action.default):
            return help_text
        return help_text + " (default: %(default)s)"


def _shows_default(default):
    return default is not None and default is not argparse.SUPPRESS and not isinstance(default, bool) and default != []


class _Parser(argparse.ArgumentParser):
    """Every (sub)command parser: defaults shown in --help, and `--quiet` / `--verbose` unless `add_common=False`."""

    def __init__(self, *args, add_common=True, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)
        if add_common:
            group = self.add_mutually_exclusive_group()
            group.add_argument("-q", "--quiet", action="store_true",
                               help="no progress output; only results and errors")
            group.add_argument("-v", "--verbose", action="store_true",
                               help="more output, including TensorFlow's start-up log lines (hidden otherwise)")

    def add_argument(self, *args, **kwargs):
        # An option without help text would hide its default (argparse formats help only when there is some).
        if not kwargs.get("help") and args and args[0].startswith("-") and _shows_default(kwargs.get("default")):
            kwargs["help"] = "(default: %(default)s)"
        return super().add_argument(*args, **kwargs)


def _progress_verbosity(args):
    """Keras `verbose`: 0 with --quiet, 1 (progress bar) on a terminal, else 2 (one plain line per epoch)."""
    if args.quiet:
        return 0
    return 1 if sys.stdout.isatty() else 2


@contextlib.contextmanager
def _startup_lines_hidden():
    """Runs the block with file descriptor 2 captured; replays what it wrote, except TF's start-up lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not _STARTUP_NOISE.match(line)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


def _load_backend(args):
    """Imports Keras (and its backend) up front; unless --verbose, TensorFlow's start-up lines are hidden."""
    if args.verbose:
        import keras  # noqa: F401
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ logs after start-up too (set before TF loads)
    with _startup_lines_hidden():
        import keras

        if getattr(args, "strategy", "none") != "none":
            # A strategy configures TensorFlow's devices and collectives, which must come before first use.
            from lung_keras.distribute import make_distribution

            make_distribution(args.strategy)
        keras.ops.convert_to_tensor(0.0)  # the backend's device set-up logs on first use


def _print_json(value):
    """Strict JSON on stdout: NaN and infinities (e.g. a CI from one seed) become null."""
    print(json.dumps(json_safe(value), indent=2, default=_json_default, allow_nan=False))


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _config_options(config_cls, args, exclude=("verbose",)):
    """The parsed options named like fields of the dataclass `config_cls`; an option left at None keeps the
    field's default (e.g. `--normalization`, whose default depends on the command)."""
    fields = {f.name for f in dataclasses.fields(config_cls)} - set(exclude)
    return {name: value for name, value in vars(args).items() if name in fields and value is not None}


def _cmd_train(args):
    from lung_keras.train import TrainConfig
    from lung_keras.train import train

    config = TrainConfig(**_config_options(TrainConfig, args), out_dir=args.out, verbose=_progress_verbosity(args))
    train(config, resume=args.resume, overwrite=args.overwrite)
    return 0


def _cmd_evaluate(args):
    from lung_keras.train import evaluate

    if args.method == "threshold":
        return _cmd_evaluate_ct(args)
    if args.model is None:
        raise ValueError("evaluate needs --model (a .keras file), or --method threshold for a CT.")
    size = None if args.image_size is None else (args.image_size, args.image_size)
    summary = evaluate(args.model, args.data, args.out, size, args.threshold, skip_invalid=args.skip_invalid,
                       binarize_threshold=args.binarize_threshold, cache=args.data_cache, cache_dir=args.cache_dir,
                       workers=args.workers)
    if args.json:
        _print_json({**summary, "out": str(args.out)})
        return 0
    print(
        f"{summary['n']} images: mean Dice {summary['mean_dice']:.4f} (median {summary['median_dice']:.4f}), "
        f"mean IoU {summary['mean_iou']:.4f}; after post-processing mean Dice "
        f"{summary['mean_dice_postprocessed']:.4f} -> {args.out}"
    )
    return 0


def _cmd_evaluate_ct(args):
    """`evaluate --method threshold`: the classical CT rule on a volume (+ mask) or a CT manifest folder."""
    from lung_keras.ct_eval import ct_cases
    from lung_keras.ct_eval import evaluate_threshold

    if args.model is not None:
        raise ValueError(f"--method threshold uses no model. Received: --model {args.model}")
    cases = ct_cases(args.data, args.mask, roi_pattern=args.roi_pattern, left_labels=_int_list(args.left_labels),
                     right_labels=_int_list(args.right_labels), low_byte=args.low_byte)
    summary = evaluate_threshold(cases, args.out, threshold=args.threshold_hu, missing_slices=args.missing_slices,
                                 rtstruct=args.rtstruct, verbose=not args.quiet and not args.json)
    if args.json:
        _print_json({**summary, "rows": [r.__dict__ for r in summary["rows"]]})
    elif not args.quiet:
        for method, s in summary["summary"].items():
            print(f"{s['n']} patient(s): {method} mean volume Dice {s['mean_dice']:.4f}")
        print(f"masks and scores -> {args.out}")
    return 0


def _int_list(text):
    return None if text is None else [int(v) for v in text.split(",") if v.strip()]


def _add_ct_evaluate_options(p):
    g = p.add_argument_group("CT (--method threshold)")
    g.add_argument("--mask", help="reference of a single CT: an RTSTRUCT file or a label map (not with a manifest)")
    g.add_argument("--threshold-hu", type=float, default=-320.0, help="air-like voxels are below this HU")
    g.add_argument("--roi-pattern", default="lung", help="RTSTRUCT ROI names to take (regular expression)")
    g.add_argument("--missing-slices", default="error", choices=["error", "skip"],
                   help="RTSTRUCT contours on slices absent from the series: error, or skip with a warning")
    g.add_argument("--left-labels", metavar="V,V", help="label-map values of the left lung, e.g. 9,10,11")
    g.add_argument("--right-labels", metavar="V,V", help="label-map values of the right lung, e.g. 12,13,14")
    g.add_argument("--low-byte", action="store_true", help="label map: use value & 0xFF (Chest Imaging Platform)")
    g.add_argument("--rtstruct", action="store_true",
                   help="also write each DICOM series' predicted mask as an RTSTRUCT referencing that series")


def _cmd_data_check(args):
    from lung_keras.data import check_ct
    from lung_keras.data import check_dataset
    from lung_keras.data import ct_layout

    if ct_layout(args.dir) is not None:  # a CT folder (manifest with `patient`), a DICOM series or a volume
        report = check_ct(args.dir, roi_pattern=args.roi_pattern, missing_slices=args.missing_slices)
    else:
        report = check_dataset(args.dir, pixel_checks=not args.pairs_only, binarize_threshold=args.binarize_threshold)
    if args.json:
        _print_json({
            "root": str(report.root),
            "layout": report.layout,
            "num_samples": report.num_samples,
            "num_valid": len(report.valid_samples),
            "ok": report.ok,
            "errors": len(report.fatal),
            "warnings": len(report.problems) - len(report.fatal),
            "problems": [{"path": p.path, "kind": p.kind, "detail": p.detail, "fatal": p.fatal}
                         for p in report.problems],
        })
    else:
        print(report.format())
    return 1 if report.fatal else 0


def _cmd_data_download(args):
    from lung_keras.data import download_montgomery

    path = download_montgomery(args.dest, url=args.url, progress=not args.quiet and sys.stderr.isatty())
    print(f"Montgomery set ready in {path}; use it with --data {path} or LUNG_KERAS_DATA={path}")
    return 0


def _add_train_options(p):
    p.add_argument("--data", help="dataset folder (default: $LUNG_KERAS_DATA, else the cached Montgomery set)")
    p.add_argument("--out", default="runs", help="parent folder of run folders")
    p.add_argument("--name", help="run name (default: unet-<timestamp>)")
    p.add_argument("--image-size", type=int, default=128, help="square size images are resized to")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--lr-schedule", default="cosine", choices=["constant", "cosine"],
                   help="constant learning rate, or cosine decay to 5%% over the run")
    p.add_argument("--base-filters", type=int, default=16)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--momentum", type=float, default=0.9, help="BatchNormalization momentum")
    p.add_argument("--loss", default="bce_dice", choices=["bce_dice", "dice", "bce"])
    _add_normalization_option(p)
    p.add_argument("--seed", type=int, default=0, help="seed of weights, shuffling and augmentation")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the train/val/test split")
    p.add_argument("--healthy-only", action="store_true", help="train and validate on `normal` cases only; every abnormal case becomes test data")
    p.add_argument("--train-size", type=int, help="use only this many training images (small-data regime)")
    p.add_argument("--policy", help="augmentation policy file (Albumentations JSON/YAML or lung_keras)")
    p.add_argument("--skip-invalid", action="store_true", help="leave out bad pairs with a warning")
    _add_binarize_option(p)
    p.add_argument("--resume", action="store_true",
                   help="continue the run folder --out/--name from its last complete epoch (same settings)")
    p.add_argument("--overwrite", action="store_true", help="delete an existing run folder of that name first")
    _add_scale_options(p)


def _add_scale_options(p):
    """Data cache and multi-device options of `train` and `compare` (see `lung_keras.distribute`)."""
    _add_cache_options(p)
    p.add_argument("--strategy", default="none", choices=["none", "mirrored", "multiworker", "data-parallel"],
                   help="several devices: mirrored (TensorFlow, all GPUs of this machine), multiworker (TensorFlow, "
                        "machines listed in TF_CONFIG), data-parallel (JAX); --batch-size is the global batch")
    p.add_argument("--augment-in", default="model", choices=["model", "pipeline"],
                   help="where the policy runs: in the model's train step (on the accelerator) or in the tf.data "
                        "input pipeline (TensorFlow; on the CPU, beside the accelerator)")


def _add_cache_options(p):
    """Where the decoded data set lives (see `lung_keras.data.build_store`)."""
    p.add_argument("--data-cache", default="auto", choices=["auto", "memory", "disk"],
                   help="keep the decoded set at the training size in memory, or in a disk cache reused by later "
                        "runs on the same files (auto: disk above 1 GiB of arrays)")
    p.add_argument("--cache-dir", help="parent folder of disk caches (default: $LUNG_KERAS_CACHE/arrays, else "
                                       "~/.cache/lung_keras/arrays)")
    p.add_argument("--workers", type=int, help="threads decoding files (default: one per CPU core)")


def _scale_kwargs(args):
    return {"data_cache": args.data_cache, "cache_dir": args.cache_dir, "workers": args.workers,
            "strategy": args.strategy, "augment_in": args.augment_in}


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
            progress=not args.quiet and sys.stdout.isatty(),
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
        **_scale_kwargs(args),
    )
    if args.quick:
        kwargs.update(seeds=2, epochs=3, image_size=64, subset=36, base_filters=4, depth=3)
    # Progress is printed here, one line per finished run with an ETA (compare's own lines are off).
    progress = None if args.quiet else _RunProgress()
    if progress:
        progress.announce()
    results = run_comparison(CompareConfig(**kwargs, verbose=0), progress=progress)
    out = pathlib.Path(args.out)
    if args.json:
        _print_json(_compare_summary(results, out))
        return 0
    for note in results["notes"]:
        print(note)
    print(f"report: {out / 'report.md'}")
    return 0


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class _RunProgress:
    """`compare` progress on stderr: after each run, its test Dice, its time, the elapsed time and an ETA.

    The ETA is the mean time per finished run (data loading included) times the runs left.
    """

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self.last = self.start

    def announce(self):
        print("compare: loading data, then one line per finished run (with an ETA)", file=self.stream, flush=True)

    def __call__(self, done, total, label, test_dice):
        now = time.perf_counter()
        elapsed = now - self.start
        eta = elapsed / done * (total - done)
        tail = f"ETA {_duration(eta)}" if done < total else "all runs done"
        print(f"[{done}/{total}] {label}: test Dice {test_dice:.4f}, {_duration(now - self.last)}; "
              f"elapsed {_duration(elapsed)}, {tail}", file=self.stream, flush=True)
        self.last = now


def _compare_summary(results, out):
    """The machine-readable part of a comparison: per condition, each arm's mean Dice and the paired tests."""

    def arm_summary(arm):
        return {k: arm.get(k) for k in ("mean", "ci95", "sd", "n_seeds", "n_images", "per_seed_mean")}

    def paired(p):
        return {k: v for k, v in p.items() if k != "seed_diff"}

    conditions = []
    for c in results["conditions"]:
        entry = {"name": c["name"], "train": c["train"], "test_set": c["test_set"],
                 "arms": {name: arm_summary(a) for name, a in c["arms"].items()},
                 "paired": paired(c["paired"])}
        if "postprocessed" in c:
            entry["postprocessed"] = {name: arm_summary(a) for name, a in c["postprocessed"].items()}
        if "ablation" in c:
            entry["ablation"] = paired(c["ablation"])
        if "comparisons" in c:
            entry["comparisons"] = [paired(p) for p in c["comparisons"]]
        conditions.append(entry)
    return {
        "out": str(out),
        "report": str(out / "report.md"),
        "metrics": str(out / "metrics.json"),
        "wall_seconds": results.get("wall_seconds"),
        "arms": results["config"].get("arms"),
        "notes": results["notes"],
        "conditions": conditions,
    }


def _add_augment_commands(subparsers):
    p = subparsers.add_parser(
        "augment",
        help="write augmented copies of a dataset (images, masks, manifest.csv with sampled parameters)",
        description="Expand a dataset on disk: COPIES augmented image/mask pairs per source pair, drawn from a "
        "policy file (A.save JSON/YAML or Keras config JSON), with a manifest of the sampled parameters.",
    )
    p.add_argument("--data", required=True, help="dataset folder (images/ + masks/, or the NLM layout)")
    p.add_argument("--out", required=True, help="output folder (must be empty unless --force)")
    p.add_argument("--copies", type=int, default=1, help="augmented copies per pair")
    p.add_argument("--policy", required=True, help="policy file: A.save JSON/YAML or Keras config JSON")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--force", action="store_true", help="write into a non-empty output folder")
    p.set_defaults(func=_cmd_augment)

    q = subparsers.add_parser(
        "preview",
        help="write a grid PNG of a policy's draws on a few samples, with mask contours",
    )
    q.add_argument("--policy", required=True, help="policy file: A.save JSON/YAML or Keras config JSON")
    q.add_argument("--data", required=True, help="dataset folder")
    q.add_argument("--out", default="augment_preview.png", help="PNG to write")
    q.add_argument("--seed", type=int, default=0, help="random seed")
    q.add_argument("--samples", type=int, default=4, help="rows: samples shown")
    q.add_argument("--draws", type=int, default=6, help="columns: draws per sample")
    q.set_defaults(func=_cmd_preview)


def _add_compare_command(subparsers):
    p = subparsers.add_parser("compare", help="train on original vs augmented data and report the difference")
    p.add_argument("--data", help="dataset folder (default: $LUNG_KERAS_DATA, else the cached Montgomery set)")
    p.add_argument("--out", default="runs/compare", help="output folder")
    p.add_argument("--policy", help="augmentation policy file (Albumentations JSON/YAML or lung_keras)")
    p.add_argument("--seeds", type=int, default=3, help="training seeds per arm")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--train-sizes", default="all", help="comma-separated sizes, e.g. 10,20,all")
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
    _add_scale_options(p)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 24 cases at 64x64, 2 seeds, 3 epochs, small U-Net (numbers mean nothing)")
    p.add_argument("--json", action="store_true", help="print a machine-readable JSON summary on stdout (progress goes to stderr)")
    p.set_defaults(func=_cmd_compare)


def build_parser():
    parser = _Parser(prog="lung-keras", description=__doc__, add_common=False,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train a U-Net and write a run folder")
    _add_train_options(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="score a saved model on a dataset folder, or the threshold rule on CT")
    p.add_argument("--method", default="model", choices=["model", "threshold"],
                   help="model: a saved network on an X-ray folder; threshold: baselines.threshold_lungs on CT "
                        "(a DICOM folder or volume file with --mask, or a folder with a CT manifest.csv)")
    p.add_argument("--model", help="a .keras model file (--method model)")
    p.add_argument("--data", required=True, help="dataset folder (NLM or images/ + masks/ layout); with --method "
                                                 "threshold a CT (DICOM folder, .nrrd, .nii[.gz]) or CT manifest folder")
    p.add_argument("--out", default="evaluation", help="output folder")
    p.add_argument("--image-size", type=int, help="resize to this square size (default: the model's input size)")
    p.add_argument("--threshold", type=float, default=0.5, help="probability above which a pixel is lung")
    p.add_argument("--json", action="store_true", help="print a machine-readable JSON summary on stdout (progress goes to stderr)")
    p.add_argument("--skip-invalid", action="store_true")
    _add_binarize_option(p)
    _add_cache_options(p)
    _add_ct_evaluate_options(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("data", help="dataset utilities", add_common=False)
    data_sub = p.add_subparsers(dest="data_command", required=True)
    c = data_sub.add_parser("check", help="list every problem in a dataset folder (X-ray or CT); exit 1 if any is fatal")
    c.add_argument("dir")
    c.add_argument("--pairs-only", action="store_true", help="check pairing only, do not decode files")
    c.add_argument("--json", action="store_true", help="print the report as JSON (same exit status)")
    c.add_argument("--roi-pattern", default="lung", help="CT: RTSTRUCT ROI name pattern of the lungs (default: lung)")
    c.add_argument("--missing-slices", choices=("error", "skip"), default="error",
                   help="CT: a contour on a slice absent from the series is an error (default) or a warning (skip)")
    _add_binarize_option(c)
    c.set_defaults(func=_cmd_data_check)
    d = data_sub.add_parser("download", help="download and convert the NLM Montgomery set")
    d.add_argument("--dest", help="target folder (default: the cache folder)")
    d.add_argument("--url", help="archive URL (default: NLM's public archive)")
    d.set_defaults(func=_cmd_data_download)

    _add_augment_commands(sub)
    _add_compare_command(sub)
    return parser


def _version():
    from importlib import metadata

    try:
        return metadata.version("lung-keras")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


_BACKEND_COMMANDS = {"_cmd_train", "_cmd_evaluate", "_cmd_augment", "_cmd_preview", "_cmd_compare"}


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.func.__name__ in _BACKEND_COMMANDS:
            _load_backend(args)
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"lung-keras {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
