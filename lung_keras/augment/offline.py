"""Offline expansion of a dataset on disk, and a preview grid of a policy's draws.

`expand_dataset` writes `copies` augmented image/mask pairs per source pair, with a `manifest.csv` that
names each new id's source, diagnosis, copy index and the parameters sampled for it; `preview` draws a
policy a few times on a few samples and saves a grid PNG with the mask contours.

Both run the policy's own `get_random_transformation` / `transform_images` /
`transform_segmentation_masks`, the same code path as in-model augmentation, eagerly on any backend.
"""

import json
import pathlib

import numpy as np

from lung_keras._io import atomic_path
from lung_keras._io import write_csv

MANIFEST_COLUMNS = ("id", "source_id", "diagnosis", "copy", "params")
# Per-sample parameter leaves larger than this (noise maps, displacement fields) are not written out
# element by element; the manifest records their shape instead.
_MAX_PARAM_ELEMENTS = 16


# --------------------------------------------------------------------------------------------------
# Reading


def list_pairs(data_dir):
    """`[(id, image_path, mask_paths, diagnosis), ...]` for a dataset folder (sorted by id).

    Uses `lung_keras.data.sources.find_pairs` (NLM layout or `images/` + `masks/`). Two files with one stem
    are an error naming both; images or masks without a partner are left out with a warning naming them.
    """
    import warnings

    from lung_keras.data.sources import find_pairs

    listing = find_pairs(data_dir)
    if listing.duplicate_stems:
        groups = "; ".join(" and ".join(str(p) for p in paths) for _, paths in listing.duplicate_stems)
        raise ValueError(f"Files share one id (stem) in {listing.root}: {groups}. Keep one file per id.")
    unpaired = list(listing.images_without_mask) + list(listing.masks_without_image)
    if unpaired:
        more = f", ... ({len(unpaired)} in all)" if len(unpaired) > 10 else ""
        shown = ", ".join(str(p) for p in unpaired[:10]) + more
        warnings.warn(f"Leaving out {len(unpaired)} file(s) without a partner in {listing.root}: {shown}", stacklevel=2)
    if not listing.samples:
        raise FileNotFoundError(f"No image/mask pairs found in {data_dir}.")
    return sorted(
        ((s.id, pathlib.Path(s.image_path), tuple(s.mask_paths), s.diagnosis) for s in listing.samples),
        key=lambda r: r[0],
    )


def _read_pair(image_path, mask_paths, binarize_threshold=None):
    """`(image uint8 HxWx1, mask uint8 HxWx1 in {0, 255})` by the package's one intensity and mask rules.

    The image is read by `lung_keras.data.read_image` (16-bit files scaled by their range, not clipped) and
    requantized to 8 bits; the mask by `read_masks`. Errors are `ValueError`s naming the file.
    """
    from lung_keras.data.preprocess import read_image
    from lung_keras.data.preprocess import read_masks

    image = np.round(read_image(image_path, channels=1) * 255.0).astype(np.uint8)
    mask = (read_masks(mask_paths, binarize_threshold) * 255).astype(np.uint8)[..., None]
    if image.shape != mask.shape:
        raise ValueError(f"Image {image_path} has shape {image.shape[:2]} but its mask {mask.shape[:2]}.")
    return image, mask


# --------------------------------------------------------------------------------------------------
# Policies and parameters


def resolve_policy(policy, seed=None):
    """A `Compose`, a single layer, or a policy file path (`A.save` JSON/YAML or Keras config JSON)."""
    if isinstance(policy, (str, pathlib.Path)):
        from lung_keras.augment.bridge import load_policy

        return load_policy(policy, seed=seed)
    if hasattr(policy, "get_random_transformation"):
        return policy
    raise ValueError(
        "policy must be a lung_keras.augment layer (e.g. Compose) or a path to a policy file. "
        f"Received: policy={policy!r}"
    )


def _to_numpy(x):
    import keras

    return np.asarray(keras.ops.convert_to_numpy(x))


