"""CT volumes to 2-D training slices and back: in-plane resampling, axial slices, patient splits, reassembly.

The steps, each a function:

1. `in_plane_grid(volume, spacing, size)`: the slice grid, a `SliceGrid` (the source geometry and the
   in-plane map from slice pixels to source pixels: `source = scale * slice + shift` per axis, both centred).
2. `slice_volume(image, mask, ...)` / `make_slices(cases, ...)`: resample (linear for HU, nearest for masks),
   window to [0, 1] (`window_hu`, the `Windowing` layer's arithmetic), cut axial slices with optional
   neighbouring slices as channels, keep or skip slices without lung. A `SliceSet` holds the arrays and, per
   slice, its patient and its index in the source volume.
3. `split_patients(...)`: a seeded train/val/test split of patients (`split_dataset`'s rule applied to
   patients), so no slice of a test patient is in training.
4. `SliceSet.to_store()` (an in-memory `ArrayStore`, what `lung_keras.train.train(config, store=...)` takes;
   each slice's `Sample.group` is its patient, so `train` splits it by patient) or `export_slices(...)` (an
   `images/` + `masks/` PNG folder every folder tool reads).
5. `slices_to_volume(predictions, slice_index, grid)`: undo the resampling and put predictions back on the
   source grid (spacing, origin, direction), for `write_nifti` and volume Dice.
"""

import dataclasses
import pathlib

import numpy as np

from lung_keras._windowing import LUNG_WINDOW
from lung_keras._windowing import check_windows
from lung_keras._windowing import window_hu
from lung_keras.data.ct import Volume
from lung_keras.data.ct import check_same_grid

#: HU given to slice pixels outside the source image (air); the window maps it to 0 like the scanner's outside.
AIR_HU = -1024.0


@dataclasses.dataclass(frozen=True)
class SliceGrid:
    """The grid of one volume's slices: the source geometry and the in-plane map to it.

    Slice pixel `(r, c)` sits at source pixel `(scale[0] * r + shift[0], scale[1] * c + shift[1])` (fractional
    row, column), on the same axial plane; the slice's centre is the source's centre.

    Attributes:
        reference: the source `Volume`'s geometry (its array is a zero-size-in-memory placeholder).
        size: `(height, width)` of the slices.
        scale: `(row, col)` source pixels per slice pixel (slice spacing / source spacing).
        shift: `(row, col)` source position of slice pixel `(0, 0)`.
    """

    reference: Volume
    size: tuple
    scale: tuple
    shift: tuple

    @property
    def spacing(self):
        """`(row, col)` slice pixel size in mm."""
        return tuple(float(s * k) for s, k in zip(self.reference.spacing[1:], self.scale))

    @property
    def identity(self):
        """True when slices are the source's pixels unchanged."""
        return tuple(self.size) == tuple(self.reference.shape[1:]) and np.allclose(self.scale, 1) and \
            np.allclose(self.shift, 0)


def in_plane_grid(volume, spacing=None, size=None):
    """The `SliceGrid` of `volume` at an in-plane `spacing` (mm) and/or a `size` (pixels).

    - neither: the source pixels (identity).
    - `spacing` only: the source's field of view at that spacing (`round(n * source_spacing / spacing)` pixels).
    - `size` only: the source's field of view in `size` pixels (spacing `n * source_spacing / size`).
    - both: pixels of `spacing` mm, `size` of them, centred on the source's centre (a field of view larger than
      the source is padded, a smaller one crops).

    Args:
        volume: the source `Volume`.
        spacing: a number or `(row, col)` mm.
        size: an int or `(height, width)`.
    """
    n = np.asarray(volume.shape[1:], float)
    source = np.asarray(volume.spacing[1:], float)
    if spacing is not None:
        spacing = np.broadcast_to(np.asarray(spacing, float), (2,))
        if not np.all(spacing > 0):
            raise ValueError(f"`spacing` must be > 0 mm. Received: spacing={spacing.tolist()}")
    if size is not None:
        size = np.broadcast_to(np.asarray(size, int), (2,))
        if not np.all(size > 0):
            raise ValueError(f"`size` must be > 0 pixels. Received: size={size.tolist()}")
    if spacing is None and size is None:
        out, scale = n.astype(int), np.ones(2)
    elif spacing is None:
        out, scale = size, n / size
    else:
        scale = spacing / source
        out = size if size is not None else np.maximum(np.round(n / scale), 1).astype(int)
    shift = (n - 1) / 2 - scale * (np.asarray(out, float) - 1) / 2
    placeholder = volume.with_array(np.broadcast_to(np.uint8(0), volume.shape))
    return SliceGrid(placeholder, tuple(int(v) for v in out), tuple(float(v) for v in scale),
                     tuple(float(v) for v in shift))


