"""Original vs augmented training: the experiment behind `lung-keras compare` (the main job).

Every arm trains the same U-Net on the same split with the same epochs and seeds; only the augmentation
policy differs (applied in-graph, in the train step only). Each training condition (train size,
healthy-only) is crossed with each test set (in-domain test split, by diagnosis when training on healthy
cases only, and every `--extra-test` folder). Per arm: mean Dice over seeds with a 95% t interval; per pair
of arms: per-image paired differences with a paired bootstrap CI, a Wilcoxon signed-rank test and a paired
bootstrap p-value. Everything lands in `metrics.json`; `report.md` / `report.html` show the same numbers.
"""

import dataclasses
import json
import pathlib
import re
import shutil
import sys
import time

import numpy as np

from lung_keras import data as lk_data
from lung_keras._io import write_text

BASELINE, AUGMENTED, AUGMENTED_FLIP = "baseline", "augmented", "augmented+flip"


def default_policy(seed=None, flip=False):
    """The default chest X-ray policy, chosen by measurement for new hospitals (see `benchmarks/RESULTS.md`).

    - `Affine`: scale 0.85-1.15, translate +-6%, rotate +-10 deg, shear +-5 deg (p=0.7): hospitals frame, centre
      and tilt radiographs differently;
    - `RandomBrightnessContrast` +-0.3 (p=0.7) and `RandomGamma` 70-150 (p=0.5): other scanners' grey levels;
    - `GaussianBlur` sigma 0.3-1.2 (p=0.2) and `GaussNoise` std 0.01-0.04 (p=0.5): other resolutions and noise.

    Trained on Montgomery's 56 normal cases, 3 seeds, it raised Dice on the Shenzhen development set from
    0.913 (the previous rotate / brightness-contrast / noise policy) to 0.934 without lowering in-domain Dice.
    The leave-one-out study (`compare --ablate`) credits that gain to brightness/contrast (+0.078 on Shenzhen
    against the policy without it); the Affine step helps in-domain normal cases slightly, not Shenzhen.
    A horizontally flipped chest X-ray puts the heart on the wrong side, so flips are left out;
    `flip=True` adds `HorizontalFlip(p=0.5)` for the ablation arm.
    """
    from lung_keras import augment

    steps = [augment.HorizontalFlip(p=0.5)] if flip else []
    steps += [
        augment.Affine(scale=(0.85, 1.15), translate_percent=(-0.06, 0.06), rotate=(-10, 10), shear=(-5, 5), p=0.7),
        augment.RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=0.3, p=0.7),
        augment.RandomGamma(gamma_limit=(70, 150), p=0.5),
        augment.GaussianBlur(sigma_limit=(0.3, 1.2), p=0.2),
        augment.GaussNoise(std_range=(0.01, 0.04), p=0.5),
    ]
    return augment.Compose(steps, p=1.0, seed=seed)


def with_transforms(policy, transforms, seed=None):
    """A copy of the Compose `policy` holding `transforms` instead of its own, keeping every other setting
    (`p`, `fuse`, `mask_interpolation`, `seed` unless `seed` is given). A single layer counts as
    `Compose([layer])`."""
    import keras

    from lung_keras import augment

    if not isinstance(policy, augment.Compose):
        policy = augment.Compose([policy])
    config = policy.get_config()
    config["transforms"] = [keras.saving.serialize_keras_object(t) for t in transforms]
    config.pop("name", None)
    if seed is not None:
        config["seed"] = seed
    return augment.Compose.from_config(config)


def with_flip(policy, seed=None):
    """`policy` with a leading `HorizontalFlip(p=0.5)` (the flip ablation arm); its other settings kept."""
    from lung_keras import augment

    steps = policy.transforms if isinstance(policy, augment.Compose) else [policy]
    return with_transforms(policy, [augment.HorizontalFlip(p=0.5), *steps], seed=seed)


def leave_one_out(policy):
    """`{"without <Transform>": policy minus that transform}` for each top-level transform of `policy`."""
    from lung_keras import augment

    steps = list(policy.transforms) if isinstance(policy, augment.Compose) else [policy]
    if len(steps) < 2:
        raise ValueError(f"--ablate needs a policy of two or more transforms. Received: {len(steps)} transform(s)")
    names = [type(t).__name__ for t in steps]
    out = {}
    for i, step in enumerate(steps):
        label = names[i] if names.count(names[i]) == 1 else f"{names[i]}#{names[:i].count(names[i]) + 1}"
        out[f"without {label}"] = (label, with_transforms(policy, steps[:i] + steps[i + 1 :]))
    return out


