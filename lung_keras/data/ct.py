"""CT volumes and lung masks in: DICOM series, NRRD, NIfTI, label maps and DICOM RTSTRUCT contours.

Every reader returns a `Volume`: the voxel array in `(z, y, x)` order (slice, row, column) with the geometry
needed to put it back in the patient: spacing, origin and direction, always in DICOM's patient coordinates
(LPS: +x towards the patient's left, +y posterior, +z superior; NIfTI's RAS is converted). CT intensities
are Hounsfield units as float32 (DICOM stored values go through RescaleSlope/RescaleIntercept; NRRD/NIfTI
CT volumes are taken as HU already, as written). Masks are integer volumes on the same grid: 1 = lung, or
`LEFT_LUNG` / `RIGHT_LUNG` when the source tells the sides apart.

`write_nifti` writes a volume (a predicted mask) back with its geometry. One module for the `Volume` type and
every reader and writer of it, so the geometry conventions live in one place (hence over ~500 lines).

pydicom, pynrrd and nibabel are imported inside the readers, so `import lung_keras.data` stays light.
Problems (missing slices, inconsistent spacing, a contour that references no slice, a mask off the image
grid) raise `CTError` naming the file.
"""

import dataclasses
import pathlib
import re
import warnings

import numpy as np

LEFT_LUNG = 1
RIGHT_LUNG = 2

# Relative tolerance on slice spacing: steps differing by more than this fraction of the median step are
# "inconsistent spacing"; a step of about k times the median (k >= 2) is k - 1 missing slices.
SPACING_TOLERANCE = 0.01
#: The `CTError.kind`s: what `lung-keras data check` calls each problem.
CT_PROBLEMS = ("unreadable", "missing slices", "inconsistent spacing", "contour on no slice", "mask off grid",
               "empty mask", "no matching roi")

_LEFT = re.compile(r"(?<![a-z])(left|lt|l|lft|sin)(?![a-z])", re.IGNORECASE)
_RIGHT = re.compile(r"(?<![a-z])(right|rt|r|rgt|dx)(?![a-z])", re.IGNORECASE)


class CTError(ValueError):
    """A CT file or folder that cannot be read as asked; the message names the file and the problem.

    `kind` names the problem for reports (`lung-keras data check`): one of `CT_PROBLEMS`.
    """

    def __init__(self, message, kind="unreadable"):
        super().__init__(message)
        self.kind = kind


@dataclasses.dataclass(frozen=True, eq=False)
class Volume:
    """A 3-D image on a regular grid, in patient coordinates (LPS, millimetres).

    Attributes:
        array: `(z, y, x)` voxels: slice, row, column.
        spacing: `(z, y, x)` voxel size in mm (z from slice positions, never from SliceThickness).
        origin: `(x, y, z)` LPS position in mm of the centre of voxel `[0, 0, 0]`.
        direction: `(3, 3)` array; row `i` is the LPS unit vector along array axis `i` (row 0: slice normal,
            row 1: down the rows, row 2: along a row). A voxel at index `(k, j, i)` sits at
            `origin + k*spacing[0]*direction[0] + j*spacing[1]*direction[1] + i*spacing[2]*direction[2]`.
        source: the file or folder read, for messages.
        slice_uids: DICOM SOPInstanceUID of each slice (DICOM series only; RTSTRUCT contours reference them).
    """

    array: np.ndarray
    spacing: tuple
    origin: tuple
    direction: np.ndarray
    source: str = ""
    slice_uids: tuple = ()

    @property
    def shape(self):
        return self.array.shape

    def affine(self):
        """`(4, 4)` matrix from homogeneous index `(k, j, i, 1)` to LPS `(x, y, z, 1)`."""
        out = np.eye(4)
        out[:3, :3] = (np.asarray(self.direction, float) * np.asarray(self.spacing, float)[:, None]).T
        out[:3, 3] = self.origin
        return out

    def index_to_world(self, index):
        """`(..., 3)` `(k, j, i)` indices (may be fractional) to `(..., 3)` LPS points in mm."""
        index = np.asarray(index, float)
        a = self.affine()
        return index @ a[:3, :3].T + a[:3, 3]

    def world_to_index(self, points):
        """`(..., 3)` LPS points in mm to fractional `(k, j, i)` indices."""
        a = self.affine()
        return (np.asarray(points, float) - a[:3, 3]) @ np.linalg.inv(a[:3, :3]).T

    def same_grid(self, other, atol=1e-3):
        """True when `other` has this shape, spacing, origin and direction (mm / cosine tolerance `atol`)."""
        return (
            tuple(self.shape) == tuple(other.shape)
            and np.allclose(self.spacing, other.spacing, atol=atol)
            and np.allclose(self.origin, other.origin, atol=atol)
            and np.allclose(self.direction, other.direction, atol=atol)
        )

    def with_array(self, array):
        """This geometry with another `(z, y, x)` array of the same shape (e.g. a mask)."""
        array = np.asarray(array)
        if array.shape != self.shape:
            raise CTError(f"{self.source}: array of shape {array.shape} does not fit the grid {self.shape}")
        return dataclasses.replace(self, array=array)


