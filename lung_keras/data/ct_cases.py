"""Several CT patients in one folder: a `manifest.csv`, the cases it lists, loading them, and checking them.

The layout:

```
my_ct/
  manifest.csv          patient,image,mask[,diagnosis]
  p001/dicom/...        a DICOM series folder (the RTSTRUCT may sit in it too)
  p001/RS.p001.dcm      an RT Structure Set ...
  p002/ct.nrrd          ... or a volume (.nrrd, .nhdr, .nii, .nii.gz)
  p002/lungs.nrrd       with a label-map volume on its grid
```

Paths in the manifest are relative to the folder (absolute paths are kept). A mask ending in `.dcm` is an
RTSTRUCT (its lung ROIs chosen by a name pattern, default `lung`); anything else is a label map read by
`read_label_mask`. `diagnosis` is one of `normal`, `abnormal`, `unknown` (empty: `unknown`).

`check_ct` lists every problem of a CT folder, a lone DICOM series or a lone volume in the `DataReport` format
of the X-ray check (`lung-keras data check` prints either), reading each case exactly as `load_ct_case` does:
a case the check passes loads.
"""

import csv
import dataclasses
import pathlib
import warnings

from lung_keras.data.checks import DataReport
from lung_keras.data.checks import Problem
from lung_keras.data.ct import CTError
from lung_keras.data.ct import read_label_mask
from lung_keras.data.ct import read_rtstruct_mask
from lung_keras.data.ct import read_volume
from lung_keras.data.sources import DIAGNOSES
from lung_keras.data.sources import normalize_diagnosis

MANIFEST = "manifest.csv"
COLUMNS = ("patient", "image", "mask")
VOLUME_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz")


@dataclasses.dataclass(frozen=True)
class CTCase:
    """One patient of a CT folder: an image volume and its lung mask.

    Attributes:
        patient: the patient id (unique in its manifest); also `id`, so `split_dataset` and `split_patients`
            split cases like samples.
        image: a DICOM series folder or a volume file.
        mask: an RTSTRUCT `.dcm` file or a label-map volume on the image's grid.
        diagnosis: `normal`, `abnormal` or `unknown`.
        roi_pattern: the RTSTRUCT ROI name pattern (ignored for label maps).
        labels: `read_label_mask`'s `labels` for a label map (None: nonzero is lung).
        low_byte: `read_label_mask`'s `low_byte`.
        source: `manifest.csv:<line>` (or the path given), for messages.
    """

    patient: str
    image: pathlib.Path
    mask: pathlib.Path
    diagnosis: str = "unknown"
    roi_pattern: str = "lung"
    labels: dict = None
    low_byte: bool = False
    source: str = ""

    @property
    def id(self):
        return self.patient

    @property
    def mask_kind(self):
        """`"rtstruct"` (a `.dcm` file) or `"labels"` (a label-map volume)."""
        return "rtstruct" if self.mask.name.lower().endswith(".dcm") else "labels"


def is_ct_folder(root):
    """True when `root` holds a `manifest.csv` with a `patient` column (the CT layout; X-ray manifests have `id`)."""
    path = pathlib.Path(root) / MANIFEST
    if not path.is_file():
        return False
    with open(path, newline="", encoding="utf-8-sig") as f:
        header = next(csv.reader(f), [])
    return "patient" in [h.strip().lower() for h in header]


def find_ct_cases(root, roi_pattern="lung", labels=None, low_byte=False):
    """The cases a CT folder's `manifest.csv` lists, in manifest order.

    Args:
        root: the folder holding `manifest.csv`.
        roi_pattern: RTSTRUCT ROI name pattern for every case (regular expression, case-insensitive).
        labels: `read_label_mask`'s `labels` for label-map masks (None: nonzero is lung).
        low_byte: `read_label_mask`'s `low_byte` for label-map masks.

    Raises:
        CTError: listing every problem with its manifest line: no manifest, a missing column, an empty patient
            id, a patient on two lines, a file that does not exist, an image of unknown format, a diagnosis
            outside `normal`/`abnormal`/`unknown`, or no case at all.
    """
    cases, problems = _parse_manifest(root, roi_pattern, labels, low_byte)
    if problems:
        raise CTError(f"{pathlib.Path(root) / MANIFEST}: {len(problems)} problem(s):\n"
                      + "\n".join(f"  {p.path}: {p.detail}" for p in problems), kind=problems[0].kind)
    return cases


