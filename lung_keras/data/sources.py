"""Find image/mask pairs on disk.

Two layouts are understood:

- **NLM layout** (Montgomery / Shenzhen archives as published by NLM): `CXR_png/<id>.png` with
  `ManualMask/leftMask/<id>.png` and `ManualMask/rightMask/<id>.png`; the two lung masks are merged into one.
  The diagnosis comes from the file name (`_0` normal, `_1` abnormal) unless a manifest says otherwise.
- **Folder layout**: `images/<stem>.<ext>` with `masks/<stem>.<ext>` or `masks/<stem>_mask.<ext>`, matched by
  file stem.

Either layout may hold a `manifest.csv` with at least an `id` column (the file stem) and optionally `diagnosis`.
"""

import csv
import dataclasses
import pathlib
import re

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NLM_IMAGE_DIR = "CXR_png"
NLM_MASK_DIRS = ("ManualMask/leftMask", "ManualMask/rightMask")

_NLM_DIAGNOSIS = re.compile(r"_([01])$")


@dataclasses.dataclass(frozen=True)
class Sample:
    """One image and the mask file(s) whose union is its lung mask."""

    id: str
    image_path: pathlib.Path
    mask_paths: tuple
    diagnosis: str = "unknown"


@dataclasses.dataclass
class PairListing:
    """Result of scanning a folder: matched samples and unmatched files."""

    root: pathlib.Path
    layout: str
    samples: list
    images_without_mask: list = dataclasses.field(default_factory=list)
    masks_without_image: list = dataclasses.field(default_factory=list)


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


def read_manifest(root):
    """Read `manifest.csv` into `{id: row}`; empty when absent. Raises `ValueError` naming the file if malformed."""
    path = pathlib.Path(root) / "manifest.csv"
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "id" not in reader.fieldnames:
            raise ValueError(f"{path}: manifest needs an `id` column. Received: columns={reader.fieldnames}")
        return {row["id"]: row for row in reader}


def _diagnosis(stem, manifest):
    row = manifest.get(stem)
    if row and row.get("diagnosis"):
        return row["diagnosis"]
    match = _NLM_DIAGNOSIS.search(stem)
    if match:
        return "normal" if match.group(1) == "0" else "abnormal"
    return "unknown"


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
        images = {p.stem: p for p in _image_files(root / NLM_IMAGE_DIR)}
        mask_sets = []
        for sub in NLM_MASK_DIRS:
            folder = root / sub
            mask_sets.append({p.stem: p for p in _image_files(folder)} if folder.is_dir() else {})
        samples, no_mask = [], []
        for stem, path in images.items():
            masks = [m[stem] for m in mask_sets if stem in m]
            if len(masks) != len(mask_sets):
                no_mask.append(path)
                continue
            samples.append(Sample(stem, path, tuple(masks), _diagnosis(stem, manifest)))
        orphans = sorted(p for m in mask_sets for stem, p in m.items() if stem not in images)
        return PairListing(root, layout, samples, no_mask, orphans)

    images = {p.stem: p for p in _image_files(root / "images")}
    masks = {}
    for p in _image_files(root / "masks"):
        stem = p.stem[: -len("_mask")] if p.stem.endswith("_mask") else p.stem
        masks[stem] = p
    samples = [
        Sample(stem, path, (masks[stem],), _diagnosis(stem, manifest))
        for stem, path in images.items()
        if stem in masks
    ]
    no_mask = [path for stem, path in images.items() if stem not in masks]
    orphans = [path for stem, path in masks.items() if stem not in images]
    return PairListing(root, layout, samples, no_mask, orphans)
