"""Volumes back: CT lung masks scored per patient and per lung, tables written, masks out as NIfTI or RTSTRUCT.

The code behind `lung-keras evaluate --method threshold` and the volume scores of `recipes/ct_slices.py`:

- `score_volume(prediction, reference, image)`: a `VolumeScores` row: whole-lung volume Dice, and Dice per
  lung when the reference has both sides (the prediction's sides come from `baselines.split_sides`), with
  both lung volumes in mL;
- `write_scores(rows, folder)`: `scores.csv` (one row per patient and method) and `scores.json` (versioned,
  with the mean per method);
- `ct_cases(data, mask)`: the cases of a CT folder with a `manifest.csv` (`lung_keras.data.find_ct_cases`),
  or one volume / DICOM folder with its mask (RTSTRUCT or label map, read by `lung_keras.data.load_ct_case`);
- `evaluate_threshold(cases, out_dir)`: runs `baselines.threshold_lungs` on each case, writes each predicted
  mask as NIfTI on the source grid (`lung_keras.data.write_nifti`), optionally as an RTSTRUCT referencing the
  DICOM series (`write_rtstruct`), and the score tables.
"""

import dataclasses
import json
import math
import pathlib
import warnings

import numpy as np

from lung_keras._io import json_safe
from lung_keras._io import write_csv
from lung_keras._io import write_text

#: Written as `schema_version` in `scores.json`.
SCORES_VERSION = 1
MASK_SUFFIX = "_mask.nii.gz"
RTSTRUCT_SUFFIX = "_mask_rtstruct.dcm"


@dataclasses.dataclass(frozen=True)
class VolumeScores:
    """Scores of one predicted lung mask against its reference, on one patient's grid.

    Attributes:
        patient: the case's name.
        method: what made the prediction (`"threshold"`, a network arm...).
        dice: whole-lung volume Dice (any nonzero voxel is lung).
        dice_left, dice_right: Dice of the patient's left / right lung; NaN (null in JSON, empty in CSV) when
            the reference does not tell the sides apart.
        predicted_ml, reference_ml: lung volumes in millilitres (voxel count times voxel volume).
        shape: the `(z, y, x)` grid scored on.
    """

    patient: str
    method: str
    dice: float
    dice_left: float
    dice_right: float
    predicted_ml: float
    reference_ml: float
    shape: tuple

    def row(self):
        """The CSV row: numbers rounded to 6 digits, NaN as an empty cell."""
        out = dataclasses.asdict(self)
        out["shape"] = "x".join(str(int(s)) for s in self.shape)
        for key, value in out.items():
            if isinstance(value, float):
                out[key] = "" if math.isnan(value) else round(value, 6)
        return out


def has_sides(reference):
    """True when a reference mask labels both lungs (`LEFT_LUNG` and `RIGHT_LUNG` both present, nothing else).

    A whole-lung mask is 0/1, and 1 is also `LEFT_LUNG`: a mask counts as two-sided only when 2 occurs too.
    """
    from lung_keras.data.ct import LEFT_LUNG
    from lung_keras.data.ct import RIGHT_LUNG

    values = set(np.unique(np.asarray(getattr(reference, "array", reference))).tolist())
    return values - {0} == {LEFT_LUNG, RIGHT_LUNG}


def score_volume(prediction, reference, image, patient="", method=""):
    """Score a predicted lung mask against a reference on `image`'s grid.

    Args:
        prediction: `(z, y, x)` array or `Volume`; nonzero is lung. Its own side labels are not trusted: the
            sides are assigned by `lung_keras.baselines.split_sides` (patient geometry), so a prediction that
            never names sides and one that does are scored alike.
        reference: `(z, y, x)` mask on the same grid; 0/1 (whole lung) or `LEFT_LUNG`/`RIGHT_LUNG`.
        image: the `Volume` both lie on (for the sides and the voxel volume).
        patient, method: the row's labels.

    Returns:
        A `VolumeScores`.
    """
    from lung_keras.baselines import split_sides
    from lung_keras.baselines import volume_dice
    from lung_keras.data.ct import LEFT_LUNG
    from lung_keras.data.ct import RIGHT_LUNG

    pred = np.asarray(getattr(prediction, "array", prediction))
    ref = np.asarray(getattr(reference, "array", reference))
    if pred.shape != ref.shape or pred.shape != tuple(image.shape):
        raise ValueError(f"Prediction, reference and image must share one grid. Received: prediction.shape="
                         f"{pred.shape}, reference.shape={ref.shape}, image.shape={tuple(image.shape)}")
    left = right = float("nan")
    if has_sides(ref):
        sides = split_sides(pred, image)
        left = volume_dice(sides, ref, label=LEFT_LUNG)
        right = volume_dice(sides, ref, label=RIGHT_LUNG)
    voxel_ml = float(np.prod(image.spacing)) / 1000.0
    return VolumeScores(
        patient=str(patient),
        method=str(method),
        dice=volume_dice(pred, ref),
        dice_left=left,
        dice_right=right,
        predicted_ml=int(np.count_nonzero(pred)) * voxel_ml,
        reference_ml=int(np.count_nonzero(ref)) * voxel_ml,
        shape=tuple(int(s) for s in pred.shape),
    )