def _sample_params(transformation, index, batch):
    """Per-sample slice of a (possibly nested) transformation dict as JSON-able values."""
    if transformation is None:
        return None
    if isinstance(transformation, dict):
        return {str(k): _sample_params(v, index, batch) for k, v in transformation.items()}
    if isinstance(transformation, (list, tuple)):
        return [_sample_params(v, index, batch) for v in transformation]
    if isinstance(transformation, (bool, int, float, str)):
        return transformation
    try:
        arr = _to_numpy(transformation)
    except Exception:  # not a tensor: record its text
        return str(transformation)
    if arr.ndim >= 1 and arr.shape[0] == batch:
        arr = arr[index]
    if arr.size > _MAX_PARAM_ELEMENTS:
        return {"omitted_array_shape": list(arr.shape)}
    if arr.dtype == bool:
        return arr.tolist()
    if np.issubdtype(arr.dtype, np.integer):
        return arr.tolist()
    return np.round(arr.astype(np.float64), 6).tolist()


def _name_steps(params, layer):
    """Label each container step's parameters with its layer class (`"transform": "Rotate"`)."""
    children = getattr(layer, "transforms", None)
    if isinstance(params, dict) and isinstance(params.get("steps"), list) and children is not None:
        if len(children) == len(params["steps"]):
            for child, step in zip(children, params["steps"]):
                if isinstance(step, dict):
                    step["transform"] = type(child).__name__
                    _name_steps(step, child)
    return params


def apply_policy(policy, images, masks, seed_generator):
    """Run `policy` on a batch with a sampled transformation; returns `(images, masks, transformation)`."""
    data = {"images": images, "segmentation_masks": masks}
    transformation = policy.get_random_transformation(data, training=True, seed=seed_generator)
    out_images = policy.transform_images(images, transformation)
    out_masks = policy.transform_segmentation_masks(masks, transformation)
    return _to_numpy(out_images), _to_numpy(out_masks), transformation


def _as_uint8(x):
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _write_png(path, array):
    from PIL import Image

    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    Image.fromarray(array).save(path)


# --------------------------------------------------------------------------------------------------
# Expansion


def expand_dataset(
    data_dir, out_dir, copies, policy, seed=None, force=False, progress=True, batch_size=16, binarize_threshold=None
):
    """Write `copies` augmented versions of every image/mask pair of `data_dir` into `out_dir`.

    Writes `out_dir/images/<id>.png`, `out_dir/masks/<id>.png` (8-bit grey; masks 0/255),
    `out_dir/manifest.csv` (`id, source_id, diagnosis, copy, params`; `params` is the JSON of the parameters
    sampled for that copy, large arrays recorded by shape) and `out_dir/policy.json` (the policy, in
    `A.save` format). New ids are `<source_id>_aug<copy>`.

    Args:
        data_dir: dataset folder (`images/` + `masks/`, or the NLM layout).
        out_dir: output folder; must be absent or empty unless `force=True`.
        copies: augmented copies per source pair (>= 1).
        policy: a `lung_keras.augment.Compose` (or one layer) or a policy file (see `bridge.load_policy`).
        seed: integer seed; the same seed, data and policy give the same files.
        force: write into a non-empty `out_dir`, overwriting files of the same names (nothing else is deleted).
        progress: show a progress bar.
        batch_size: pairs augmented per call.
        binarize_threshold: how soft masks are binarized (see `lung_keras.data.read_mask`); None makes them errors.

    Every pair is read (and every unreadable file reported, naming it) before anything is written; if writing
    fails part way, the files this call wrote and the folders it created are removed, so a retry is not blocked.

    Returns:
        The path of the written manifest.

    Example:
        >>> expand_dataset("data/montgomery", "data/montgomery_x4", copies=4,  # doctest: +SKIP
        ...                policy="policy.json", seed=0)
    """
    if not isinstance(copies, int) or isinstance(copies, bool) or copies < 1:
        raise ValueError(f"copies must be an integer >= 1. Received: copies={copies!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1. Received: batch_size={batch_size!r}")
    out = pathlib.Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"Output path exists and is not a folder: {out}")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(
            f"Output folder is not empty: {out}. Nothing was written or deleted; choose an empty folder or pass "
            "force=True (--force) to overwrite files of the same names."
        )
    policy = resolve_policy(policy, seed=seed)
    pairs = list_pairs(data_dir)
    loaded = {sid: _read_pair(ipath, mpaths, binarize_threshold) for sid, ipath, mpaths, _ in pairs}
    created = [p for p in (out, out / "images", out / "masks") if not p.exists()]
    written = []
    try:
        manifest = _write_expansion(out, pairs, loaded, copies, policy, seed, progress, batch_size, written)
    except BaseException:
        for path in reversed(written):
            path.unlink(missing_ok=True)
        for folder in reversed(created):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    return manifest


