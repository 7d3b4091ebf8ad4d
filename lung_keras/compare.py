"""Original vs augmented training: the experiment behind `lung-keras compare` (the main job).

Every arm trains the same U-Net on the same split with the same epochs and seeds; only the augmentation
policy differs (applied in-graph, in the train step only). Each training condition (train size,
healthy-only) is crossed with each test set (in-domain test split, by diagnosis when training on healthy
cases only, and every `--extra-test` folder). Per arm: mean Dice over seeds with a 95% t interval; per pair
of arms: per-image paired differences with a paired bootstrap CI, a Wilcoxon signed-rank test and a paired
bootstrap p-value. Everything lands in `metrics.json` (a typed `lung_keras.report.ComparisonResult`, with
every arm's policy as a Keras config and in Albumentations `A.save` form); `report.md` / `report.html` show
the same numbers.

`run_comparison` reads as its steps: decode the data once (`_Data`), plan the arms and save their policies
(`_plan`, `_saved_forms`, before any training), then per training condition train and score every arm x seed
(`_train_condition`, `_score_run`), summarize each test set (`_summarize`), draw the figures; then build the
result (`_result`) and write it and the report (`_write`).
It is one module of about 500 lines because the arms, the settings and that pipeline describe one experiment.
"""

import dataclasses
import pathlib
import re
import shutil
import sys
import time

import numpy as np

from lung_keras import data as lk_data
from lung_keras.train import TrainConfig

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


#: TrainConfig settings `run_comparison` sets for each run itself (or that are compare's own options).
_PER_RUN = ("out_dir", "name", "seed", "train_size", "min_epoch_samples", "policy", "verbose")


@dataclasses.dataclass(init=False)
class CompareConfig:
    """Settings of a comparison (every field is a `lung-keras compare` option).

    `train` holds what every run shares (a `TrainConfig`: data, epochs, image size, healthy-only, strategy...),
    with TrainConfig's defaults and validation. Those settings can also be passed by name,
    `CompareConfig(epochs=10, image_size=64, healthy_only=True)`; None means TrainConfig's default.
    """

    out: str = "runs/compare"
    policy: str = None
    seeds: int = 3
    train_sizes: tuple = ("all",)
    extra_test: tuple = ()
    flip_ablation: bool = True
    ablate: bool = False
    arms: tuple = ()
    postprocess: bool = True
    subset: int = None
    resume: bool = False
    overwrite: bool = False
    verbose: int = 1
    train: TrainConfig = None

    def __init__(self, train=None, **settings):
        own = [f.name for f in dataclasses.fields(self) if f.name != "train"]
        for name in own:
            setattr(self, name, settings.pop(name, getattr(type(self), name)))
        allowed = {f.name for f in dataclasses.fields(TrainConfig)} - set(_PER_RUN)
        unknown = sorted(set(settings) - allowed)
        if unknown:
            raise TypeError(f"CompareConfig got unknown settings {unknown}; it takes {sorted(own)} and TrainConfig's "
                            f"{sorted(allowed)}. Received: {', '.join(f'{k}={settings[k]!r}' for k in unknown)}")
        base = train if train is not None else TrainConfig()
        self.train = dataclasses.replace(base, verbose=0, **{k: v for k, v in settings.items() if v is not None})
        self.__post_init__()

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
        if self.resume and self.overwrite:
            raise ValueError("Pass either --resume or --overwrite, not both.")
        if self.arms and (self.ablate or self.policy):
            raise ValueError("--arms names every augmented arm itself; it cannot be combined with --ablate or --policy.")
        stems = [pathlib.Path(f).stem for f in self.arms]
        if len(set(stems)) != len(stems) or BASELINE in stems:
            raise ValueError(f"--arms files need distinct names other than '{BASELINE}'. Received: arms={list(self.arms)}")

    def record(self):
        """The settings as `metrics.json` records them: compare's own, then the shared training settings."""
        own = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "train"}
        shared = {k: v for k, v in dataclasses.asdict(self.train).items() if k not in _PER_RUN}
        return {"data": shared.pop("data"), **own, **shared}

    def run_config(self, out_dir, condition, arm, seed, train_size, full_train):
        """The `TrainConfig` of one run: the shared settings, this run's name, seed and training-set size."""
        small = train_size != "all"
        return dataclasses.replace(self.train, out_dir=str(out_dir), name=f"{_slug(condition)}/{_slug(arm)}-seed{seed}",
                                   seed=seed, train_size=train_size if small else None,
                                   min_epoch_samples=full_train if small else None)


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
    if config.train.healthy_only:
        for diagnosis in sorted({s.diagnosis for s in splits.test}):
            sets.append((f"test ({diagnosis})", [s for s in splits.test if s.diagnosis == diagnosis]))
    else:
        sets.append(("test", list(splits.test)))
    sets += [(name, st.dataset.samples) for name, st in extra.items()]
    return sets