def summarize_scores(rows):
    """Per method: the number of patients and the mean of each Dice over the patients that have it."""
    out = {}
    for method in dict.fromkeys(r.method for r in rows):
        mine = [r for r in rows if r.method == method]
        entry = {"n": len(mine)}
        for key in ("dice", "dice_left", "dice_right"):
            values = [getattr(r, key) for r in mine if not math.isnan(getattr(r, key))]
            entry[f"mean_{key}"] = float(np.mean(values)) if values else None
        out[method] = entry
    return out


def write_scores(rows, folder, name="scores", extra=None):
    """Write `rows` (`VolumeScores`) as `<name>.csv` and `<name>.json` into `folder`; return both paths.

    The JSON holds `schema_version`, `rows` (NaN as null), `summary` (`summarize_scores`) and the `extra`
    dict's keys (settings, wall time...).
    """
    if not rows:
        raise ValueError("No scores to write. Received: rows=[]")
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = folder / f"{name}.csv", folder / f"{name}.json"
    write_csv(csv_path, [r.row() for r in rows])
    record = {
        "schema_version": SCORES_VERSION,
        **(extra or {}),
        "rows": [json_safe(dataclasses.asdict(r)) for r in rows],
        "summary": summarize_scores(rows),
    }
    write_text(json_path, json.dumps(record, indent=2, allow_nan=False))
    return csv_path, json_path


def read_scores(path):
    """The `VolumeScores` rows of a `scores.json` (null Dice back to NaN); a missing field raises `KeyError`."""
    record = json.loads(pathlib.Path(path).read_text())
    if record.get("schema_version") != SCORES_VERSION:
        raise ValueError(f"{path}: unknown scores schema. Received: schema_version={record.get('schema_version')!r}")
    names = [f.name for f in dataclasses.fields(VolumeScores)]
    rows = []
    for r in record["rows"]:
        values = {k: r[k] for k in names}
        for k in ("dice", "dice_left", "dice_right"):
            values[k] = float("nan") if values[k] is None else float(values[k])
        values["shape"] = tuple(values["shape"])
        rows.append(VolumeScores(**values))
    return rows


# ------------------------------------------------------------------------------------------- reading cases


def ct_cases(data, mask=None, roi_pattern="lung", left_labels=None, right_labels=None, low_byte=False):
    """The `lung_keras.data.CTCase`s to evaluate: the cases of a CT folder's `manifest.csv`
    (`find_ct_cases`), or `data` itself (a DICOM series folder or a volume file) with `mask` (an RTSTRUCT
    `.dcm` or a label map; `None`: no reference, the prediction is written but not scored).

    Args:
        roi_pattern: RTSTRUCT ROI name pattern.
        left_labels, right_labels: label-map values of the left / right lung (e.g. `(9, 10, 11)` and
            `(12, 13, 14)` for the Chest Imaging Platform); both `None`: any nonzero value is lung.
        low_byte: take `value & 0xFF` of label maps first (the Chest Imaging Platform's region byte).
    """
    from lung_keras.data import LEFT_LUNG
    from lung_keras.data import RIGHT_LUNG
    from lung_keras.data import CTCase
    from lung_keras.data import find_ct_cases
    from lung_keras.data import is_ct_folder

    if (left_labels is None) != (right_labels is None):
        raise ValueError(f"Pass both left and right labels or neither. Received: left_labels={left_labels}, "
                         f"right_labels={right_labels}")
    labels = None if left_labels is None else {LEFT_LUNG: tuple(left_labels), RIGHT_LUNG: tuple(right_labels)}
    data = pathlib.Path(data)
    if is_ct_folder(data):
        if mask is not None:
            raise ValueError(f"{data} has a manifest.csv naming each case's mask; do not pass a mask too. "
                             f"Received: mask={mask}")
        return find_ct_cases(data, roi_pattern=roi_pattern, labels=labels, low_byte=low_byte)
    if not data.exists():
        raise FileNotFoundError(f"{data}: no such file or folder")
    if mask is not None and not pathlib.Path(mask).exists():
        raise FileNotFoundError(f"{mask}: no such file")
    return [CTCase(patient_name(data), data, None if mask is None else pathlib.Path(mask), roi_pattern=roi_pattern,
                   labels=labels, low_byte=low_byte, source=str(data))]