@dataclasses.dataclass
class ArmPlan:
    """The arms of a comparison and which pairs of them are compared.

    `primary` is the headline pair `(a, b)` (reported as `b - a`); `ablation` the flip arm pair; `others`
    more pairs, each with a label (e.g. the transform a leave-one-out arm drops).
    """

    arms: dict
    primary: tuple
    ablation: tuple = None
    others: list = dataclasses.field(default_factory=list)


def plan_arms(config, policy=None, named=None):
    """Arms for `config`: baseline vs augmented (+ flip arm, + leave-one-out arms), or named policies."""
    if named:
        arms = {BASELINE: None, **named}
        first, *rest = list(named)
        return ArmPlan(arms, (BASELINE, first), others=[(BASELINE, name, name) for name in rest])
    arms = {BASELINE: None, AUGMENTED: policy}
    plan = ArmPlan(arms, (BASELINE, AUGMENTED))
    if config.flip_ablation:
        arms[AUGMENTED_FLIP] = with_flip(policy)
        plan.ablation = (AUGMENTED, AUGMENTED_FLIP)
    if config.ablate:
        for arm, (label, arm_policy) in leave_one_out(policy).items():
            arms[arm] = arm_policy
            plan.others.append((arm, AUGMENTED, label))
    return plan


@dataclasses.dataclass
class CompareConfig:
    """Settings of a comparison (every field is a `lung-keras compare` option)."""

    data: str = None
    out: str = "runs/compare"
    policy: str = None
    seeds: int = 3
    epochs: int = 40
    train_sizes: tuple = ("all",)
    healthy_only: bool = False
    extra_test: tuple = ()
    flip_ablation: bool = True
    ablate: bool = False
    arms: tuple = ()
    normalization: str = None  # None: TrainConfig's default
    postprocess: bool = True
    image_size: int = 128
    batch_size: int = 8
    base_filters: int = 16
    depth: int = 4
    learning_rate: float = 1e-3
    split_seed: int = 0
    subset: int = None
    skip_invalid: bool = False
    resume: bool = False
    overwrite: bool = False
    data_cache: str = "auto"
    cache_dir: str = None
    workers: int = None
    strategy: str = "none"
    augment_in: str = "model"
    verbose: int = 1

    def __post_init__(self):
        sizes = []
        for s in self.train_sizes:
            if str(s).lower() == "all":
                sizes.append("all")
            elif str(s).isdigit() and int(s) > 0:
                sizes.append(int(s))
            else:
                raise ValueError(f"Train sizes are positive integers or 'all'. Received: train_sizes={self.train_sizes}")
        self.train_sizes = tuple(sizes)
        if int(self.seeds) < 1:
            raise ValueError(f"`seeds` must be >= 1. Received: seeds={self.seeds}")
        from lung_keras.data.store import CACHES
        from lung_keras.distribute import STRATEGIES

        if self.data_cache not in CACHES:
            raise ValueError(f"`data_cache` must be one of {CACHES}. Received: data_cache={self.data_cache!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"`strategy` must be one of {STRATEGIES}. Received: strategy={self.strategy!r}")
        if self.augment_in not in ("model", "pipeline"):
            raise ValueError(f"`augment_in` must be 'model' or 'pipeline'. Received: augment_in={self.augment_in!r}")
        if self.resume and self.overwrite:
            raise ValueError("Pass either --resume or --overwrite, not both.")
        if self.arms and (self.ablate or self.policy):
            raise ValueError("--arms names every augmented arm itself; it cannot be combined with --ablate or --policy.")
        stems = [pathlib.Path(f).stem for f in self.arms]
        if len(set(stems)) != len(stems) or BASELINE in stems:
            raise ValueError(f"--arms files need distinct names other than '{BASELINE}'. Received: arms={list(self.arms)}")


def _slug(text):
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", str(text)).strip("-")


def _log(config, message):
    if config.verbose:
        print(message, file=sys.stderr, flush=True)


def _subset(dataset, n, seed):
    """A seeded, diagnosis-stratified subset of `n` cases (for quick runs)."""
    if n is None or n >= len(dataset):
        return dataset
    frac = n / len(dataset)
    ids = lk_data.split_dataset(dataset, (frac, 1 - frac, 0.0), seed=seed)["train"]
    return dataset.subset(ids)


def _test_sets(splits, config, extra):
    """`[(name, samples)]`: the in-domain test split (by diagnosis when healthy-only) and extra folders."""
    sets = []
    if config.healthy_only:
        for diagnosis in sorted({s.diagnosis for s in splits.test}):
            sets.append((f"test ({diagnosis})", [s for s in splits.test if s.diagnosis == diagnosis]))
    else:
        sets.append(("test", list(splits.test)))
    sets += [(f"extra: {name}", ds.samples) for name, ds, *_ in extra]
    return sets


def run_comparison(config, dataset=None, policy=None, progress=None):
    """Train every arm x seed x training condition, evaluate on every test set, write the report.

    Args:
        config: a `CompareConfig`.
        dataset: an already loaded `lung_keras.data.Dataset` (else loaded from `config.data`).
        policy: the augmented arm's policy (`lung_keras.augment.Compose`); else `config.policy` (file), else
            `default_policy()`.
        progress: called after each run as `progress(done, total, label, test_dice)` (the CLI's ETA).

    Returns:
        The results dict (also written to `<out>/metrics.json`).
    """
    import keras

    from lung_keras import stats
    from lung_keras.postprocess import postprocess_masks
    from lung_keras.train import TrainConfig
    from lung_keras.train import load_policy
    from lung_keras.train import make_splits
    from lung_keras.train import score_predictions
    from lung_keras.train import train

    start = time.perf_counter()
    out = pathlib.Path(config.out)
    size = (config.image_size, config.image_size)
    # Every set is decoded once (checked on the way) for all runs: in memory, or in the disk cache for large sets.
    store_args = {"cache": config.data_cache, "cache_dir": config.cache_dir, "workers": config.workers,
                  "skip_invalid": config.skip_invalid}
    store = lk_data.build_store(dataset if dataset is not None else lk_data.resolve_data_dir(config.data), size,
                                **store_args)
    dataset = _subset(store.dataset, config.subset, config.split_seed)
    extra, stores = [], {}
    for folder in config.extra_test:
        extra_store = lk_data.build_store(folder, size, **store_args)
        name = pathlib.Path(folder).name or str(folder)
        extra.append((name, extra_store.dataset))
        stores[f"extra: {name}"] = extra_store
    named = {pathlib.Path(f).stem: load_policy(f) for f in config.arms}
    if policy is None and not named:
        policy = load_policy(config.policy) if config.policy else default_policy()
    plan = plan_arms(config, policy, named)
    arms = plan.arms
    _prepare_out(out, config)

    full_train = len(make_splits(dataset, TrainConfig(split_seed=config.split_seed, healthy_only=config.healthy_only)).train)
    seeds = list(range(int(config.seeds)))
    conditions, figures, histories_by_condition = [], {}, {}
    n_runs = len(config.train_sizes) * len(arms) * len(seeds)
    done = 0
    cached_arrays = {}
    for train_size in config.train_sizes:
        cond = f"train={train_size}" + (" healthy-only" if config.healthy_only else "")
        per_set = {}  # test-set name -> arm -> list of per-seed dice arrays
        per_set_pp = {}  # the same after post-processing
        set_ids = {}
        histories = {arm: [] for arm in arms}
        grid_inputs = {}
        first_seed = {}  # (test-set name, arm) -> (x, y, pred, ids) of the first seed, for the change figures
        for arm, arm_policy in arms.items():
            for seed in seeds:
                t0 = time.perf_counter()
                tconfig = TrainConfig(
                    out_dir=str(out / "runs"),
                    name=f"{_slug(cond)}/{_slug(arm)}-seed{seed}",
                    image_size=config.image_size,
                    epochs=config.epochs,
                    batch_size=config.batch_size,
                    learning_rate=config.learning_rate,
                    base_filters=config.base_filters,
                    depth=config.depth,
                    seed=seed,
                    split_seed=config.split_seed,
                    healthy_only=config.healthy_only,
                    **({} if config.normalization is None else {"normalization": config.normalization}),
                    train_size=None if train_size == "all" else train_size,
                    min_epoch_samples=full_train if train_size != "all" else None,
                    data_cache=config.data_cache,
                    cache_dir=config.cache_dir,
                    workers=config.workers,
                    strategy=config.strategy,
                    augment_in=config.augment_in,
                    verbose=0,
                )
                if arm_policy is not None:
                    arm_policy = _reseeded(arm_policy, seed)
                result = train(tconfig, dataset=dataset, policy=arm_policy, resume=config.resume, store=store)
                histories[arm].append(result["history"])
                model = result["model"]
                test_sets = _test_sets(result["splits"], config, extra)
                for set_name, samples in test_sets:
                    key = (set_name, tuple(s.id for s in samples))
                    if key not in cached_arrays:
                        cached_arrays[key] = stores.get(set_name, store).arrays(samples)
                    x, y = cached_arrays[key]
                    pred = model.predict(x, batch_size=config.batch_size, verbose=0)
                    dice, _, _ = score_predictions(y, pred)
                    _log_test_set(result, set_name, x, y, pred, [s.id for s in samples], dice)
                    if seed == seeds[0] and arm in plan.primary:
                        first_seed[(set_name, arm)] = (x, y, pred, [s.id for s in samples])
                    per_set.setdefault(set_name, {}).setdefault(arm, []).append(dice)
                    if config.postprocess:
                        dice_pp, _, _ = score_predictions(y, postprocess_masks(pred))
                        per_set_pp.setdefault(set_name, {}).setdefault(arm, []).append(dice_pp)
                    set_ids[set_name] = [s.id for s in samples]
                    if seed == seeds[0] and set_name == test_sets[0][0]:
                        grid_inputs[arm] = (x, y, pred, set_ids[set_name], dice)
                done += 1
                if progress is not None:
                    progress(done, n_runs, f"{cond} {arm} seed {seed}", result["metrics"]["test"]["mean_dice"])
                _log(
                    config,
                    f"[{done}/{n_runs}] {cond} {arm} seed {seed}: test Dice "
                    f"{result['metrics']['test']['mean_dice']:.4f}, {time.perf_counter() - t0:.0f}s",
                )
        histories_by_condition[cond] = histories
        for set_name, by_arm in per_set.items():
            summaries = {
                arm: stats.summarize_arm(np.stack(runs), ids=set_ids[set_name], seeds=seeds)
                for arm, runs in by_arm.items()
            }
            a, b = plan.primary
            paired = stats.summarize_paired(summaries[a], summaries[b], a, b)
            entry = {"name": f"{cond} | {set_name}", "train": cond, "test_set": set_name, "arms": summaries,
                     "paired": paired}
            if plan.ablation:
                entry["ablation"] = stats.summarize_paired(summaries[plan.ablation[0]], summaries[plan.ablation[1]],
                                                           *plan.ablation)
            if plan.others:
                entry["comparisons"] = [
                    {**stats.summarize_paired(summaries[a], summaries[b], a, b), "label": label}
                    for a, b, label in plan.others
                ]
            if set_name in per_set_pp:
                entry["postprocessed"] = {
                    arm: stats.summarize_arm(np.stack(runs), ids=set_ids[set_name], seeds=seeds)
                    for arm, runs in per_set_pp[set_name].items()
                }
            conditions.append(entry)
        figures.update(_condition_figures(out, cond, histories, grid_inputs))
        figures.update(_dice_change_figures(out, cond, conditions, first_seed, plan.primary))

    preview = _preview(policy if policy is not None else next(iter(named.values())), dataset, out)
    if preview:
        figures["augmentation preview"] = preview
    results = {
        "config": {**dataclasses.asdict(config), "seeds": seeds, "arm_files": list(config.arms), "arms": list(arms),
                   "policy": keras.saving.serialize_keras_object(policy),
                   "arm_policies": {k: keras.saving.serialize_keras_object(v) for k, v in arms.items()},
                   "data": str(dataset.root), "n_cases": len(dataset)},
        "alpha": 0.05,
        "conditions": conditions,
        "figures": figures,
        "notes": _notes(conditions),
        "wall_seconds": time.perf_counter() - start,
    }
    try:
        from lung_keras.report import add_holm

        add_holm(results)  # Holm-adjusted p-values per family of comparisons (paired, ablation)
    except ImportError:
        pass
    write_text(out / "metrics.json", json.dumps(results, indent=2, default=_json_default))
    _write_report(results, out)
    _log(config, f"compare: {len(conditions)} condition(s), {n_runs} runs, {results['wall_seconds']:.0f}s -> {out}")
    return results


def _prepare_out(out, config):
    """Refuse an existing output folder unless resuming (finished runs are reused) or overwriting."""
    exists = out.is_dir() and any(out.iterdir())
    if exists and config.overwrite:
        shutil.rmtree(out)
    elif exists and not config.resume:
        raise FileExistsError(f"{out} already exists: pass --resume to continue that comparison (finished runs "
                              "are reused) or --overwrite to replace it (or choose another --out)")
    out.mkdir(parents=True, exist_ok=True)


def _reseeded(policy, seed):
    """A fresh copy of `policy` seeded for training seed `seed` (same policy config, new draws)."""
    return type(policy).from_config({**policy.get_config(), "seed": 1000 + seed})


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pathlib.Path):
        return str(value)
    return str(value)