def run_comparison(config, dataset=None, policy=None, progress=None):
    """Train every arm x seed x training condition, evaluate on every test set, write the report.

    Args:
        config: a `CompareConfig`.
        dataset: an already loaded `lung_keras.data.Dataset` (else loaded from `config.train.data`).
        policy: the augmented arm's policy (`lung_keras.augment.Compose`); else `config.policy` (file), else
            `default_policy()`.
        progress: called after each run as `progress(done, total, label, test_dice)` (the CLI's ETA).

    Returns:
        The `lung_keras.report.ComparisonResult`, also written to `<out>/metrics.json` (it reads as that
        file's dict too: `result["conditions"][0]["arms"]`).
    """
    start = time.perf_counter()
    out = pathlib.Path(config.out)
    data = _Data.load(config, dataset)
    policy, plan = _plan(config, policy)
    saved_forms = _saved_forms(policy, plan)  # before any training: a policy A.save cannot express fails here
    _prepare_out(out, config)
    counter = _Counter(config, len(config.train_sizes) * len(plan.arms) * int(config.seeds), progress)
    conditions, figures = [], {}
    for train_size in config.train_sizes:
        cond = f"train={train_size}" + (" healthy-only" if config.train.healthy_only else "")
        runs = _train_condition(config, plan, data, out, cond, train_size, counter)
        entries = [_summarize(cond, set_name, by_arm, runs, plan) for set_name, by_arm in runs.dice.items()]
        conditions += entries
        figures.update(_condition_figures(out, cond, runs.histories, runs.grid_inputs))
        figures.update(_dice_change_figures(out, cond, entries, runs.first_seed, plan.primary))
    shown = policy if policy is not None else next(p for p in plan.arms.values() if p is not None)
    preview = _preview(shown, data.dataset, out)
    if preview:
        figures["augmentation preview"] = preview
    result = _result(config, plan, saved_forms, data.dataset, conditions, figures, time.perf_counter() - start)
    _write(result, out)
    _log(config, f"compare: {len(conditions)} condition(s), {counter.total} runs, {result.wall_seconds:.0f}s -> {out}")
    return result


@dataclasses.dataclass
class _Data:
    """The decoded sets of a comparison: the training set (its store and, maybe subset, dataset) and each
    `--extra-test` folder's store by test-set name; each set is decoded once for all runs."""

    store: object
    dataset: object
    extra: dict
    cache: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def load(cls, config, dataset=None):
        train = config.train
        store_args = {"cache": train.data_cache, "cache_dir": train.cache_dir, "workers": train.workers,
                      "skip_invalid": train.skip_invalid, "binarize_threshold": train.binarize_threshold}
        source = dataset if dataset is not None else lk_data.resolve_data_dir(train.data)
        store = lk_data.build_store(source, train.size, **store_args)
        extra = {}
        for folder in config.extra_test:
            extra[f"extra: {pathlib.Path(folder).name or str(folder)}"] = lk_data.build_store(folder, train.size,
                                                                                            **store_args)
        return cls(store, _subset(store.dataset, config.subset, train.split_seed), extra)

    def arrays(self, set_name, samples):
        key = (set_name, tuple(s.id for s in samples))
        if key not in self.cache:
            self.cache[key] = self.extra.get(set_name, self.store).arrays(samples)
        return self.cache[key]