def patient_name(path):
    """A case's name from its image path: a volume file's name without suffixes, a DICOM folder's name, or the
    folder above it when the folder has a generic name (`.../ct_acrin_flt_breast_001/dicom` ->
    `ct_acrin_flt_breast_001`)."""
    path = pathlib.Path(path)
    name = path.name if path.is_dir() else path.name.split(".")[0]
    if path.is_dir() and name.lower() in ("dicom", "dcm", "ct", "images"):
        return path.parent.name
    return name


# ----------------------------------------------------------------------------------------------- threshold


def evaluate_threshold(cases, out_dir, threshold=-320.0, write_masks=True, missing_slices="error", rtstruct=False,
                       verbose=True):
    """Segment each case with `baselines.threshold_lungs`, score it, write masks and tables into `out_dir`.

    Writes `<patient>_mask.nii.gz` per case (0 background, `LEFT_LUNG` 1, `RIGHT_LUNG` 2 by
    `baselines.split_sides`, on the source grid) unless `write_masks=False`, and `scores.csv` / `scores.json`
    for the cases with a reference (read by `lung_keras.data.load_ct_case`, sides kept; `missing_slices` as
    there). With `rtstruct=True`, a case read from a DICOM series also gets `<patient>_mask_rtstruct.dcm`
    (`write_rtstruct`, referencing that series); other cases are told they cannot (a warning).

    Returns:
        `{"out", "n", "rows": [VolumeScores...], "summary", "masks": [paths]}`.
    """
    from lung_keras.baselines import split_sides
    from lung_keras.baselines import threshold_lungs
    from lung_keras.data import load_ct_case
    from lung_keras.data import read_volume
    from lung_keras.data import write_nifti

    out_dir = pathlib.Path(out_dir)
    rows, masks = [], []
    for case in cases:
        if case.mask is None:
            image, reference = read_volume(case.image), None
        else:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                image, reference = load_ct_case(case, keep_sides=True, missing_slices=missing_slices)
            for w in caught:  # skipped contours: said once, naming the case
                warnings.warn(f"{case.patient}: {w.message}", stacklevel=2)
        prediction = split_sides(threshold_lungs(image, threshold=threshold), image)
        if write_masks:
            masks.append(write_nifti(image.with_array(prediction), out_dir / f"{case.patient}{MASK_SUFFIX}"))
        if rtstruct and image.slice_uids:
            masks.append(write_rtstruct(image.with_array(prediction), out_dir / f"{case.patient}{RTSTRUCT_SUFFIX}"))
        elif rtstruct:
            warnings.warn(f"{case.patient}: no RTSTRUCT written: {case.image} is not a DICOM series", stacklevel=2)
        if reference is None:
            continue
        rows.append(score_volume(prediction, reference, image, patient=case.patient, method="threshold"))
        if verbose:
            print(_row_line(rows[-1]))
    summary = {"out": str(out_dir), "n": len(rows), "rows": rows, "masks": [str(m) for m in masks],
               "summary": summarize_scores(rows) if rows else {}}
    if rows:
        extra = {"method": "threshold", "threshold_hu": threshold, "missing_slices": missing_slices,
                 "cases": [{"patient": c.patient, "image": str(c.image), "mask": str(c.mask)} for c in cases]}
        summary["tables"] = [str(p) for p in write_scores(rows, out_dir, extra=json_safe(extra))]
    return summary


