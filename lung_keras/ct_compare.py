"""CT slices, original vs augmented: train a U-Net on one patient's axial slices, test on another patient's
volume, score volumes per patient and per lung beside the threshold baseline (the experiment behind
`recipes/ct_slices.py`, issue 14 part 6).

Steps (`run_ct_slices`):

1. read the training CT and its reference (default: the ACRIN DICOM series with its hand-drawn RTSTRUCT lungs)
   and the test CT (default: the CIP NRRD volume with its automatic left/right label map);
2. cut every axial slice at one in-plane spacing (`spacing_mm`) on a `size` x `size` grid centred on the
   slice (`lung_keras.data.slice_volume`: HU linear, masks nearest, air outside the scan), so both patients
   meet the network at the same millimetres per pixel;
3. split the training patient's slices by slab: a central slab of `val_slices` slices validates (and picks
   the checkpoint), `gap` slices on each side of it are left out (neighbouring 5 mm slices overlap), the rest
   trains. The test patient is never seen before the test;
4. per arm (`original`: no augmentation; `augmented`: `ct_policy`) and seed, train the U-Net on windowed
   slices (`Windowing`, lung window), keep the weights of the best validation Dice, and save the inference
   model `HU slice -> Windowing -> U-Net` (`inference.keras`); its predictions on HU slices are checked
   against the windowed pipeline's;
5. reassemble the test slices' probabilities into the test volume's own grid (`slices_to_volume`, linear,
   then > 0.5) and score the volume (`ct_eval.score_volume`: Dice whole and per lung), with
   `baselines.threshold_lungs` on the same volume in the same table; also the volume Dice on the held-out
   validation slab of the training patient; each arm also with its two largest 3-D regions only
   (`baselines.largest_components`, `<arm>+2 largest`);
6. write `results.json` (versioned), `scores.csv` and `report.md` with the table, the settings, the data
   limits and the wall time.
"""

import dataclasses
import json
import math
import os
import pathlib
import time
import warnings

import numpy as np

from lung_keras._io import json_safe
from lung_keras._io import write_text

RESULTS_VERSION = 1
ORIGINAL, AUGMENTED = "original", "augmented"
ARMS = (ORIGINAL, AUGMENTED)
#: Suffix of an arm's rows after `baselines.largest_components` (the two largest 3-D regions kept).
CLEANED = "+2 largest"


def default_shared_dir():
    """`$LUNG_KERAS_SHARED`, else `../shared/data` beside the checkout."""
    env = os.environ.get("LUNG_KERAS_SHARED")
    return pathlib.Path(env) if env else pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclasses.dataclass
class CTSlicesConfig:
    """Settings of `run_ct_slices` (every field is a `recipes/ct_slices.py` option)."""

    out: str = "runs/ct_slices"
    train_image: str = None  # default: <shared>/ct_acrin_flt_breast_001/dicom
    train_mask: str = None  # default: its RTSTRUCT
    test_image: str = None  # default: <shared>/ct_cip_copdgene_64/ct-64.nrrd
    test_mask: str = None  # default: lm-64.nrrd (low byte 9-11 left, 12-14 right)
    test_left_labels: tuple = (9, 10, 11)
    test_right_labels: tuple = (12, 13, 14)
    test_low_byte: bool = True
    spacing_mm: float = 3.0
    size: int = 128
    window: tuple = (-600.0, 1500.0)
    val_slices: int = 8
    gap: int = 1
    arms: tuple = ARMS
    seeds: int = 3
    epochs: int = 20
    repeats: int = 4
    batch_size: int = 8
    learning_rate: float = 1e-3
    base_filters: int = 16
    depth: int = 4
    threshold_hu: float = -320.0
    verbose: int = 1

    def __post_init__(self):
        shared = default_shared_dir()
        acrin = shared / "ct_acrin_flt_breast_001" / "dicom"
        cip = shared / "ct_cip_copdgene_64"
        self.train_image = str(self.train_image or acrin)
        self.train_mask = str(self.train_mask or acrin / "RS.ACRIN-FLT-Breast_001.CT_1.dcm")
        self.test_image = str(self.test_image or cip / "ct-64.nrrd")
        self.test_mask = str(self.test_mask or cip / "lm-64.nrrd")
        unknown = set(self.arms) - set(ARMS)
        if unknown or not self.arms:
            raise ValueError(f"`arms` must be a non-empty subset of {ARMS}. Received: arms={self.arms!r}")
        for field in ("size", "seeds", "epochs", "repeats", "batch_size", "base_filters", "depth", "val_slices"):
            if int(getattr(self, field)) < 1:
                raise ValueError(f"`{field}` must be a positive integer. Received: {field}={getattr(self, field)!r}")
        if self.size % 2 ** self.depth:
            raise ValueError(f"`size` must be divisible by 2**depth = {2 ** self.depth}. Received: size={self.size}")
        if not self.spacing_mm > 0:
            raise ValueError(f"`spacing_mm` must be > 0. Received: spacing_mm={self.spacing_mm!r}")