def _plan(config, policy):
    """The augmented arm's policy (None with `--arms`) and the arms to train."""
    from lung_keras.augment.bridge import load_policy

    named = {pathlib.Path(f).stem: load_policy(f) for f in config.arms}
    if policy is None and not named:
        policy = load_policy(config.policy) if config.policy else default_policy()
    elif isinstance(policy, (str, pathlib.Path)):
        policy = load_policy(policy)
    return policy, plan_arms(config, policy, named)


class _Counter:
    """Counts finished runs; reports each to `progress` and, when verbose, to stderr."""

    def __init__(self, config, total, progress):
        self.config, self.total, self.progress, self.done = config, total, progress, 0

    def finished(self, label, test_dice, seconds):
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, label, test_dice)
        _log(self.config, f"[{self.done}/{self.total}] {label}: test Dice {test_dice:.4f}, {seconds:.0f}s")


@dataclasses.dataclass
class _ConditionRuns:
    """What the runs of one training condition left: per test set and arm, each seed's per-image Dice (raw
    and post-processed), the set's ids, each arm's histories, and the first seed's arrays for the figures."""

    dice: dict = dataclasses.field(default_factory=dict)
    dice_pp: dict = dataclasses.field(default_factory=dict)
    ids: dict = dataclasses.field(default_factory=dict)
    histories: dict = dataclasses.field(default_factory=dict)
    grid_inputs: dict = dataclasses.field(default_factory=dict)  # arm -> first seed on the first test set
    first_seed: dict = dataclasses.field(default_factory=dict)  # (set, primary arm) -> (x, y, pred, ids)
    seeds: list = dataclasses.field(default_factory=list)


def _train_condition(config, plan, data, out, cond, train_size, counter):
    """Train every arm x seed of one condition and score each run on every test set."""
    from lung_keras.train import make_splits
    from lung_keras.train import train

    full_train = len(make_splits(data.dataset, config.train).train)
    runs = _ConditionRuns(seeds=list(range(int(config.seeds))))
    for arm, arm_policy in plan.arms.items():
        runs.histories[arm] = []
        for seed in runs.seeds:
            t0 = time.perf_counter()
            tconfig = config.run_config(out / "runs", cond, arm, seed, train_size, full_train)
            result = train(tconfig, dataset=data.dataset, policy=_reseeded(arm_policy, seed), resume=config.resume,
                           store=data.store)
            runs.histories[arm].append(result["history"])
            _score_run(config, plan, data, runs, result, arm, seed)
            counter.finished(f"{cond} {arm} seed {seed}", result["metrics"]["test"]["mean_dice"],
                             time.perf_counter() - t0)
    return runs


def _score_run(config, plan, data, runs, result, arm, seed):
    """One trained run's per-image Dice on every test set, logged to its dashboard; first-seed arrays kept."""
    from lung_keras.postprocess import postprocess_masks
    from lung_keras.train import score_predictions

    test_sets = _test_sets(result["splits"], config, data.extra)
    first = seed == runs.seeds[0]
    for set_name, samples in test_sets:
        ids = [s.id for s in samples]
        x, y = data.arrays(set_name, samples)
        pred = result["model"].predict(x, batch_size=config.train.batch_size, verbose=0)
        dice, _, _ = score_predictions(y, pred)
        _log_test_set(result, set_name, x, y, pred, ids, dice)
        runs.dice.setdefault(set_name, {}).setdefault(arm, []).append(dice)
        if config.postprocess:
            runs.dice_pp.setdefault(set_name, {}).setdefault(arm, []).append(score_predictions(y, postprocess_masks(pred))[0])
        runs.ids[set_name] = ids
        if first and arm in plan.primary:
            runs.first_seed[(set_name, arm)] = (x, y, pred, ids)
        if first and set_name == test_sets[0][0]:
            runs.grid_inputs[arm] = (x, y, pred, ids, dice)