def _write_expansion(out, pairs, loaded, copies, policy, seed, progress, batch_size, written):
    """The writing half of `expand_dataset`; appends every path it writes to `written`."""
    import keras

    from lung_keras.augment.bridge import save_policy

    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    written.append(out / "policy.json")
    try:
        save_policy(policy, out / "policy.json")
    except ValueError:  # a policy Albumentations cannot express: keep the Keras config instead
        save_policy(policy, out / "policy.json", data_format="keras")

    generator = keras.random.SeedGenerator(seed)
    bar = keras.utils.Progbar(len(pairs) * copies, unit_name="pair") if progress else None
    rows = []
    done = 0
    # Group by shape so each batch stacks; order stays deterministic (sorted ids, then copy index).
    jobs = [(pair, k) for k in range(copies) for pair in pairs]
    start = 0
    while start < len(jobs):
        chunk = jobs[start : start + batch_size]
        start += len(chunk)
        batch = [loaded[sid] for (sid, _, _, _), _ in chunk]
        by_shape = {}
        for i, (image, _) in enumerate(batch):
            by_shape.setdefault(image.shape, []).append(i)
        for indices in by_shape.values():
            images = np.stack([batch[i][0] for i in indices])
            masks = np.stack([batch[i][1] for i in indices])
            out_images, out_masks, transformation = apply_policy(policy, images, masks, generator)
            out_images, out_masks = _as_uint8(out_images), _as_uint8(out_masks)
            for j, i in enumerate(indices):
                (sid, _, _, diagnosis), k = chunk[i]
                new_id = f"{sid}_aug{k:03d}"
                for folder, array in (("images", out_images[j]), ("masks", out_masks[j])):
                    written.append(out / folder / f"{new_id}.png")
                    _write_png(written[-1], array)
                params = _name_steps(_sample_params(transformation, j, len(indices)), policy)
                rows.append(
                    {
                        "id": new_id,
                        "source_id": sid,
                        "diagnosis": diagnosis,
                        "copy": k,
                        "params": json.dumps(params, sort_keys=True),
                    }
                )
        done += len(chunk)
        if bar is not None:
            bar.update(done)
    rows.sort(key=lambda r: (r["source_id"], r["copy"]))
    manifest = out / "manifest.csv"
    written.append(manifest)
    write_csv(manifest, rows, MANIFEST_COLUMNS)
    return manifest


# --------------------------------------------------------------------------------------------------
# Preview


# Short names of transforms and parameters in the preview's captions.
_SHORT_NAMES = {"RandomBrightnessContrast": "BrightCon", "ElasticTransform": "Elastic", "GaussNoise": "Noise",
                "GaussianBlur": "Blur", "RandomGamma": "Gamma", "HorizontalFlip": "HFlip", "VerticalFlip": "VFlip",
                "CoarseDropout": "Dropout"}
_PARAM_NAMES = {"rotate": "rot", "angle": "rot", "scale_x": "sx", "scale_y": "sy", "shear_x": "shx",
                "shear_y": "shy", "translate_x": "tx", "translate_y": "ty", "alpha": "a", "beta": "b",
                "gamma": "g", "sigma": "s", "std": "std"}
_SKIPPED_PARAMS = {"apply", "transform", "matrix", "kernel", "ksize", "mean", "noise"}