def _parse_manifest(root, roi_pattern, labels, low_byte):
    """`(cases, problems)`: every row that names existing files, and a `CTProblem` for each bad row."""
    root = pathlib.Path(root)
    path = root / MANIFEST
    if not path.is_file():
        return [], [CTProblem(str(path), "bad manifest", "no manifest.csv (columns patient,image,mask[,diagnosis])")]
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        fields = [h.strip().lower() for h in reader.fieldnames or []]
        missing = [c for c in COLUMNS if c not in fields]
        if missing:
            return [], [CTProblem(str(path), "bad manifest", f"missing column(s) {', '.join(missing)}; header is "
                                  f"{','.join(reader.fieldnames or [])} (expected patient,image,mask[,diagnosis])")]
        rows = [(reader.line_num, {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}) for row in reader]
    cases, problems, seen = [], [], {}
    for line, row in rows:
        where = f"{path}:{line}"
        patient = row["patient"]
        if not patient:
            problems.append(CTProblem(where, "bad manifest", "empty patient id"))
            continue
        if patient in seen:
            problems.append(CTProblem(where, "bad manifest", f"patient {patient!r} already listed on line {seen[patient]}"))
            continue
        seen[patient] = line
        diagnosis = normalize_diagnosis(row.get("diagnosis") or "unknown")
        if diagnosis is None:
            problems.append(CTProblem(where, "bad manifest", f"diagnosis {row['diagnosis']!r} is not one of "
                                      f"{', '.join(DIAGNOSES)}"))
            continue
        found = []
        for column in ("image", "mask"):
            if not row[column]:
                problems.append(CTProblem(where, "bad manifest", f"empty {column} path for patient {patient!r}"))
                continue
            file = root / row[column]
            if not file.exists():
                problems.append(CTProblem(where, "missing file", f"{column} {file} of patient {patient!r} does not exist"))
            elif column == "image" and not (file.is_dir() or file.name.lower().endswith(VOLUME_SUFFIXES)):
                problems.append(CTProblem(where, "bad manifest", f"image {file} of patient {patient!r} is neither a "
                                          f"DICOM folder nor a volume ({', '.join(VOLUME_SUFFIXES)})"))
            else:
                found.append(file)
        if len(found) == 2:
            cases.append(CTCase(patient, found[0], found[1], diagnosis, roi_pattern, labels, low_byte, where))
    if not rows and not problems:
        problems.append(CTProblem(str(path), "bad manifest", "no case listed"))
    return cases, problems


def load_ct_case(case, keep_sides=True, missing_slices="error"):
    """`(image, mask)` `Volume`s of one case: the image in HU, the mask uint8 on its grid.

    Args:
        case: a `CTCase`.
        keep_sides: keep left/right lung labels (`LEFT_LUNG`, `RIGHT_LUNG`) when the source has them, else 1.
        missing_slices: for an RTSTRUCT, `"error"` or `"skip"` contours on slices absent from the series
            (see `read_rtstruct_mask`).

    Raises:
        CTError: from the readers, naming the file; `kind` says which problem it is.
    """
    image = read_volume(case.image)
    if case.mask_kind == "rtstruct":
        mask = read_rtstruct_mask(case.mask, image, pattern=case.roi_pattern, keep_sides=keep_sides,
                                  missing_slices=missing_slices)
    else:
        mask = read_label_mask(case.mask, labels=case.labels, low_byte=case.low_byte, image=image)
        if not keep_sides:
            mask = mask.with_array((mask.array > 0).astype("uint8"))
    return image, mask


# ------------------------------------------------------------------------------------------------ checking

#: Problems of a CT source that stop it from loading (each `CTError.kind`, plus the manifest's own).
CT_FATAL = ("unreadable", "missing slices", "inconsistent spacing", "contour on no slice", "mask off grid",
            "empty mask", "no matching roi", "bad manifest", "missing file")


@dataclasses.dataclass(frozen=True)
class CTProblem(Problem):
    """A `Problem` of a CT source; `severity` says whether it stops loading (`"error"`) or not (`"warning"`)."""

    severity: str = "error"

    @property
    def fatal(self):
        return self.severity == "error"


def ct_layout(path):
    """`"ct manifest"` (a CT folder), `"dicom series"`, `"ct volume"`, or None for anything else (an X-ray folder)."""
    path = pathlib.Path(path)
    if path.is_file():
        return "ct volume" if path.name.lower().endswith(VOLUME_SUFFIXES) else None
    if not path.is_dir():
        return None
    if is_ct_folder(path):
        return "ct manifest"
    files = sorted(p for p in path.iterdir() if p.is_file())
    if any(p.suffix.lower() == ".dcm" or _has_dicom_magic(p) for p in files[:20]):
        return "dicom series"
    return None


