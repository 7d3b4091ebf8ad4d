"""Find image/mask pairs on disk.

Two layouts are understood:

- **NLM layout** (Montgomery / Shenzhen archives as published by NLM): `CXR_png/<id>.png` with
  `ManualMask/leftMask/<id>.png` and `ManualMask/rightMask/<id>.png`; the two lung masks are merged into one.
  The diagnosis comes from the file name (`_0` normal, `_1` abnormal) unless a manifest says otherwise.
- **Folder layout**: `images/<stem>.<ext>` with `masks/<stem>.<ext>` or `masks/<stem>_mask.<ext>`, matched by
  file stem.

Either layout may hold a `manifest.csv` with at least an `id` column (the file stem) and optionally `diagnosis`
and `patient` (rows sharing a patient are one unit of the train/val/test split: `Sample.group`; CT slices
written by `export_slices` have it). Each id may appear once. Diagnosis values are compared without case and surrounding spaces (`Normal ` is
`normal`) and must be one of `DIAGNOSES` (`normal`, `abnormal`, `unknown`); an empty cell falls back to the file
name's `_0`/`_1` suffix. No synonyms are guessed (`TB`, `healthy` are errors listing the allowed values).

Two files with one stem in a folder (`a.png` and `a.jpg`, or `masks/a.png` and `masks/a_mask.png`) are
ambiguous: both are reported (`PairListing.duplicate_stems`) and neither is used.
"""

import csv
import dataclasses
import pathlib
import re

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NLM_IMAGE_DIR = "CXR_png"
NLM_MASK_DIRS = ("ManualMask/leftMask", "ManualMask/rightMask")

_NLM_DIAGNOSIS = re.compile(r"_([01])$")
#: Diagnosis values a manifest may hold (compared without case and surrounding spaces).
DIAGNOSES = ("normal", "abnormal", "unknown")


@dataclasses.dataclass(frozen=True)
class Sample:
    """One image and the mask file(s) whose union is its lung mask."""

    id: str
    image_path: pathlib.Path
    mask_paths: tuple
    diagnosis: str = "unknown"
    #: how `read_mask` binarizes soft masks of this sample (None: soft masks are errors); set by `load_dataset`.
    binarize_threshold: float = None
    #: the unit that must stay in one split, e.g. a CT patient (`split_dataset` keeps a group's samples in one
    #: split); None: the sample is its own unit.
    group: str = None


@dataclasses.dataclass
class PairListing:
    """Result of scanning a folder: matched samples and unmatched files."""

    root: pathlib.Path
    layout: str
    samples: list
    images_without_mask: list = dataclasses.field(default_factory=list)
    masks_without_image: list = dataclasses.field(default_factory=list)
    #: `(id, (path, path, ...))` for files sharing one stem in one folder (`a.png`, `a.jpg`); none is paired
    duplicate_stems: list = dataclasses.field(default_factory=list)


