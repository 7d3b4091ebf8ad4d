"""Dataset checks: one report listing every problem, shared by `lung-keras data check` and the loader."""

import dataclasses
import pathlib

import numpy as np

from lung_keras.data.preprocess import BITS_12
from lung_keras.data.preprocess import EMPTY_MASK_DETAIL
from lung_keras.data.preprocess import MaskError
from lung_keras.data.preprocess import check_binarize_threshold
from lung_keras.data.preprocess import intensity_scale
from lung_keras.data.preprocess import read_image_file
from lung_keras.data.preprocess import read_mask
from lung_keras.data.sources import find_pairs

# Problems that make a pair unusable (loading refuses them unless asked to skip).
FATAL = (
    "unreadable",
    "image without mask",
    "mask without image",
    "duplicate stem",
    "size mismatch",
    "mask not binary",
    "empty mask",
)
# Problems worth a warning that do not stop training.
WARNING = ("constant image", "12-bit image")


@dataclasses.dataclass(frozen=True)
class Problem:
    path: str
    kind: str
    detail: str = ""

    @property
    def fatal(self):
        return self.kind in FATAL

    def __str__(self):
        level = "error" if self.fatal else "warning"
        return f"{level}: {self.path}: {self.kind}" + (f" ({self.detail})" if self.detail else "")


@dataclasses.dataclass
class DataReport:
    """All problems found in a dataset folder, and the samples that passed."""

    root: pathlib.Path
    layout: str
    num_samples: int
    problems: list
    valid_samples: list

    @property
    def fatal(self):
        return [p for p in self.problems if p.fatal]

    @property
    def ok(self):
        return not self.fatal

    def format(self):
        lines = [f"{self.root} ({self.layout} layout): {self.num_samples} pairs, {len(self.valid_samples)} valid"]
        lines += [f"  {p}" for p in self.problems]
        n_err, n_warn = len(self.fatal), len(self.problems) - len(self.fatal)
        lines.append(f"{n_err} error(s), {n_warn} warning(s)")
        return "\n".join(lines)


def _unreadable(path, error):
    return Problem(str(path), "unreadable", str(error).split(": ", 1)[-1])


def _check_image(path):
    """`(image or None, problems)` for one image file, by the intensity rule `read_image` uses."""
    try:
        image = read_image_file(path)
    except (ValueError, OSError) as error:
        return None, [_unreadable(path, error)]
    try:
        scale = intensity_scale(image)
    except ValueError as error:
        return None, [_unreadable(path, error)]
    problems = []
    if image.min() == image.max():
        problems.append(Problem(str(path), "constant image", f"every pixel is {image.min()}"))
    if scale == BITS_12:
        problems.append(
            Problem(str(path), "12-bit image", f"16-bit file with maximum {image.max()} <= 4095; scaled by 1/4095")
        )
    return image, problems


def _check_masks(sample, image, binarize_threshold):
    """`(union mask or None, problems)` of a sample's mask files, by the mask rule `read_mask` uses."""
    problems = []
    union, union_empty, checked = None, True, 0
    for path in sample.mask_paths:
        try:
            mask = read_mask(path, binarize_threshold, allow_empty=True)
        except MaskError as error:
            problems.append(Problem(str(path), error.kind, error.detail))
            continue
        except (ValueError, OSError) as error:
            problems.append(_unreadable(path, error))
            continue
        if image is not None and mask.shape[:2] != image.shape[:2]:
            problems.append(
                Problem(
                    str(path),
                    "size mismatch",
                    f"mask {mask.shape[1]}x{mask.shape[0]}, image {image.shape[1]}x{image.shape[0]}",
                )
            )
            continue
        checked += 1
        union_empty = union_empty and not mask.any()
        if image is not None:  # same size as the image, so the parts line up
            union = mask if union is None else np.maximum(union, mask)
    # One empty part of a multi-file mask is allowed (one lung absent); a mask with no lung pixel at all is not.
    if checked == len(sample.mask_paths) and union_empty:
        problems.append(Problem(", ".join(str(p) for p in sample.mask_paths), "empty mask", EMPTY_MASK_DETAIL))
    return (union if checked == len(sample.mask_paths) and not problems else None), problems


def check_sample(sample, binarize_threshold=None):
    """Decode one pair once and check it: `(raw image, union mask, problems)`, the arrays None when a problem
    is fatal. The checks are `check_dataset`'s, so the streaming loader (`build_store`) reports what
    `lung-keras data check` reports."""
    image, problems = _check_image(sample.image_path)
    mask, mask_problems = _check_masks(sample, image, binarize_threshold)
    problems += mask_problems
    if image is None or mask is None or any(p.fatal for p in problems):
        return None, None, problems
    return image, mask, problems


def pairing_problems(listing):
    """The problems of a folder's pairing (`find_pairs`), found without decoding a pixel: duplicate stems and
    unmatched images or masks."""
    problems = [
        Problem(", ".join(map(str, paths)), "duplicate stem", f"{len(paths)} files share the id {key!r}; keep one")
        for key, paths in listing.duplicate_stems
    ]
    problems += [Problem(str(p), "image without mask") for p in listing.images_without_mask]
    problems += [Problem(str(p), "mask without image") for p in listing.masks_without_image]
    return problems


def check_dataset(root, pixel_checks=True, binarize_threshold=None):
    """Check a dataset folder and return a `DataReport` listing every problem (it never raises for bad files).

    Images are checked by the intensity rule and masks by the mask rule that loading uses (`read_image`,
    `read_mask`): a pair that passes here loads with a non-empty mask.

    Args:
        root: dataset folder (NLM or folder layout).
        pixel_checks: decode every file and check sizes and values (set False to check the pairing only).
        binarize_threshold: how soft masks are binarized (see `read_mask`); None makes them errors.

    Raises:
        ValueError: for a malformed `manifest.csv` (duplicate ids, unknown diagnosis values), naming it.
    """
    binarize_threshold = check_binarize_threshold(binarize_threshold)
    listing = find_pairs(root)
    problems = pairing_problems(listing)
    samples = [dataclasses.replace(s, binarize_threshold=binarize_threshold) for s in listing.samples]
    valid = []
    for sample in samples:
        if not pixel_checks:
            valid.append(sample)
            continue
        _, _, found = check_sample(sample, binarize_threshold)
        problems += found
        if not any(p.fatal for p in found):
            valid.append(sample)
    return DataReport(listing.root, listing.layout, len(listing.samples), problems, valid)


class DatasetError(ValueError):
    """Raised when a dataset has fatal problems; `report` holds the full `DataReport`."""

    def __init__(self, report):
        self.report = report
        fatal = report.fatal
        shown = "\n".join(f"  {p}" for p in fatal[:50])
        more = f"\n  ... and {len(fatal) - 50} more" if len(fatal) > 50 else ""
        super().__init__(
            f"Dataset {report.root} has {len(fatal)} problem(s):\n{shown}{more}\n"
            "Fix these files, or pass skip_invalid=True (`--skip-invalid`) to leave them out with a warning."
        )