def ct_policy(seed=None):
    """The CT slice policy: patients differ in size, position and scanner noise, not in laterality.

    - `Affine`: scale 0.8-1.2 (body and lung size), translate +-6%, rotate +-10 deg (p=0.7);
    - `RandomBrightnessContrast` +-0.15 (p=0.5): windowed intensities shift with kVp, dose and kernel;
    - `GaussNoise` std 0.01-0.04 (p=0.5): low-dose noise.

    No flips: a flipped chest puts the heart on the wrong side.
    """
    from lung_keras import augment

    return augment.Compose([
        augment.Affine(scale=(0.8, 1.2), translate_percent=(-0.06, 0.06), rotate=(-10, 10), p=0.7),
        augment.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15, p=0.5),
        augment.GaussNoise(std_range=(0.01, 0.04), p=0.5),
    ], p=1.0, seed=seed)


# ------------------------------------------------------------------------------------------------ the data


def _check_axial(volume, name):
    """The recipe feeds slices as stored: both patients must have rows going posterior and columns going left."""
    d = np.asarray(volume.direction, float)
    if not (np.allclose(d[1], (0, 1, 0), atol=0.05) and np.allclose(d[2], (1, 0, 0), atol=0.05)):
        raise ValueError(f"{name}: slices are not in the standard axial orientation (rows posterior, columns to "
                         f"the patient's left). Received: direction={d.round(3).tolist()}")


@dataclasses.dataclass
class _Patient:
    name: str
    image: object  # Volume (HU)
    reference: object  # Volume mask (0, LEFT_LUNG, RIGHT_LUNG)
    slices: object  # SliceSet in HU (windows=None), masks 0/1