def detect_layout(root):
    """Return `"nlm"` or `"folder"` for a dataset root, or raise `FileNotFoundError` naming what is missing."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Dataset folder does not exist: {root}")
    if (root / NLM_IMAGE_DIR).is_dir():
        return "nlm"
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return "folder"
    # Archives often unpack into one sub-folder (e.g. MontgomerySet/).
    children = [c for c in root.iterdir() if c.is_dir() and not c.name.startswith((".", "__"))]
    if len(children) == 1:
        return detect_layout(children[0])
    raise FileNotFoundError(
        f"No dataset found in {root}: expected either `{NLM_IMAGE_DIR}/` with `ManualMask/leftMask/` and "
        "`ManualMask/rightMask/` (NLM layout) or `images/` and `masks/` (folder layout)."
    )


def _resolve_root(root):
    root = pathlib.Path(root)
    if (root / NLM_IMAGE_DIR).is_dir() or ((root / "images").is_dir() and (root / "masks").is_dir()):
        return root
    children = [c for c in root.iterdir() if c.is_dir() and not c.name.startswith((".", "__"))]
    if len(children) == 1:
        return _resolve_root(children[0])
    return root


def _image_files(folder):
    return sorted(
        p for p in pathlib.Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def _files_by_stem(folder, strip_suffix=None):
    """`({stem: path}, {stem: (path, path, ...)})`: files of `folder` by stem, and the groups sharing a stem."""
    groups = {}
    for p in _image_files(folder):
        stem = p.stem
        if strip_suffix and stem.endswith(strip_suffix):
            stem = stem[: -len(strip_suffix)]
        groups.setdefault(stem, []).append(p)
    unique = {stem: paths[0] for stem, paths in groups.items() if len(paths) == 1}
    duplicates = {stem: tuple(paths) for stem, paths in groups.items() if len(paths) > 1}
    return unique, duplicates


def normalize_diagnosis(value):
    """`value` without case and surrounding spaces if it is one of `DIAGNOSES`, else None."""
    key = str(value).strip().lower()
    return key if key in DIAGNOSES else None


def read_manifest(root):
    """Read `manifest.csv` into `{id: row}` (diagnosis normalized); empty when absent.

    Raises:
        ValueError: naming the file, for a missing `id` column, an id on more than one row (with the ids and
            line numbers) or a diagnosis outside `DIAGNOSES` (with the lines and the allowed values).
    """
    path = pathlib.Path(root) / "manifest.csv"
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "id" not in reader.fieldnames:
            raise ValueError(f"{path}: manifest needs an `id` column. Received: columns={reader.fieldnames}")
        rows, lines = {}, {}
        bad_diagnosis = []
        for row in reader:
            line = reader.line_num
            key = (row.get("id") or "").strip()
            lines.setdefault(key, []).append(line)
            raw = row.get("diagnosis")
            if raw is not None and raw.strip():
                diagnosis = normalize_diagnosis(raw)
                if diagnosis is None:
                    bad_diagnosis.append(f"line {line} (id {key!r}): {raw!r}")
                row = dict(row, diagnosis=diagnosis)
            rows.setdefault(key, row)
    duplicates = {key: found for key, found in lines.items() if len(found) > 1}
    if duplicates:
        listed = "; ".join(f"id {key!r} on lines {', '.join(map(str, found))}" for key, found in duplicates.items())
        raise ValueError(f"{path}: duplicate ids: {listed}. Each id must appear on one row.")
    if bad_diagnosis:
        more = f"; ... and {len(bad_diagnosis) - 20} more" if len(bad_diagnosis) > 20 else ""
        shown = "; ".join(bad_diagnosis[:20]) + more
        raise ValueError(
            f"{path}: unknown diagnosis values: {shown}. Allowed values: {', '.join(DIAGNOSES)} (case and surrounding "
            "spaces are ignored; leave the cell empty to use the file name's _0/_1 suffix)."
        )
    return rows


def _diagnosis(stem, manifest):
    row = manifest.get(stem)
    if row and row.get("diagnosis"):
        return row["diagnosis"]
    match = _NLM_DIAGNOSIS.search(stem)
    if match:
        return "normal" if match.group(1) == "0" else "abnormal"
    return "unknown"


def _group(stem, manifest):
    """The split unit of `stem` from the manifest's `patient` column (e.g. slices written by `export_slices`)."""
    row = manifest.get(stem)
    value = (row.get("patient") or "").strip() if row else ""
    return value or None


def find_pairs(root):
    """Scan a dataset folder and return a `PairListing` of matched samples and orphans.

    Args:
        root: dataset folder in the NLM or the folder layout (or a folder holding exactly one of those).

    Example:
        >>> listing = find_pairs("data/montgomery")  # doctest: +SKIP
        >>> len(listing.samples), listing.layout
        (138, 'folder')
    """
    layout = detect_layout(root)
    root = _resolve_root(root)
    manifest = read_manifest(root)
    if layout == "nlm":
        images, duplicates = _files_by_stem(root / NLM_IMAGE_DIR)
        groups = list(duplicates.items())
        mask_sets = []
        for sub in NLM_MASK_DIRS:
            folder = root / sub
            found, dup = _files_by_stem(folder) if folder.is_dir() else ({}, {})
            mask_sets.append(found)
            groups += dup.items()
            duplicates.update(dup)
        ambiguous = set(duplicates)
        samples, no_mask = [], []
        for stem, path in images.items():
            if stem in ambiguous:
                continue
            masks = [m[stem] for m in mask_sets if stem in m]
            if len(masks) != len(mask_sets):
                no_mask.append(path)
                continue
            samples.append(
                Sample(stem, path, tuple(masks), _diagnosis(stem, manifest), group=_group(stem, manifest))
            )
        orphans = sorted(p for m in mask_sets for stem, p in m.items() if stem not in images and stem not in ambiguous)
        return PairListing(root, layout, samples, no_mask, orphans, groups)

    images, duplicates = _files_by_stem(root / "images")
    masks, mask_duplicates = _files_by_stem(root / "masks", strip_suffix="_mask")
    groups = list(duplicates.items()) + list(mask_duplicates.items())
    ambiguous = set(duplicates) | set(mask_duplicates)
    samples = [
        Sample(stem, path, (masks[stem],), _diagnosis(stem, manifest), group=_group(stem, manifest))
        for stem, path in images.items()
        if stem in masks and stem not in ambiguous
    ]
    no_mask = [path for stem, path in images.items() if stem not in masks and stem not in ambiguous]
    orphans = [path for stem, path in masks.items() if stem not in images and stem not in ambiguous]
    return PairListing(root, layout, samples, no_mask, orphans, groups)