def _row_line(row):
    sides = "" if math.isnan(row.dice_left) else f" (left {row.dice_left:.4f}, right {row.dice_right:.4f})"
    return (f"{row.patient}: {row.method} volume Dice {row.dice:.4f}{sides}; lung volume {row.predicted_ml:.0f} mL "
            f"predicted, {row.reference_ml:.0f} mL reference")


def format_table(rows):
    """A Markdown table of `rows`: patient, method, Dice whole / left / right, volumes."""

    def cell(v):
        return "n/a" if math.isnan(v) else f"{v:.4f}"

    lines = ["| patient | method | Dice | Dice left | Dice right | predicted mL | reference mL |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r.patient} | {r.method} | {cell(r.dice)} | {cell(r.dice_left)} | {cell(r.dice_right)} | "
              f"{r.predicted_ml:.0f} | {r.reference_ml:.0f} |" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- RTSTRUCT out

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
_SIDE_NAMES = {1: "LT LUNG", 2: "RT LUNG"}  # LEFT_LUNG, RIGHT_LUNG: names read_rtstruct_mask tells apart
_COLOURS = {1: [0, 128, 255], 2: [255, 128, 0]}
_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
           "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName", "FrameOfReferenceUID")


def mask_contours(mask2d):
    """Closed polygons along the pixel edges of a 2-D mask, as `(N, 2)` arrays of `(row, col)` index coordinates
    (pixel centres at integers, so corners at half-integers).

    Together, by the even-odd rule at pixel centres (`lung_keras.data.even_odd_fill`), they give the mask back
    exactly: every boundary edge is in exactly one polygon, and the parity of crossings depends only on the set
    of edges (where two pixels touch at a corner, either way of closing the loops gives the same pixels).
    Collinear points are merged.
    """
    m = np.pad(np.asarray(mask2d) != 0, 1)
    edges = {}

    def add(starts, ends):
        for s, e in zip(map(tuple, starts), map(tuple, ends)):
            edges.setdefault(s, []).append(e)

    r, c = np.nonzero(m[1:-1, 1:-1] & ~m[:-2, 1:-1])  # no lung above: top edge, left to right
    add(np.c_[r, c], np.c_[r, c + 1])
    r, c = np.nonzero(m[1:-1, 1:-1] & ~m[1:-1, 2:])  # right edge, downwards
    add(np.c_[r, c + 1], np.c_[r + 1, c + 1])
    r, c = np.nonzero(m[1:-1, 1:-1] & ~m[2:, 1:-1])  # bottom edge, right to left
    add(np.c_[r + 1, c + 1], np.c_[r + 1, c])
    r, c = np.nonzero(m[1:-1, 1:-1] & ~m[1:-1, :-2])  # left edge, upwards
    add(np.c_[r + 1, c], np.c_[r, c])
    polygons = []
    while edges:
        start = next(iter(edges))
        loop, here = [start], start
        while True:
            nexts = edges[here]
            following = nexts.pop()
            if not nexts:
                del edges[here]
            if following == start:
                break
            loop.append(following)
            here = following
        points = np.asarray(loop, float)
        before, after = np.roll(points, 1, axis=0), np.roll(points, -1, axis=0)
        turn = np.cross(points - before, after - points) != 0  # keep corners only
        polygons.append(points[turn] - 0.5)  # corner (i, j) sits at index (i - 0.5, j - 0.5)
    return polygons