def read_volume(path):
    """Read a CT volume: a DICOM series folder, a `.nrrd`/`.nhdr` file or a `.nii`/`.nii.gz` file."""
    path = pathlib.Path(path)
    if path.is_dir():
        return read_dicom_series(path)
    name = path.name.lower()
    if name.endswith((".nrrd", ".nhdr")):
        return read_nrrd(path)
    if name.endswith((".nii", ".nii.gz")):
        return read_nifti(path)
    if not path.exists():
        raise CTError(f"{path}: no such file or folder")
    raise CTError(f"{path}: unknown volume format (expected a DICOM folder, .nrrd, .nhdr, .nii or .nii.gz)")


# --------------------------------------------------------------------------------------------- DICOM series


def read_dicom_series(folder, series_uid=None):
    """Read one DICOM image series from a folder as a `Volume` in Hounsfield units (float32).

    Slices are sorted by ImagePositionPatient projected on the slice normal (the cross product of the
    ImageOrientationPatient row and column cosines), never by file name or InstanceNumber. Each slice's
    stored values become `value * RescaleSlope + RescaleIntercept`. The z spacing is the step between slice
    positions (SliceThickness can differ from it: 5 mm slices every 4.25 mm in the ACRIN case); a single
    slice takes SliceThickness (else 1 mm).

    Files without pixel data (an RTSTRUCT, a DICOMDIR) and non-DICOM files are skipped.

    Args:
        folder: the series folder (not searched recursively).
        series_uid: SeriesInstanceUID to read when the folder holds several series; otherwise an error lists them.

    Raises:
        CTError: no image slice; several series; slices of different size, pixel spacing or orientation;
            two slices at one position; missing slices (a gap in positions); inconsistent spacing.
    """
    import pydicom

    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise CTError(f"{folder}: not a folder")
    slices = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except pydicom.errors.InvalidDicomError:
            continue
        if "ImagePositionPatient" not in ds or "PixelSpacing" not in ds:
            continue  # RTSTRUCT, DICOMDIR, reports...
        slices.append((path, ds))
    if not slices:
        raise CTError(f"{folder}: no DICOM image slice (files with ImagePositionPatient and pixel data)")
    series = sorted({str(ds.SeriesInstanceUID) for _, ds in slices})
    if series_uid is not None:
        slices = [(p, ds) for p, ds in slices if str(ds.SeriesInstanceUID) == str(series_uid)]
        if not slices:
            raise CTError(f"{folder}: no slice of series {series_uid}; series here: {', '.join(series)}")
    elif len(series) > 1:
        raise CTError(f"{folder}: {len(series)} series in one folder ({', '.join(series)}); pass series_uid")

    first_path, first = slices[0]
    size = (int(first.Rows), int(first.Columns))
    pixel = tuple(float(v) for v in first.PixelSpacing)
    orientation = np.asarray([float(v) for v in first.ImageOrientationPatient])
    for path, ds in slices[1:]:
        if (int(ds.Rows), int(ds.Columns)) != size:
            raise CTError(f"{path}: {ds.Rows}x{ds.Columns} slice in a {size[0]}x{size[1]} series ({first_path.name})")
        if not np.allclose([float(v) for v in ds.PixelSpacing], pixel, atol=1e-4):
            raise CTError(f"{path}: PixelSpacing {list(ds.PixelSpacing)} differs from {list(pixel)} ({first_path.name})")
        if not np.allclose([float(v) for v in ds.ImageOrientationPatient], orientation, atol=1e-4):
            raise CTError(f"{path}: ImageOrientationPatient differs from {first_path.name}'s")

    row_dir, col_dir = orientation[:3], orientation[3:]
    normal = np.cross(row_dir, col_dir)
    positions = np.asarray([[float(v) for v in ds.ImagePositionPatient] for _, ds in slices])
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    slices = [slices[i] for i in order]
    positions, along = positions[order], along[order]
    names = [p.name for p, _ in slices]
    z_spacing = _slice_step(along, names, folder) if len(slices) > 1 else float(first.get("SliceThickness", 1.0) or 1.0)

    array = np.empty((len(slices),) + size, np.float32)
    for k, (path, _) in enumerate(slices):
        try:
            ds = pydicom.dcmread(path)
            pixels = ds.pixel_array
        except Exception as e:  # truncated file, compressed pixel data without its decoder...
            raise CTError(f"{path}: cannot decode the pixel data ({type(e).__name__}: {e})") from e
        if pixels.shape != size:
            raise CTError(f"{path}: pixel data of shape {pixels.shape}, expected {size} (one frame per file)")
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        array[k] = pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    direction = np.stack([normal, col_dir, row_dir])
    return Volume(
        array=array,
        spacing=(z_spacing, pixel[0], pixel[1]),  # PixelSpacing is (between rows, between columns)
        origin=tuple(float(v) for v in positions[0]),
        direction=direction,
        source=str(folder),
        slice_uids=tuple(str(ds.SOPInstanceUID) for _, ds in slices),
    )