def _summarize(cond, set_name, by_arm, runs, plan):
    """The `Condition` of one test set: each arm over seeds, and the planned paired comparisons."""
    from lung_keras import stats
    from lung_keras.report import ArmSummary
    from lung_keras.report import Condition
    from lung_keras.report import PairedComparison

    def arm_summaries(dice_by_arm):
        return {arm: ArmSummary.from_dict(stats.summarize_arm(np.stack(per_seed), ids=runs.ids[set_name],
                                                              seeds=runs.seeds))
                for arm, per_seed in dice_by_arm.items()}

    def paired(a, b, label=None):
        entry = stats.summarize_paired(arms[a], arms[b], a, b)
        return PairedComparison.from_dict({**entry, **({"label": label} if label else {})})

    arms = arm_summaries(by_arm)
    return Condition(
        name=f"{cond} | {set_name}", train=cond, test_set=set_name, arms=arms, paired=paired(*plan.primary),
        ablation=paired(*plan.ablation) if plan.ablation else None,
        comparisons=[paired(a, b, label) for a, b, label in plan.others] or None,
        postprocessed=arm_summaries(runs.dice_pp[set_name]) if set_name in runs.dice_pp else None,
    )


def _saved_forms(policy, plan):
    """The augmented policy and every arm's, each as a Keras config and in Albumentations `A.save` form."""
    import keras

    from lung_keras.augment.bridge import policy_to_dict

    def forms(p):
        return keras.saving.serialize_keras_object(p), None if p is None else policy_to_dict(p)

    arms = {arm: forms(p) for arm, p in plan.arms.items()}
    (keras_config, albumentations) = forms(policy)
    return {"policy": keras_config, "policy_albumentations": albumentations,
            "arm_policies": {k: v[0] for k, v in arms.items()},
            "arm_policies_albumentations": {k: v[1] for k, v in arms.items()}}


def _result(config, plan, saved_forms, dataset, conditions, figures, seconds):
    """The `ComparisonResult`: settings (with the policies' saved forms), conditions with Holm-adjusted
    p-values, figures and notes."""
    from lung_keras.report import ComparisonResult
    from lung_keras.report import add_holm

    settings = {**config.record(), "seeds": list(range(int(config.seeds))), "arm_files": list(config.arms),
                "arms": list(plan.arms), **saved_forms, "data": str(dataset.root), "n_cases": len(dataset)}
    result = ComparisonResult(conditions=conditions, config=settings, figures=figures, notes=_notes(conditions),
                              wall_seconds=seconds)
    return add_holm(result)  # Holm-adjusted p-values per family of comparisons (paired, ablation, ...)


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
    if policy is None:
        return None
    return type(policy).from_config({**policy.get_config(), "seed": 1000 + seed})


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


def _dice_change_figures(out, cond, entries, first_seed, primary):
    """Per test set of `cond`: the images whose seed-averaged Dice changed most between the primary arms."""
    try:
        from lung_keras.viz import dice_change_figures
    except ImportError:
        return {}
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
    return [f"{c.name}: {p.definition} = {p.mean_diff:+.4f} Dice (95% CI {p.ci95[0]:+.4f} to {p.ci95[1]:+.4f}, "
            f"Wilcoxon p = {p.wilcoxon_p:.3g}, n = {p.n} images)" for c in conditions for p in [c.paired]]


def _write(result, out):
    """`metrics.json`, then `report.md` and `report.html`, from the same result."""
    from lung_keras.report import write_report
    from lung_keras.report import write_results

    write_results(result, out / "metrics.json")
    write_report(result, out)