def _number(value):
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def describe_draw(params):
    """One line per applied transform of a draw's sampled parameters, e.g. ``"Affine rot=3.48 sx=0.99"``.

    `params` is what the manifest records (`_sample_params` with `_name_steps`); steps whose `apply` is false
    are left out, arrays are left out; nothing applied reads ``"identity"``.
    """
    steps = params.get("steps") if isinstance(params, dict) else None
    if isinstance(params, dict) and params.get("apply") is False:
        return "identity"
    if steps is None:
        steps = [params] if isinstance(params, dict) else []
    lines = []
    for step in steps:
        if not isinstance(step, dict) or step.get("apply") is False:
            continue
        if isinstance(step.get("steps"), list):  # a nested container
            inner = describe_draw(step)
            if inner != "identity":
                lines.extend(inner.splitlines())
            continue
        name = str(step.get("transform", "step"))
        keys = [k for k in step if k not in _SKIPPED_PARAMS and isinstance(step[k], (int, float))
                and not isinstance(step[k], bool)]
        order = list(_PARAM_NAMES)
        keys.sort(key=lambda k: order.index(k) if k in order else len(order))
        values = [f"{_PARAM_NAMES.get(k, k)}={_number(step[k])}" for k in keys]
        head = _SHORT_NAMES.get(name, name)
        # At most two values per line, so captions stay within their column.
        chunks = [values[i : i + 2] for i in range(0, len(values), 2)] or [[]]
        lines.append(" ".join([head, *chunks[0]]))
        lines.extend("  " + " ".join(chunk) for chunk in chunks[1:])
    return "\n".join(lines) or "identity"


def preview(policy, data_dir, out_png, num_samples=4, num_draws=6, seed=0, binarize_threshold=None):
    """Save a grid PNG: one row per sample, its original then `num_draws` draws, mask contours on each.

    Columns are titled ("original" with the sample id, "draw k"), and under each draw are the parameters
    sampled for it (`describe_draw`: one line per applied transform).

    Args:
        policy: a `lung_keras.augment.Compose` (or one layer) or a policy file path.
        data_dir: dataset folder.
        out_png: the PNG to write.
        num_samples: rows (samples picked with `seed`).
        num_draws: augmented columns per row.
        seed: seeds both the choice of samples and the draws.
        binarize_threshold: how soft masks are binarized (see `lung_keras.data.read_mask`); None makes them errors.

    Returns:
        The path of the PNG.
    """
    import keras
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from lung_keras.viz import overlay_contours

    for name, value in (("num_samples", num_samples), ("num_draws", num_draws)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1. Received: {name}={value!r}")
    policy = resolve_policy(policy, seed=seed)
    pairs = list_pairs(data_dir)
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(pairs), size=min(num_samples, len(pairs)), replace=False).tolist())
    loaded = [_read_pair(pairs[i][1], pairs[i][2], binarize_threshold) for i in chosen]
    shape = loaded[0][0].shape
    if any(image.shape != shape for image, _ in loaded):  # one batch per sample when shapes differ
        groups = [[i] for i in range(len(loaded))]
    else:
        groups = [list(range(len(loaded)))]
    generator = keras.random.SeedGenerator(seed)
    draws = [[None] * num_draws for _ in loaded]
    for d in range(num_draws):
        for group in groups:
            images = np.stack([loaded[i][0] for i in group])
            masks = np.stack([loaded[i][1] for i in group])
            out_images, out_masks, transformation = apply_policy(policy, images, masks, generator)
            for j, i in enumerate(group):
                params = _name_steps(_sample_params(transformation, j, len(group)), policy)
                draws[i][d] = (_as_uint8(out_images[j]), _as_uint8(out_masks[j]), describe_draw(params))
    rows, cols = len(loaded), num_draws + 1
    lines = max(len(text.splitlines()) for row in draws for _, _, text in row)
    cell = 2.2
    fig = Figure(figsize=(cell * cols, (cell + 0.35 + 0.14 * lines) * rows), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    for r, (image, mask) in enumerate(loaded):
        overlay_contours(axes[r][0], image, mask, fill_alpha=0.0, linewidth=1.0)
        axes[r][0].set_title(f"original\n{pairs[chosen[r]][0]}", fontsize=9)
        for d in range(num_draws):
            aug_image, aug_mask, text = draws[r][d]
            ax = axes[r][d + 1]
            overlay_contours(ax, aug_image, aug_mask, fill_alpha=0.0, linewidth=1.0)
            ax.set_title(f"draw {d + 1}", fontsize=9)
            # The parameters sampled for this draw, under it (axis_off hides xlabel, so a text box).
            ax.text(0.5, -0.03, text, transform=ax.transAxes, ha="center", va="top", fontsize=7,
                    family="monospace", linespacing=1.1)
    fig.tight_layout(pad=0.4, h_pad=0.5)
    out_png = pathlib.Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp)
    return out_png