def _slice_step(along, names, folder):
    """The regular step between sorted slice positions; errors name the files around a gap or irregularity."""
    steps = np.diff(along)
    for k, step in enumerate(steps):
        if step < 1e-3:
            raise CTError(f"{folder}: {names[k]} and {names[k + 1]} are at one position ({along[k]:.3f} mm)",
                          kind="inconsistent spacing")
    step = float(np.median(steps))
    for k, s in enumerate(steps):
        if abs(s - step) <= SPACING_TOLERANCE * step:
            continue
        ratio = s / step
        if ratio > 1.5 and abs(ratio - round(ratio)) <= 0.1:
            missing = int(round(ratio)) - 1
            raise CTError(
                f"{folder}: missing slices: {missing} slice(s) absent between {names[k]} and {names[k + 1]} "
                f"(positions {along[k]:.2f} and {along[k + 1]:.2f} mm, step {step:.3f} mm elsewhere)",
                kind="missing slices",
            )
        raise CTError(
            f"{folder}: inconsistent slice spacing: {s:.3f} mm between {names[k]} and {names[k + 1]}, "
            f"{step:.3f} mm elsewhere",
            kind="inconsistent spacing",
        )
    return float(np.mean(steps))


# ----------------------------------------------------------------------------------------------- NRRD, NIfTI

_NRRD_SPACES = {
    "left-posterior-superior": (1.0, 1.0, 1.0),
    "lps": (1.0, 1.0, 1.0),
    "right-anterior-superior": (-1.0, -1.0, 1.0),
    "ras": (-1.0, -1.0, 1.0),
    "left-anterior-superior": (1.0, -1.0, 1.0),
    "las": (1.0, -1.0, 1.0),
}


def read_nrrd(path):
    """Read a 3-D `.nrrd`/`.nhdr` volume (pynrrd); its space directions and origin become LPS geometry.

    The array keeps the file's dtype (int16 HU for a CT, integers for a label map). A file without a
    `space` field is refused (its axes could be anything).
    """
    import nrrd

    path = pathlib.Path(path)
    try:
        data, header = nrrd.read(str(path), index_order="C")  # (z, y, x): the file's slowest axis first
    except (OSError, nrrd.NRRDError) as e:
        raise CTError(f"{path}: cannot read NRRD ({e})") from e
    if data.ndim != 3:
        raise CTError(f"{path}: expected a 3-D volume, got {data.ndim} dimensions {data.shape}")
    space = str(header.get("space", "")).lower()
    if space not in _NRRD_SPACES:
        raise CTError(f"{path}: NRRD space {header.get('space')!r} is not one of {sorted(_NRRD_SPACES)}")
    flip = np.asarray(_NRRD_SPACES[space])
    axes = np.asarray(header["space directions"], float)[::-1] * flip  # rows in (z, y, x) order, LPS
    spacing = np.linalg.norm(axes, axis=1)
    origin = np.asarray(header.get("space origin", np.zeros(3)), float) * flip
    return Volume(array=data, spacing=tuple(float(s) for s in spacing), origin=tuple(float(v) for v in origin),
                  direction=axes / spacing[:, None], source=str(path))