def resample_in_plane(array, grid, order, fill=0.0):
    """`(z, y, x)` source `array` on `grid`'s slices: `(z, height, width)`, `order` 1 linear or 0 nearest."""
    if grid.identity:
        return np.asarray(array)
    return _affine_in_plane(np.asarray(array), grid.scale, grid.shift, grid.size, array.shape[1:], order, fill)


def _affine_in_plane(values, scale, shift, out_size, in_size, order, fill):
    """`values` `(N, rows, cols)` sampled at `scale * index + shift` per in-plane axis, `(N, *out_size)`.

    A sample within half a pixel beyond the edge pixels' centres is still inside the edge pixel (it takes its
    value); farther out it is `fill`. (scipy's `constant` mode would already fill from the edge centres on.)
    """
    from scipy import ndimage

    out = ndimage.affine_transform(
        values, np.diag([1.0, *scale]), offset=(0.0, *shift), output_shape=(len(values), *out_size), order=order,
        mode="nearest", prefilter=False)
    for axis, (k, b, n_out, n_in) in enumerate(zip(scale, shift, out_size, in_size), start=1):
        where = k * np.arange(n_out) + b
        outside = (where < -0.5 - 1e-6) | (where > n_in - 0.5 + 1e-6)
        if outside.any():
            index = [slice(None)] * 3
            index[axis] = outside
            out[tuple(index)] = fill
    return out


@dataclasses.dataclass
class SliceSet:
    """Axial slices of one or more patients, ready for a 2-D network.

    Attributes:
        images: `(N, H, W, C)` float32: windowed to [0, 1] (or HU when `windows` is None); channels are
            `2 * neighbours + 1` slices (from `z - neighbours` to `z + neighbours`) per window, window after window.
        masks: `(N, H, W, 1)` uint8 (1 lung, or `LEFT_LUNG`/`RIGHT_LUNG` with sides), or None without masks.
        patients: `(N,)` the patient of each slice.
        slice_index: `(N,)` each slice's index `z` in its patient's source volume.
        grids: `{patient: SliceGrid}`, to put predictions back (`slices_to_volume`).
        diagnosis: `{patient: diagnosis}`.
        windows: the `(level, width)` windows applied, or None (HU).
        neighbours: slices on each side taken as channels.
    """

    images: np.ndarray
    masks: np.ndarray
    patients: np.ndarray
    slice_index: np.ndarray
    grids: dict
    diagnosis: dict
    windows: tuple = (LUNG_WINDOW,)
    neighbours: int = 0

    def __len__(self):
        return len(self.slice_index)

    @property
    def ids(self):
        """`<patient>_z<index>` per slice (index zero-padded to 3 digits): unique, sorted like the rows."""
        return [f"{p}_z{int(k):03d}" for p, k in zip(self.patients, self.slice_index)]

    @property
    def patient_ids(self):
        """The patients, in row order."""
        return list(dict.fromkeys(self.patients.tolist()))

    def rows_of(self, patient):
        """Row numbers of `patient`'s slices, in slice order."""
        return np.flatnonzero(self.patients == patient)

    def subset(self, patients):
        """The slices of `patients` (ids or `CTCase`s), in this set's row order."""
        wanted = {getattr(p, "patient", p) for p in patients}
        unknown = wanted - set(self.grids)
        if unknown:
            raise KeyError(f"Patient(s) {sorted(unknown)} not in this slice set ({sorted(self.grids)}).")
        rows = np.flatnonzero(np.isin(self.patients, sorted(wanted)))
        return dataclasses.replace(
            self, images=self.images[rows], masks=None if self.masks is None else self.masks[rows],
            patients=self.patients[rows], slice_index=self.slice_index[rows],
            grids={p: g for p, g in self.grids.items() if p in wanted},
            diagnosis={p: d for p, d in self.diagnosis.items() if p in wanted})

    def to_store(self, root=None):
        """These slices as an in-memory `ArrayStore` (one `Sample` per slice, id `<patient>_z<index>`).

        Each sample's `group` is its patient, so `lung_keras.train.train(config, store=...)` (which trains on it
        when `config.image_size` is the slices' size) splits it by patient: no slice of a validation or test
        patient is in training, and the run's `config.json` lists the patients of each split
        (`split_groups`). Masks become binary (any lung label is 1). Score the test patients' volumes with
        `slices_to_volume` and volume Dice.
        """
        from lung_keras.data.checks import DataReport
        from lung_keras.data.sources import Sample
        from lung_keras.data.store import ArrayStore

        self._need_masks("to_store")
        root = pathlib.Path(root) if root is not None else pathlib.Path("ct-slices")
        samples = [Sample(i, pathlib.Path(self.grids[p].reference.source), (), self.diagnosis.get(p, "unknown"),
                          group=str(p)) for i, p in zip(self.ids, self.patients)]
        order = np.argsort(self.ids, kind="stable")  # ArrayStore rows are in id order
        samples = [samples[i] for i in order]
        report = DataReport(root, "ct slices", len(samples), [], samples)
        return ArrayStore(root, samples, report, tuple(self.images.shape[1:3]), int(self.images.shape[-1]),
                          np.ascontiguousarray(self.images[order], np.float32),
                          (self.masks[order] > 0).astype(np.uint8))

    def _need_masks(self, what):
        if self.masks is None:
            raise ValueError(f"{what} needs masks; these slices were made without a mask.")