def _condition_figures(out, cond, histories, grid_inputs):
    figures = {}
    try:
        from lung_keras.viz import plot_histories
        from lung_keras.viz import segmentation_grid
    except ImportError:
        return figures
    fig_dir = out / "figures"
    fig_dir.mkdir(exist_ok=True)
    slug = _slug(cond)
    path = fig_dir / f"curves_{slug}.png"
    plot_histories(histories, metrics=("loss", "accuracy", "dice"), path=str(path), title=cond)
    figures[f"curves {cond}"] = str(path.relative_to(out))
    for arm, (x, y, pred, ids, dice) in grid_inputs.items():
        order = np.argsort(dice)
        for label, idx in (("worst", order[:3]), ("best", order[::-1][:3])):
            path = fig_dir / f"{label}_{slug}_{_slug(arm)}.png"
            segmentation_grid(x[idx], y[idx], pred[idx], ids=[ids[i] for i in idx], dice=dice[idx], path=str(path))
            figures[f"{label} cases {cond} {arm}"] = str(path.relative_to(out))
    return figures


def _log_test_set(result, set_name, x, y, pred, ids, dice):
    """One test set's predictions into the run's Segmentation dashboard log, unless `train` already wrote it."""
    dashboard = result.get("dashboard")
    if not dashboard or set_name in dashboard["sets"]:
        return
    from lung_keras.callbacks import log_test_predictions

    log_test_predictions(dashboard["log_dir"], set_name, x, y, pred, ids, dice, dashboard["step"],
                         shared_dir=dashboard["shared_dir"])
    dashboard["sets"].append(set_name)