def read_nifti(path):
    """Read a 3-D `.nii`/`.nii.gz` volume (nibabel); the RAS affine becomes LPS geometry.

    Values go through the header's scl_slope/scl_inter when set (then float32); otherwise the file's dtype.
    """
    import nibabel

    path = pathlib.Path(path)
    try:
        image = nibabel.load(str(path))
        data = np.asanyarray(image.dataobj)
    except (OSError, nibabel.filebasedimages.ImageFileError, EOFError) as e:
        raise CTError(f"{path}: cannot read NIfTI ({e})") from e
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise CTError(f"{path}: expected a 3-D volume, got {data.ndim} dimensions {data.shape}")
    if data.dtype == np.float64:
        data = data.astype(np.float32)
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ image.affine  # RAS -> LPS
    axes = affine[:3, :3].T[::-1]  # rows: array axes in (z, y, x) order
    spacing = np.linalg.norm(axes, axis=1)
    return Volume(array=np.ascontiguousarray(data.transpose(2, 1, 0)), spacing=tuple(float(s) for s in spacing),
                  origin=tuple(float(v) for v in affine[:3, 3]), direction=axes / spacing[:, None], source=str(path))


def write_nifti(volume, path):
    """Write a `Volume` as a NIfTI-1 file (`.nii` or `.nii.gz`) with its geometry; return the path.

    The file's axes are `(x, y, z)` = the array's `(i, j, k)` (the array transposed), and its affine is the
    volume's LPS affine turned to RAS (x and y negated), stored as both qform and sform (code 1, scanner), so
    `read_nifti` gives back the same grid (`same_grid`) and orientation, and viewers (ITK-SNAP, 3D Slicer)
    overlay it on the source CT. Boolean arrays are written as uint8.
    """
    import nibabel

    path = pathlib.Path(path)
    if not path.name.lower().endswith((".nii", ".nii.gz")):
        raise CTError(f"{path}: a NIfTI file name ends with .nii or .nii.gz")
    lps = volume.affine()[:, [2, 1, 0, 3]]  # file axis 0 is the array's last axis (columns, x)
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    array = np.asarray(volume.array)
    array = array.astype(np.uint8) if array.dtype == np.bool_ else array
    image = nibabel.Nifti1Image(np.ascontiguousarray(array.transpose(2, 1, 0)), affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(image, str(path))
    return path


# --------------------------------------------------------------------------------------------------- masks


def read_label_mask(path, labels=None, low_byte=False, image=None):
    """Read a label-map volume (NRRD, NIfTI or DICOM folder) as a uint8 lung mask `Volume`.

    Args:
        path: the label-map file.
        labels: `None`: lung wherever the value is nonzero (1). Otherwise a dict `{output_label: values}`,
            e.g. `{LEFT_LUNG: (9, 10, 11), RIGHT_LUNG: (12, 13, 14)}` for the Chest Imaging Platform's
            region codes; values listed nowhere become 0.
        low_byte: use `value & 0xFF` first (the Chest Imaging Platform stores the region in the low byte and
            the tissue type in the high byte).
        image: a `Volume` the mask must lie on (same shape, spacing, origin, direction), else `CTError`.
    """
    volume = read_volume(path)
    values = np.asarray(volume.array)
    if np.issubdtype(values.dtype, np.floating):
        if not np.all(values == np.round(values)):
            raise CTError(f"{path}: label map has non-integer values")
        values = values.astype(np.int64)
    if low_byte:
        values = values & 0xFF
    if labels is None:
        mask = (values != 0).astype(np.uint8)
    else:
        mask = np.zeros(values.shape, np.uint8)
        for out, wanted in labels.items():
            mask[np.isin(values, np.asarray(list(wanted)))] = out
    if not mask.any():
        raise CTError(f"{path}: no lung voxel (labels={labels}, low_byte={low_byte})", kind="empty mask")
    result = volume.with_array(mask)
    if image is not None:
        check_same_grid(image, result)
    return result


def check_same_grid(image, mask):
    """Raise `CTError` naming both sources when `mask` is off `image`'s grid."""
    if tuple(image.shape) != tuple(mask.shape):
        raise CTError(f"{mask.source}: mask shape {mask.shape} differs from image {image.source} shape {image.shape}",
                      kind="mask off grid")
    if not image.same_grid(mask):
        raise CTError(
            f"{mask.source}: mask grid (spacing {np.round(mask.spacing, 4).tolist()}, origin "
            f"{np.round(mask.origin, 3).tolist()}) differs from image {image.source} (spacing "
            f"{np.round(image.spacing, 4).tolist()}, origin {np.round(image.origin, 3).tolist()})",
            kind="mask off grid",
        )


def rtstruct_roi_names(path):
    """The ROI names of a DICOM RT Structure Set, in file order."""
    import pydicom

    ds = _read_rtstruct(path, pydicom)
    return [str(r.ROIName) for r in ds.StructureSetROISequence]


def read_rtstruct_mask(path, image, pattern="lung", keep_sides=True, missing_slices="error"):
    """Rasterise the RTSTRUCT contours of the ROIs matching `pattern` onto `image`'s grid (uint8 `Volume`).

    Each contour is a closed polygon in patient coordinates on one slice. A voxel is inside when its centre
    is, by the even-odd rule over all the ROI's contours on that slice (so an inner contour cuts a hole).

    Args:
        path: the RTSTRUCT file.
        image: the `Volume` read from the referenced DICOM series (`read_dicom_series`).
        pattern: regular expression searched case-insensitively in each ROI name (`"lung"` matches
            `RT LUNG`, `LT LUNG`, `Lungs`...).
        keep_sides: when every matching ROI name says its side (left: `left`, `lt`, `l`; right: `right`,
            `rt`, `r` as words, e.g. `LT LUNG`, `Lung_R`), left is `LEFT_LUNG` (1) and right `RIGHT_LUNG` (2);
            otherwise, or with `keep_sides=False`, every lung voxel is 1.
        missing_slices: what to do with a contour whose referenced slice is not in `image`: `"error"` (the
            default: the wrong series, or an incomplete copy of it) or `"skip"` (drop those contours with a
            warning giving their count, for a series known to be partial: the ACRIN copy holds 41 of the 90
            slices its structure set was drawn on).

    Raises:
        CTError: not an RTSTRUCT; no ROI matches (the message lists the names); a contour references a
            slice that is not in `image`, or lies off every slice plane; a matching ROI has no contour.
    """
    import pydicom

    if missing_slices not in ("error", "skip"):
        raise ValueError(f"`missing_slices` must be 'error' or 'skip'. Received: missing_slices={missing_slices!r}")
    path = pathlib.Path(path)
    ds = _read_rtstruct(path, pydicom)
    names = {int(r.ROINumber): str(r.ROIName) for r in ds.StructureSetROISequence}
    regex = re.compile(pattern, re.IGNORECASE)
    chosen = {n: name for n, name in names.items() if regex.search(name)}
    if not chosen:
        raise CTError(f"{path}: no ROI name matches {pattern!r}; ROIs: {', '.join(names.values())}",
                      kind="no matching roi")
    sides = {n: _side(name) for n, name in chosen.items()}
    lateral = keep_sides and all(s is not None for s in sides.values())

    uid_to_slice = {uid: k for k, uid in enumerate(image.slice_uids)}
    mask = np.zeros(image.shape, np.uint8)
    skipped = 0
    for roi in ds.ROIContourSequence:
        number = int(roi.ReferencedROINumber)
        if number not in chosen:
            continue
        contours = list(getattr(roi, "ContourSequence", []) or [])
        if not contours:
            raise CTError(f"{path}: ROI {chosen[number]!r} has no contour", kind="empty mask")
        per_slice = {}
        for contour in contours:
            points = np.asarray([float(v) for v in contour.ContourData]).reshape(-1, 3)
            k = _contour_slice(contour, points, image, uid_to_slice, path, chosen[number], missing_slices)
            if k is None:
                skipped += 1
                continue
            rows_cols = image.world_to_index(points)[:, 1:]  # (row, col) per point
            _check_in_plane(rows_cols, image, path, chosen[number], points)
            per_slice.setdefault(k, []).append(rows_cols)
        value = sides[number] if lateral else 1
        for k, polygons in per_slice.items():
            inside = even_odd_fill(polygons, image.shape[1:])
            mask[k][inside] = value
    if skipped:
        warnings.warn(f"{path}: skipped {skipped} contour(s) on slices absent from {image.source}", stacklevel=2)
    if not mask.any():
        raise CTError(f"{path}: no contour of {', '.join(chosen.values())} lies on a slice of {image.source}",
                      kind="contour on no slice")
    return image.with_array(mask)


def _read_rtstruct(path, pydicom):
    path = pathlib.Path(path)
    try:
        ds = pydicom.dcmread(path)
    except (OSError, pydicom.errors.InvalidDicomError) as e:
        raise CTError(f"{path}: cannot read as DICOM ({e})") from e
    if str(ds.get("Modality", "")) != "RTSTRUCT" or "StructureSetROISequence" not in ds:
        raise CTError(f"{path}: not a DICOM RT Structure Set (Modality {ds.get('Modality')!r})")
    return ds


def _side(name):
    left, right = bool(_LEFT.search(name)), bool(_RIGHT.search(name))
    if left == right:
        return None
    return LEFT_LUNG if left else RIGHT_LUNG


def _contour_slice(contour, points, image, uid_to_slice, path, roi_name, missing_slices):
    """The slice index a contour lies on: by its referenced SOPInstanceUID, checked against its position."""
    k_points = image.world_to_index(points)[:, 0]
    refs = [str(r.ReferencedSOPInstanceUID) for r in getattr(contour, "ContourImageSequence", []) or []]
    if refs:
        if refs[0] not in uid_to_slice:
            if missing_slices == "skip":
                return None
            raise CTError(
                f"{path}: a contour of ROI {roi_name!r} at z = {points[0, 2]:.2f} mm references slice {refs[0]}, "
                f"which is not in the series {image.source} (missing_slices='skip' drops such contours)",
                kind="contour on no slice",
            )
        k = uid_to_slice[refs[0]]
    else:
        k = int(round(float(np.mean(k_points))))
        if not 0 <= k < image.shape[0] and missing_slices == "skip":
            return None
    if not (0 <= k < image.shape[0]) or np.abs(k_points - k).max() > 0.5:
        raise CTError(
            f"{path}: a contour of ROI {roi_name!r} at z = {points[0, 2]:.2f} mm lies on no slice of "
            f"{image.source}",
            kind="contour on no slice",
        )
    return k


def _check_in_plane(rows_cols, image, path, roi_name, points):
    """A contour reaching more than one pixel beyond the image is drawn on another grid: `CTError`."""
    limit = np.asarray(image.shape[1:], float) - 0.5
    if (rows_cols < -1.5).any() or (rows_cols > limit + 1.0).any():
        raise CTError(
            f"{path}: a contour of ROI {roi_name!r} at z = {points[0, 2]:.2f} mm reaches beyond the "
            f"{image.shape[1]}x{image.shape[2]} image of {image.source} (rows {rows_cols[:, 0].min():.1f} .. "
            f"{rows_cols[:, 0].max():.1f}, columns {rows_cols[:, 1].min():.1f} .. {rows_cols[:, 1].max():.1f})",
            kind="mask off grid",
        )


def even_odd_fill(polygons, shape):
    """Boolean `(rows, cols)` mask of pixel centres inside `polygons` by the even-odd rule.

    Args:
        polygons: list of `(N, 2)` arrays of `(row, col)` vertices in pixel-index coordinates (pixel centres
            at integers), each closed implicitly (last vertex joins the first). Together they are one region:
            a pixel is inside when a ray from it crosses their edges an odd number of times.
        shape: `(rows, cols)` of the output.
    """
    rows, cols = shape
    starts = np.concatenate([np.asarray(p, float) for p in polygons])
    ends = np.concatenate([np.roll(np.asarray(p, float), -1, axis=0) for p in polygons])
    out = np.zeros(shape, bool)
    r0, c0, r1, c1 = starts[:, 0], starts[:, 1], ends[:, 0], ends[:, 1]
    low = max(int(np.ceil(min(r0.min(), r1.min()))), 0)
    high = min(int(np.floor(max(r0.max(), r1.max()))), rows - 1)
    centres = np.arange(cols, dtype=float)
    for r in range(low, high + 1):
        # Half-open rule (r0 <= r < r1 or r1 <= r < r0): a vertex on the scan line counts once.
        crossing = (r0 <= r) != (r1 <= r)
        if not crossing.any():
            continue
        t = (r - r0[crossing]) / (r1[crossing] - r0[crossing])
        xs = np.sort(c0[crossing] + t * (c1[crossing] - c0[crossing]))
        out[r] = np.searchsorted(xs, centres, side="right") % 2 == 1
    return out