def slice_volume(image, mask=None, patient="", spacing=None, size=None, windows=(LUNG_WINDOW,), neighbours=0,
                 empty_slices="keep", keep_sides=False, fill=AIR_HU, diagnosis="unknown"):
    """Axial slices of one CT (and its mask) as a `SliceSet`.

    Args:
        image: the CT `Volume` in HU.
        mask: its lung mask `Volume` on the same grid (`CTError` otherwise), or None (slices to predict on).
        patient: the patient id recorded on every slice.
        spacing, size: the in-plane grid (see `in_plane_grid`); HU are resampled linearly, masks by nearest
            neighbour. Slices are never resampled along z.
        windows: `(level, width)` windows to [0, 1] (`window_hu`), defaults to the lung window; None keeps HU
            (for a model that starts with a `Windowing` layer).
        neighbours: `k` slices on each side as extra channels (`2k + 1` per window); at the first and last
            slice the edge slice is repeated.
        empty_slices: `"keep"` every slice, or `"skip"` slices whose mask has no lung (needs a mask).
        keep_sides: keep `LEFT_LUNG`/`RIGHT_LUNG` labels; otherwise masks are 0/1.
        fill: HU outside the source image (when the slice grid reaches beyond it); default air, -1024.
        diagnosis: `normal`, `abnormal` or `unknown`, recorded for the patient.
    """
    if empty_slices not in ("keep", "skip"):
        raise ValueError(f"`empty_slices` must be 'keep' or 'skip'. Received: empty_slices={empty_slices!r}")
    if int(neighbours) != neighbours or neighbours < 0:
        raise ValueError(f"`neighbours` must be an integer >= 0. Received: neighbours={neighbours!r}")
    if windows is not None:
        windows = tuple(check_windows(windows, f"windows={windows!r}"))
    if mask is not None:
        check_same_grid(image, mask)
    elif empty_slices == "skip":
        raise ValueError("empty_slices='skip' needs a mask to tell which slices hold lung. Received: mask=None")
    grid = in_plane_grid(image, spacing, size)
    hu = resample_in_plane(np.asarray(image.array, np.float32), grid, order=1, fill=fill)
    labels = None
    if mask is not None:
        labels = resample_in_plane(np.asarray(mask.array, np.uint8), grid, order=0, fill=0)
        labels = labels if keep_sides else (labels > 0).astype(np.uint8)
    keep = np.arange(hu.shape[0]) if empty_slices == "keep" else np.flatnonzero(labels.reshape(len(labels), -1).any(1))
    images = _with_neighbours(hu, keep, int(neighbours))  # (N, H, W, 2k+1) HU
    if windows is not None:
        images = window_hu(images, windows)
    return SliceSet(
        images=np.ascontiguousarray(images, np.float32),
        masks=None if labels is None else np.ascontiguousarray(labels[keep, ..., None], np.uint8),
        patients=np.asarray([str(patient)] * len(keep), dtype=object),
        slice_index=keep.astype(np.int64),
        grids={str(patient): grid},
        diagnosis={str(patient): diagnosis},
        windows=windows,
        neighbours=int(neighbours),
    )