def _has_dicom_magic(file):
    """True for a DICOM Part 10 file (`DICM` after the 128-byte preamble), whatever its name."""
    with open(file, "rb") as f:
        return f.read(132)[128:] == b"DICM"


def check_ct(path, roi_pattern="lung", missing_slices="error", labels=None, low_byte=False):
    """Check a CT folder (manifest), one DICOM series folder or one volume file; return a `DataReport`.

    Each case is read as `load_ct_case` reads it, and every problem is listed (it never raises for bad data):
    missing slices and inconsistent slice spacing (naming the files around the gap), contours referencing a
    slice that is not in the series, contours or label maps off the image grid, masks without lung, manifest
    lines naming missing files or repeating a patient. A DICOM folder holding an RTSTRUCT is checked with it.

    Args:
        path: the folder or file.
        roi_pattern, labels, low_byte: how masks are read (see `find_ct_cases`).
        missing_slices: `"error"`: a contour on a slice absent from the series is an error (loading with the
            default fails); `"skip"`: it is a warning (loading with `missing_slices="skip"` drops it).

    Raises:
        ValueError: `path` is no CT source (`ct_layout` is None), or a bad `missing_slices`.
    """
    if missing_slices not in ("error", "skip"):
        raise ValueError(f"`missing_slices` must be 'error' or 'skip'. Received: missing_slices={missing_slices!r}")
    path = pathlib.Path(path)
    layout = ct_layout(path)
    if layout is None:
        raise ValueError(f"{path}: not a CT source (a folder with manifest.csv, a DICOM series folder or a volume)")
    if layout == "ct manifest":
        cases, problems = _parse_manifest(path, roi_pattern, labels, low_byte)
        num = len(cases) + sum(p.path.startswith(f"{path / MANIFEST}:") for p in problems)
    else:
        cases, problems, num = [_lone_case(path, roi_pattern, labels, low_byte)], [], 1
        if cases[0].mask is None:
            cases, problems = [], _image_problems(path)
            return DataReport(path, layout, num, problems, [] if problems else [path])
    valid = []
    for case in cases:
        found = _case_problems(case, missing_slices)
        problems += found
        if not any(p.fatal for p in found):
            valid.append(case)
    return DataReport(path, layout, num, problems, valid)


def _lone_case(path, roi_pattern, labels, low_byte):
    """A DICOM folder as a case, its RTSTRUCT (if one sits in it) as the mask; a volume alone has no mask."""
    mask = None
    if path.is_dir():
        for file in sorted(path.glob("*.dcm")):
            if _is_rtstruct(file):
                mask = file
                break
    return CTCase(path.name, path, mask, roi_pattern=roi_pattern, labels=labels, low_byte=low_byte)


def _is_rtstruct(file):
    import pydicom

    try:
        return str(pydicom.dcmread(file, stop_before_pixels=True, specific_tags=["Modality"]).get("Modality")) == "RTSTRUCT"
    except Exception:  # not DICOM at all: the series reader skips it too
        return False


def _image_problems(path):
    try:
        read_volume(path)
    except CTError as error:
        return [_problem(error, path)]
    return []


def _case_problems(case, missing_slices):
    """The problems of one case, read as `load_ct_case` reads it."""
    where = case.source  # the manifest line, named after the file's own message
    try:
        image = read_volume(case.image)
    except CTError as error:
        return [_problem(error, case.image, where)]
    if case.mask is None:
        return []
    problems = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if case.mask_kind == "rtstruct":
                read_rtstruct_mask(case.mask, image, pattern=case.roi_pattern, missing_slices="skip")
            else:
                read_label_mask(case.mask, labels=case.labels, low_byte=case.low_byte, image=image)
    except CTError as error:
        return [_problem(error, case.mask, where)]
    for w in caught:
        text = str(w.message)
        if "skipped" in text and "contour" in text:
            detail = text.split(": ", 1)[-1] + (f" ({where})" if where else "")
            problems.append(CTProblem(str(case.mask), "contour on no slice", detail,
                                      "error" if missing_slices == "error" else "warning"))
    return problems


def _problem(error, path, where=None):
    detail = str(error)
    prefix = f"{path}: "
    detail = detail[len(prefix):] if detail.startswith(prefix) else detail
    kind = getattr(error, "kind", "unreadable")
    detail = detail[len(kind) + 2:] if detail.startswith(f"{kind}: ") else detail
    if where:
        detail += f" ({where})"
    return CTProblem(str(path), kind, detail)