def write_rtstruct(mask, path, names=None, label="lung_keras"):
    """Write a lung mask on a DICOM series' grid as an RT Structure Set that references that series.

    One ROI per label present (`LEFT_LUNG` as `LT LUNG`, `RIGHT_LUNG` as `RT LUNG`, or `names`), each slice's
    region as `CLOSED_PLANAR` contours along its pixel edges (`mask_contours`), so `read_rtstruct_mask` reads
    the same voxels back. Patient, study and frame of reference come from the series' own files.

    Args:
        mask: a mask `Volume` read on a DICOM series' grid (its `source` is the series folder and its
            `slice_uids` name the slices), e.g. `image.with_array(prediction)`.
        path: the `.dcm` file to write.
        names: `{label: ROI name}`; defaults to the sides above, or `LUNGS` for a 0/1 mask.
        label: the Structure Set Label.
    """
    import datetime

    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import generate_uid

    from lung_keras._io import atomic_path

    if not mask.slice_uids:
        raise ValueError(f"An RTSTRUCT references DICOM slices; this mask's grid has none. Received: mask from "
                         f"{mask.source!r}")
    ct = _series_header(pathlib.Path(mask.source), mask.slice_uids[0], pydicom)
    values = [int(v) for v in np.unique(mask.array) if v != 0]
    names = names or (_SIDE_NAMES if set(values) <= {1, 2} and 2 in values else {1: "LUNGS"})
    missing = [v for v in values if v not in names]
    if missing:
        raise ValueError(f"No ROI name for mask value(s) {missing}. Received: names={names}")
    now = datetime.datetime.now()
    ds = pydicom.Dataset()
    for key in _COPIED:
        if key in ct:
            setattr(ds, key, ct.data_element(key).value)
    ds.SOPClassUID, ds.SOPInstanceUID = RT_STRUCTURE_SET_STORAGE, generate_uid()
    ds.SeriesInstanceUID, ds.Modality, ds.SeriesNumber = generate_uid(), "RTSTRUCT", 999
    ds.Manufacturer, ds.SeriesDescription = "lung_keras", "lung_keras lung mask"
    ds.StructureSetLabel = label
    ds.StructureSetDate = ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.StructureSetTime = ds.InstanceCreationTime = now.strftime("%H%M%S")

    def image_ref(uid):
        item = pydicom.Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = ct.SOPClassUID, uid
        return item

    series = pydicom.Dataset()
    series.SeriesInstanceUID = ct.SeriesInstanceUID
    series.ContourImageSequence = Sequence([image_ref(u) for u in mask.slice_uids])
    study = pydicom.Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (as exporters write)
    study.ReferencedSOPInstanceUID = ct.StudyInstanceUID
    study.RTReferencedSeriesSequence = Sequence([series])
    frame = pydicom.Dataset()
    frame.FrameOfReferenceUID = ct.FrameOfReferenceUID
    frame.RTReferencedStudySequence = Sequence([study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([frame])

    rois, contours, observations = [], [], []
    array = np.asarray(mask.array)
    for number, value in enumerate(values, start=1):
        roi = pydicom.Dataset()
        roi.ROINumber, roi.ReferencedFrameOfReferenceUID = number, ct.FrameOfReferenceUID
        roi.ROIName, roi.ROIGenerationAlgorithm = names[value], "AUTOMATIC"
        rois.append(roi)
        items = []
        for k in range(array.shape[0]):
            for polygon in mask_contours(array[k] == value):
                world = mask.index_to_world(np.c_[np.full(len(polygon), k), polygon])
                item = pydicom.Dataset()
                item.ContourImageSequence = Sequence([image_ref(mask.slice_uids[k])])
                item.ContourGeometricType, item.NumberOfContourPoints = "CLOSED_PLANAR", len(world)
                item.ContourData = [f"{v:.4f}" for v in world.ravel()]
                items.append(item)
        contour = pydicom.Dataset()
        contour.ROIDisplayColor, contour.ReferencedROINumber = _COLOURS.get(value, [255, 255, 0]), number
        contour.ContourSequence = Sequence(items)
        contours.append(contour)
        observation = pydicom.Dataset()
        observation.ObservationNumber, observation.ReferencedROINumber = number, number
        observation.RTROIInterpretedType, observation.ROIInterpreter = "ORGAN", ""
        observations.append(observation)
    ds.StructureSetROISequence = Sequence(rois)
    ds.ROIContourSequence = Sequence(contours)
    ds.RTROIObservationsSequence = Sequence(observations)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta = meta
    path = pathlib.Path(path)
    with atomic_path(path) as tmp:
        ds.save_as(str(tmp), enforce_file_format=True)
    return path


def _series_header(folder, first_uid, pydicom):
    """The header of the series slice `first_uid` in `folder` (patient, study, frame of reference)."""
    for file in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            ds = pydicom.dcmread(file, stop_before_pixels=True)
        except pydicom.errors.InvalidDicomError:
            continue
        if str(ds.get("SOPInstanceUID", "")) == first_uid:
            return ds
    raise FileNotFoundError(f"{folder}: no DICOM file with SOPInstanceUID {first_uid} (the mask's first slice)")