def _with_neighbours(volume, keep, k):
    """`(len(keep), H, W, 2k+1)`: slices `z - k .. z + k` of each kept `z`, indices clipped to the volume."""
    offsets = np.arange(-k, k + 1)
    index = np.clip(keep[:, None] + offsets[None, :], 0, volume.shape[0] - 1)
    return np.moveaxis(volume[index], 1, -1)


def make_slices(cases, spacing=None, size=None, windows=(LUNG_WINDOW,), neighbours=0, empty_slices="keep",
                keep_sides=False, fill=AIR_HU, missing_slices="error"):
    """Slices of several `CTCase`s (`find_ct_cases`) in one `SliceSet`, one patient after the other.

    Every case is read with `load_ct_case` (`missing_slices` as there) and cut with `slice_volume` (the other
    arguments as there). Give a `size` when the cases' fields of view differ, so all slices have one shape.
    """
    from lung_keras.data.ct_cases import load_ct_case

    parts = []
    for case in cases:
        image, mask = load_ct_case(case, keep_sides=keep_sides, missing_slices=missing_slices)
        parts.append(slice_volume(image, mask, case.patient, spacing, size, windows, neighbours, empty_slices,
                                  keep_sides, fill, case.diagnosis))
    return concatenate_slices(parts)


def concatenate_slices(parts):
    """One `SliceSet` of several (distinct patients, one slice size, same windows and neighbours)."""
    parts = list(parts)
    if not parts:
        raise ValueError("No slice set to concatenate: the list is empty.")
    shapes = {p.images.shape[1:] for p in parts}
    if len(shapes) > 1:
        raise ValueError(f"Slices of different shapes {sorted(shapes)}: pass one `size` for every case.")
    seen = [q for p in parts for q in p.grids]
    if len(seen) != len(set(seen)):
        raise ValueError(f"A patient appears in two slice sets: {sorted(q for q in set(seen) if seen.count(q) > 1)}")
    if len({(p.windows, p.neighbours) for p in parts}) > 1 or len({p.masks is None for p in parts}) > 1:
        raise ValueError("Slice sets made with different windows, neighbours or masks cannot be joined.")
    return SliceSet(
        images=np.concatenate([p.images for p in parts]),
        masks=None if parts[0].masks is None else np.concatenate([p.masks for p in parts]),
        patients=np.concatenate([p.patients for p in parts]),
        slice_index=np.concatenate([p.slice_index for p in parts]),
        grids={k: v for p in parts for k, v in p.grids.items()},
        diagnosis={k: v for p in parts for k, v in p.diagnosis.items()},
        windows=parts[0].windows,
        neighbours=parts[0].neighbours,
    )


@dataclasses.dataclass(frozen=True)
class _Patient:
    id: str
    diagnosis: str = "unknown"


def split_patients(cases, fractions=(0.7, 0.15, 0.15), seed=0, stratify=True):
    """Seeded train/val/test split of patients: every slice of a patient falls in its patient's split.

    The rule is `split_dataset`'s, applied to patients: shuffled by `seed`, rounded per diagnosis when
    `stratify`, each patient in exactly one split.

    Args:
        cases: `CTCase`s, patient ids, or a `SliceSet`.
        fractions: `(train, val, test)` summing to 1.
        seed: the same seed and patients give the same split.
        stratify: keep each diagnosis' share equal across splits.

    Returns:
        `{"train": ..., "val": ..., "test": ...}`: lists of the `cases` given (cases or ids), or `SliceSet`s
        for a `SliceSet` (None for a split without patients, e.g. `val` with fractions `(0.5, 0, 0.5)`).
    """
    from lung_keras.data.dataset import split_dataset

    if isinstance(cases, SliceSet):
        items = [_Patient(p, cases.diagnosis.get(p, "unknown")) for p in cases.patient_ids]
    else:
        items = [c if hasattr(c, "id") else _Patient(str(c)) for c in cases]
    ids = split_dataset(items, fractions, seed=seed, stratify=stratify)
    if isinstance(cases, SliceSet):
        return {name: cases.subset(part) if part else None for name, part in ids.items()}
    by_id = {getattr(c, "id", str(c)): c for c in cases}
    return {name: [by_id[i] for i in part] for name, part in ids.items()}