def _load(config):
    """Both patients read (`load_ct_case`) and cut into HU slices on one in-plane grid (`slice_volume`)."""
    from lung_keras.data import LEFT_LUNG
    from lung_keras.data import RIGHT_LUNG
    from lung_keras.data import CTCase
    from lung_keras.data import load_ct_case
    from lung_keras.ct_eval import patient_name
    from lung_keras.data import slice_volume

    test_labels = {LEFT_LUNG: tuple(config.test_left_labels), RIGHT_LUNG: tuple(config.test_right_labels)}
    patients = []
    for image_path, mask_path, options in (
        (config.train_image, config.train_mask, {}),
        (config.test_image, config.test_mask, {"labels": test_labels, "low_byte": config.test_low_byte}),
    ):
        case = CTCase(patient_name(image_path), pathlib.Path(image_path), pathlib.Path(mask_path), **options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ACRIN: one right-lung contour on a slice absent from this copy
            image, reference = load_ct_case(case, keep_sides=True, missing_slices="skip")
        _check_axial(image, image_path)
        slices = slice_volume(image, reference, case.patient, spacing=config.spacing_mm, size=config.size,
                              windows=None)
        patients.append(_Patient(case.patient, image, reference, slices))
    return patients


def slab_split(num_slices, val_slices, gap):
    """`(train, val)` slice indices: a central slab of `val_slices` validates, `gap` slices each side are
    left out, the rest trains."""
    start = max((num_slices - val_slices) // 2, 0)
    val = np.arange(start, min(start + val_slices, num_slices))
    dropped = np.arange(max(start - gap, 0), min(val[-1] + 1 + gap, num_slices))
    train = np.setdiff1d(np.arange(num_slices), dropped)
    if len(train) == 0:
        raise ValueError(f"No training slice left: {num_slices} slices, val_slices={val_slices}, gap={gap}")
    return train, val


# ----------------------------------------------------------------------------------------------- training


def _window(config):
    from lung_keras.preprocessing import Windowing

    return Windowing(level=config.window[0], width=config.window[1])


def _train_arm(config, arm, seed, x_train, y_train, x_val, y_val):
    """Fit one arm x seed on windowed slices; return `(unet at best val Dice, best val Dice, best epoch, seconds)`."""
    import keras

    from lung_keras.augment import AugmentedModel
    from lung_keras.losses import BceDiceLoss
    from lung_keras.metrics import Dice
    from lung_keras.models import unet

    keras.utils.set_random_seed(seed)
    net = unet((config.size, config.size, 1), config.base_filters, config.depth)
    model = AugmentedModel(net, ct_policy(seed=seed)) if arm == AUGMENTED else net
    x = np.concatenate([x_train] * config.repeats)
    y = np.concatenate([y_train] * config.repeats)
    steps = config.epochs * -(-len(x) // config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=BceDiceLoss(), metrics=[Dice(name="dice")])
    best = {"dice": -1.0, "epoch": None, "weights": None}

    class KeepBest(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            value = float((logs or {}).get("val_dice", -1.0))
            if value > best["dice"]:
                best.update(dice=value, epoch=epoch + 1, weights=net.get_weights())

    start = time.perf_counter()
    model.fit(x, y, validation_data=(x_val, y_val), epochs=config.epochs, batch_size=config.batch_size,
              shuffle=True, callbacks=[KeepBest()], verbose=0)
    seconds = time.perf_counter() - start
    net.set_weights(best["weights"])
    return net, best["dice"], best["epoch"], seconds


def inference_model(config, net):
    """`HU slice (size, size, 1) -> Windowing -> net`: the model a user feeds raw Hounsfield units."""
    import keras

    inputs = keras.Input((config.size, config.size, 1), name="hu")
    return keras.Model(inputs, net(_window(config)(inputs)), name="ct_lung_unet")


def _to_volume(prob, patient):
    """Slice probabilities of `patient` put back on its source grid (`slices_to_volume`, linear), thresholded at
    0.5 (uint8)."""
    from lung_keras.data import slices_to_volume

    s = patient.slices
    volume = slices_to_volume(prob, s.slice_index, s.grids[patient.name], order=1)
    return (volume.array > 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------------------------------- run


def run_ct_slices(config):
    """Run the experiment `config` describes; write `results.json`, `scores.csv`, `report.md` into
    `config.out`; return the results dict (the content of `results.json`)."""
    import keras

    from lung_keras.baselines import largest_components
    from lung_keras.baselines import threshold_lungs
    from lung_keras.ct_eval import score_volume
    from lung_keras.ct_eval import write_scores

    wall = time.perf_counter()
    out = pathlib.Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    train_p, test_p = _load(config)
    window = _window(config)
    windowed = {p.name: keras.ops.convert_to_numpy(window(p.slices.images)) for p in (train_p, test_p)}
    train_idx, val_idx = slab_split(len(train_p.slices), config.val_slices, config.gap)
    masks = train_p.slices.masks.astype(np.float32)
    x_train, y_train = windowed[train_p.name][train_idx], masks[train_idx]
    x_val, y_val = windowed[train_p.name][val_idx], masks[val_idx]
    _say(config, f"data: {train_p.name} {len(train_idx)} training / {len(val_idx)} validation slices; "
                 f"test {test_p.name} {len(test_p.slices)} slices; canvas {config.size}x{config.size} at "
                 f"{config.spacing_mm} mm")

    # The threshold baseline on both volumes (the validation slab: its slices of the full-volume result).
    rows, val_rows = [], []
    test_threshold = threshold_lungs(test_p.image, threshold=config.threshold_hu)
    rows.append(score_volume(test_threshold, test_p.reference, test_p.image, test_p.name, "threshold"))
    train_threshold = threshold_lungs(train_p.image, threshold=config.threshold_hu)
    val_rows.append(_slab_score(train_threshold, train_p, val_idx, "threshold"))

    runs = []
    for arm in config.arms:
        for seed in range(config.seeds):
            net, best_val, best_epoch, seconds = _train_arm(config, arm, seed, x_train, y_train, x_val, y_val)
            model = inference_model(config, net)
            run_dir = out / f"{arm}-seed{seed}"
            run_dir.mkdir(parents=True, exist_ok=True)
            model.save(run_dir / "inference.keras")
            saved = keras.saving.load_model(run_dir / "inference.keras")
            from_hu = saved.predict(test_p.slices.images, batch_size=config.batch_size, verbose=0)
            windowed_pred = net.predict(windowed[test_p.name], batch_size=config.batch_size, verbose=0)
            agreement = float(np.max(np.abs(from_hu - windowed_pred)))
            test_mask = _to_volume(from_hu, test_p)
            method, cleaned = f"{arm} seed {seed}", f"{arm}{CLEANED} seed {seed}"
            train_mask = _to_volume(saved.predict(train_p.slices.images, batch_size=config.batch_size, verbose=0),
                                    train_p)
            rows.append(score_volume(test_mask, test_p.reference, test_p.image, test_p.name, method))
            val_rows.append(_slab_score(train_mask, train_p, val_idx, method))
            rows.append(score_volume(largest_components(test_mask), test_p.reference, test_p.image, test_p.name,
                                     cleaned))
            val_rows.append(_slab_score(largest_components(train_mask), train_p, val_idx, cleaned))
            runs.append({"arm": arm, "seed": seed, "best_val_dice": best_val, "best_epoch": best_epoch,
                         "train_seconds": seconds, "inference_model": str(run_dir / "inference.keras"),
                         "saved_vs_windowed_max_abs_diff": agreement})
            _say(config, f"{method}: test volume Dice {rows[-2].dice:.4f} ({rows[-1].dice:.4f} with {CLEANED}), "
                         f"validation slab {val_rows[-2].dice:.4f} "
                         f"(best slice val Dice {best_val:.4f} at epoch {best_epoch}), {seconds:.0f}s; saved HU "
                         f"model vs windowed pipeline: max |diff| {agreement:.2e}")

    seconds = time.perf_counter() - wall
    results = {
        "schema_version": RESULTS_VERSION,
        "config": json_safe(dataclasses.asdict(config)),
        "data": {"train_patient": train_p.name, "test_patient": test_p.name, "train_slices": len(train_idx),
                 "val_slices": len(val_idx), "val_slice_indices": val_idx.tolist(), "test_slices": len(test_p.slices),
                 "train_spacing_mm": list(train_p.image.spacing), "test_spacing_mm": list(test_p.image.spacing)},
        "test": [json_safe(dataclasses.asdict(r)) for r in rows],
        "validation_slab": [json_safe(dataclasses.asdict(r)) for r in val_rows],
        "arms": _arm_summary(rows, val_rows, config),
        "runs": runs,
        "limits": data_limits(train_p, test_p, config),
        "wall_seconds": seconds,
        "versions": {"keras": keras.__version__, "backend": keras.backend.backend()},
    }
    write_scores(rows + val_rows, out, extra={"note": "rows of the test patient, then of the training patient's "
                                                      "held-out validation slab (patient name + '[val slab]')"})
    write_text(out / "results.json", json.dumps(json_safe(results), indent=2, allow_nan=False))
    write_text(out / "report.md", render_report(results))
    _say(config, f"wall time {seconds:.0f}s -> {out / 'report.md'}")
    return results


def _slab_score(mask, patient, val_idx, method):
    from lung_keras.ct_eval import score_volume

    image = patient.image
    sub = dataclasses.replace(image, array=image.array[val_idx], slice_uids=())
    return score_volume(mask[val_idx], patient.reference.array[val_idx], sub, f"{patient.name} [val slab]", method)


def _arm_summary(rows, val_rows, config):
    """Per arm: the test Dice (whole, left, right) and validation-slab Dice, mean and SD over seeds."""
    summary = {}
    for arm in ("threshold", *config.arms, *(f"{a}{CLEANED}" for a in config.arms)):
        entry = {}
        for name, table in (("test", rows), ("val_slab", val_rows)):
            mine = [r for r in table if r.method == arm or r.method.startswith(f"{arm} seed ")]
            for key in ("dice", "dice_left", "dice_right"):
                values = np.array([getattr(r, key) for r in mine], float)
                entry[f"{name}_{key}_mean"] = float(np.mean(values)) if len(values) else float("nan")
                entry[f"{name}_{key}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
            entry["n"] = len(mine)
        summary[arm] = entry
    return summary


def data_limits(train_p, test_p, config):
    """The report's statement of what this experiment cannot show, from the data it ran on."""
    with_lung = int(np.count_nonzero(np.asarray(train_p.reference.array).reshape(len(train_p.reference.array), -1)
                                     .any(axis=1)))
    slices = len(train_p.reference.array)
    lung_note = ("all with lung, so the network never saw a slice without lung" if with_lung == slices
                 else f"{with_lung} with lung")
    return [
        f"One training patient ({train_p.name}, {slices} slices, {lung_note}); slices of one patient are not "
        "independent samples.",
        f"One test patient ({test_p.name}, voxels {np.round(test_p.image.spacing, 2).tolist()} mm): one volume Dice "
        f"per run, not a population estimate; a difference between arms holds for this patient and these "
        f"{config.seeds} seed(s), not in general.",
        "The default test labels (Chest Imaging Platform) are automatic, made by thresholding, not expert contours; "
        "the threshold baseline is scored against labels made by a similar rule, which favours it.",
        "Validation (checkpoint choice) uses a held-out central slab of the training patient, never the test volume.",
    ]


def render_report(results):
    """`report.md`: the table (test patient, then validation slab), runs, settings, data limits, wall time."""
    c, d = results["config"], results["data"]

    def cell(v):
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"

    def pm(entry, key):
        mean, sd = entry.get(f"{key}_mean"), entry.get(f"{key}_sd")
        return cell(mean) + ("" if sd is None or (isinstance(sd, float) and math.isnan(sd)) else f" ± {sd:.4f}")

    lines = [
        "# CT slices: original vs augmented, tested on another patient's volume",
        "",
        f"Train: {d['train_patient']} ({d['train_slices']} slices; {d['val_slices']} held out as a central "
        f"validation slab). Test: {d['test_patient']} ({d['test_slices']} slices), reassembled into its own grid. "
        f"Slices at {c['spacing_mm']} mm on {c['size']}x{c['size']}, lung window {c['window']}; U-Net "
        f"{c['base_filters']} filters, depth {c['depth']}; {c['epochs']} epochs x {c['repeats']} repeats, "
        f"{c['seeds']} seed(s) per arm.",
        "",
        "| method | test Dice | left | right | validation slab Dice | seeds |",
        "|---|---|---|---|---|---|",
    ]
    for arm, e in results["arms"].items():
        lines.append(f"| {arm} | {pm(e, 'test_dice')} | {pm(e, 'test_dice_left')} | {pm(e, 'test_dice_right')} | "
                     f"{pm(e, 'val_slab_dice')} | {e['n'] if arm != 'threshold' else '-'} |")
    lines += ["", f"Mean ± SD over seeds. `{CLEANED}`: the network's volume with only its two largest 3-D regions "
              "kept (`baselines.largest_components`, the threshold rule's step 3). Per run:", "",
              f"| run | test Dice | left | right | test Dice {CLEANED} | best val Dice (slices) | epoch | train s "
              "| saved HU model vs windowed: max abs diff |", "|---|---|---|---|---|---|---|---|---|"]
    tests = {r["method"]: r for r in results["test"]}
    for run in results["runs"]:
        r = tests[f"{run['arm']} seed {run['seed']}"]
        c2 = tests[f"{run['arm']}{CLEANED} seed {run['seed']}"]
        lines.append(f"| {r['method']} | {cell(r['dice'])} | {cell(r['dice_left'])} | {cell(r['dice_right'])} | "
                     f"{cell(c2['dice'])} | {cell(run['best_val_dice'])} | {run['best_epoch']} | {run['train_seconds']:.0f} | "
                     f"{run['saved_vs_windowed_max_abs_diff']:.1e} |")
    lines += ["", "## Data limits", ""] + [f"- {text}" for text in results["limits"]]
    lines += ["", f"Wall time: {results['wall_seconds']:.0f} s ({results['versions']['backend']} backend, Keras "
                  f"{results['versions']['keras']})."]
    return "\n".join(lines) + "\n"


def _say(config, message):
    if config.verbose:
        print(message, flush=True)