def _dice_change_figures(out, cond, conditions, first_seed, primary):
    """Per test set of `cond`: the images whose seed-averaged Dice changed most between the primary arms."""
    try:
        from lung_keras.viz import dice_change_figures
    except ImportError:
        return {}
    entries = [c for c in conditions if c["train"] == cond]
    return dice_change_figures(out, entries, first_seed, primary, lambda arm: f"{_slug(cond)}/{_slug(arm)}", _slug)


def _preview(policy, dataset, out):
    try:
        from lung_keras.augment import offline
    except ImportError:
        return None
    path = out / "figures" / "augmentation_preview.png"
    path.parent.mkdir(exist_ok=True)
    try:
        offline.preview(policy, dataset.root, str(path), num_samples=3, num_draws=4, seed=0)
    except Exception as error:  # a preview must never sink a finished experiment
        print(f"compare: augmentation preview failed: {error}", file=sys.stderr)
        return None
    return str(path.relative_to(out))


def _notes(conditions):
    notes = []
    for c in conditions:
        p = c["paired"]
        lo, hi = p["ci95"]
        notes.append(
            f"{c['name']}: {p['definition']} = {p['mean_diff']:+.4f} Dice (95% CI {lo:+.4f} to {hi:+.4f}, "
            f"Wilcoxon p = {p['wilcoxon_p']:.3g}, n = {p['n']} images)"
        )
    return notes


def _write_report(results, out):
    try:
        from lung_keras.report import write_report
    except ImportError:
        return None
    return write_report(results, out)