def slices_to_volume(predictions, slice_index, reference, order=0, fill=0):
    """Put 2-D slice predictions back on the source grid: a `Volume` with the source's geometry.

    Args:
        predictions: `(N, H, W)` or `(N, H, W, 1)` labels or probabilities of one patient's slices.
        slice_index: `(N,)` each prediction's slice index in the source volume (`SliceSet.slice_index`).
        reference: the patient's `SliceGrid` (`SliceSet.grids[patient]`), or the source `Volume` when the
            slices were not resampled.
        order: interpolation undoing the in-plane resampling: 0 nearest (labels, the default), 1 linear
            (probabilities; threshold afterwards).
        fill: value of slices without a prediction and of source pixels outside the slice grid.

    Returns:
        A `Volume` on the source grid (shape, spacing, origin, direction, slice UIDs), dtype of `predictions`.
    """
    grid = reference if isinstance(reference, SliceGrid) else in_plane_grid(reference)
    values = np.asarray(predictions)
    if values.ndim == 4 and values.shape[-1] == 1:
        values = values[..., 0]
    slice_index = np.asarray(slice_index, np.int64).reshape(-1)
    if values.ndim != 3 or values.shape[1:] != tuple(grid.size) or len(values) != len(slice_index):
        raise ValueError(f"`predictions` must be (N, {grid.size[0]}, {grid.size[1]}[, 1]) for N slice indices. "
                         f"Received: predictions of shape {np.shape(predictions)}, {len(slice_index)} slice indices")
    shape = grid.reference.shape
    if len(slice_index) and (slice_index.min() < 0 or slice_index.max() >= shape[0]):
        raise ValueError(f"`slice_index` must lie in [0, {shape[0]}). Received: {slice_index.min()} .. {slice_index.max()}")
    dtype = np.uint8 if values.dtype == np.bool_ else values.dtype
    out = np.full(shape, fill, dtype)
    if len(values):
        out[slice_index] = _back_in_plane(values.astype(dtype), grid, order, fill)
    return grid.reference.with_array(out)


def _back_in_plane(values, grid, order, fill):
    """`(N, H, W)` slice values on the source's `(N, rows, cols)` pixels: the inverse of `resample_in_plane`."""
    if grid.identity:
        return values
    scale, shift = np.asarray(grid.scale), np.asarray(grid.shift)
    return _affine_in_plane(values, 1 / scale, -shift / scale, grid.reference.shape[1:], grid.size, order, fill)


def export_slices(slices, folder):
    """Write `slices` as an `images/` + `masks/` PNG folder with a `manifest.csv`; return the folder.

    File names are `<patient>_z<index>.png`; images are the windowed slices as 8-bit grey (1 channel) or RGB
    (3 channels: `neighbours=1`, or three windows), masks 0/255, and `manifest.csv` has `id`, `diagnosis`,
    `patient`, `slice`. Every folder tool (`train --data`, `evaluate`, `compare`, `data check`) reads it, and
    the `patient` column keeps each patient's slices in one split (`Sample.group`). The
    8-bit PNGs round the [0, 1] windowed values to 1/255 (about 6 HU in the lung window).

    Raises:
        ValueError: slices without masks or windows, with a channel count other than 1 or 3, or a non-empty
            `folder`.
    """
    from PIL import Image

    slices._need_masks("export_slices")
    if slices.windows is None:
        raise ValueError("export_slices writes windowed slices; these are in HU (windows=None).")
    channels = slices.images.shape[-1]
    if channels not in (1, 3):
        raise ValueError(f"PNG slices need 1 or 3 channels. Received: {channels} channels "
                         f"({len(slices.windows)} window(s), neighbours={slices.neighbours})")
    folder = pathlib.Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise ValueError(f"{folder} is not empty; export slices into a new folder.")
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(exist_ok=True)
    lines = ["id,diagnosis,patient,slice"]
    for row, name in enumerate(slices.ids):
        pixels = np.round(slices.images[row] * 255).astype(np.uint8)
        Image.fromarray(pixels[..., 0] if channels == 1 else pixels).save(folder / "images" / f"{name}.png")
        Image.fromarray(np.where(slices.masks[row, ..., 0] > 0, 255, 0).astype(np.uint8)).save(
            folder / "masks" / f"{name}.png")
        patient = slices.patients[row]
        lines.append(f"{name},{slices.diagnosis.get(patient, 'unknown')},{patient},{int(slices.slice_index[row])}")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return folder

