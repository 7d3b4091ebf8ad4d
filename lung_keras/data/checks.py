"""Dataset checks: one report listing every problem, shared by `lung-keras data check` and the loader."""

import dataclasses
import pathlib

import numpy as np

from lung_keras.data.preprocess import read_image_file
from lung_keras.data.preprocess import to_grayscale
from lung_keras.data.sources import find_pairs

# Problems that make a pair unusable (loading refuses them unless asked to skip).
FATAL = ("unreadable", "image without mask", "mask without image", "size mismatch", "mask not binary")
# Problems worth a warning that do not stop training.
WARNING = ("empty mask", "constant image")


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


def _check_mask_values(path, mask):
    values = np.unique(to_grayscale(mask))
    if len(values) > 2:
        shown = ", ".join(str(v) for v in values[:6]) + (", ..." if len(values) > 6 else "")
        return Problem(str(path), "mask not binary", f"{len(values)} levels: {shown}")
    return None


def check_dataset(root, pixel_checks=True):
    """Check a dataset folder and return a `DataReport` listing every problem (it never raises for bad files).

    Args:
        root: dataset folder (NLM or folder layout).
        pixel_checks: decode every file and check sizes and values (set False to check the pairing only).
    """
    listing = find_pairs(root)
    problems = [Problem(str(p), "image without mask") for p in listing.images_without_mask]
    problems += [Problem(str(p), "mask without image") for p in listing.masks_without_image]
    valid = []
    for sample in listing.samples:
        if not pixel_checks:
            valid.append(sample)
            continue
        found = []
        try:
            image = read_image_file(sample.image_path)
        except (ValueError, OSError) as error:
            found.append(Problem(str(sample.image_path), "unreadable", str(error).split(": ", 1)[-1]))
            image = None
        merged = None
        for path in sample.mask_paths:
            try:
                mask = read_image_file(path)
            except (ValueError, OSError) as error:
                found.append(Problem(str(path), "unreadable", str(error).split(": ", 1)[-1]))
                continue
            if image is not None and mask.shape[:2] != image.shape[:2]:
                found.append(
                    Problem(
                        str(path),
                        "size mismatch",
                        f"mask {mask.shape[1]}x{mask.shape[0]}, image {image.shape[1]}x{image.shape[0]}",
                    )
                )
                continue
            bad = _check_mask_values(path, mask)
            if bad:
                found.append(bad)
                continue
            fg = to_grayscale(mask) > 0
            merged = fg if merged is None else (merged | fg)
        if image is not None and image.min() == image.max():
            found.append(Problem(str(sample.image_path), "constant image", f"every pixel is {image.min()}"))
        if merged is not None and not found and not merged.any():
            label = ", ".join(str(p) for p in sample.mask_paths)
            found.append(Problem(label, "empty mask", "no foreground pixel"))
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
