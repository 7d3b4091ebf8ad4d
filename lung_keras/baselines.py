"""Classical reference methods a network has to beat: CT lung segmentation by thresholding, and volume Dice.

`threshold_lungs` is the rule a user reaches for before a network (issue 14): air-like voxels, minus the air
around the patient, the two largest 3-D regions, holes filled slice by slice. It needs no training data, so
every CT report can show it beside the network. Measured on the shared cases (tests/test_baselines.py):
volume Dice 0.971 against the ACRIN hand-drawn contours and 0.972 against the CIP automatic labels.
`split_sides` labels any lung mask left/right by patient geometry (for Dice per lung), and
`largest_components` applies the rule's step 3 to any mask (a network's volume).
"""

import numpy as np


def threshold_lungs(volume_hu, threshold=-320.0, num_components=2, connectivity=1, fill_holes=True):
    """Segment the lungs of a CT volume by thresholding Hounsfield units.

    Steps:
        1. air-like voxels: `HU < threshold`;
        2. drop the 3-D regions of those voxels that touch the volume's in-plane border (the rows and columns
           at the edge of any slice): the air around the patient and, in a DICOM, the -3024 HU outside the
           scanned circle. The first and last slices are not border: a scan usually cuts the lungs at its top
           or bottom (the ACRIN case does at both ends), so dropping regions that touch them would drop the
           lungs;
        3. keep the `num_components` largest remaining 3-D regions (two lungs; joined by the trachea they are
           one region, and the second is then a small air pocket: an honest limit of the rule);
        4. fill holes slice by slice (vessels inside the lung are brighter than the threshold).

    Args:
        volume_hu: `(z, y, x)` array in Hounsfield units, or a `lung_keras.data.Volume` (its `array` is used).
        threshold: HU; voxels strictly below are air-like. Defaults to -320.
        num_components: regions kept in step 3 (`None` keeps all). Ties keep the region labelled first.
        connectivity: 3-D neighbourhood for regions: 1 (faces, 6 neighbours), 2 (edges, 18) or 3 (corners, 26).
        fill_holes: step 4 on or off.

    Returns:
        `(z, y, x)` uint8 mask, 1 = lung. Put it back on the image grid with `volume.with_array(mask)`.
    """
    from scipy import ndimage

    hu = np.asarray(getattr(volume_hu, "array", volume_hu))
    if hu.ndim != 3:
        raise ValueError(f"`volume_hu` must be a (z, y, x) volume. Received: shape={hu.shape}")
    if connectivity not in (1, 2, 3):
        raise ValueError(f"`connectivity` must be 1, 2 or 3. Received: connectivity={connectivity!r}")
    if num_components is not None and int(num_components) < 1:
        raise ValueError(f"`num_components` must be >= 1 or None. Received: num_components={num_components!r}")

    air = hu < threshold
    labels, count = ndimage.label(air, structure=ndimage.generate_binary_structure(3, connectivity))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0
    border = np.concatenate(
        [labels[:, 0, :].ravel(), labels[:, -1, :].ravel(), labels[:, :, 0].ravel(), labels[:, :, -1].ravel()]
    )
    sizes[np.unique(border)] = 0
    mask = _keep_largest(labels, sizes, num_components)
    if fill_holes:
        mask = np.stack([ndimage.binary_fill_holes(s) for s in mask]) if len(mask) else mask
    return mask.astype(np.uint8)


def volume_dice(a, b, label=None, empty=1.0):
    """Dice overlap `2|A∩B| / (|A| + |B|)` of two masks on one grid, over all voxels at once.

    Args:
        a, b: arrays of one shape (or `lung_keras.data.Volume`s; their arrays are compared).
        label: `None`: foreground is any nonzero voxel (whole lung). An integer: foreground is `== label` in
            both (one lung, e.g. `LEFT_LUNG`).
        empty: the value when both masks are empty (0/0). Defaults to 1.0 (both agree there is nothing).

    Returns:
        A Python float in [0, 1].
    """
    a = np.asarray(getattr(a, "array", a))
    b = np.asarray(getattr(b, "array", b))
    if a.shape != b.shape:
        raise ValueError(f"Masks must have one shape. Received: a.shape={a.shape}, b.shape={b.shape}")
    fa, fb = (a != 0, b != 0) if label is None else (a == label, b == label)
    total = int(fa.sum()) + int(fb.sum())
    if total == 0:
        return float(empty)
    return 2.0 * int(np.logical_and(fa, fb).sum()) / total


def split_sides(mask, volume, majority=0.9):
    """Label a lung mask's voxels left (`LEFT_LUNG`, 1) or right (`RIGHT_LUNG`, 2) by their patient side.

    A segmentation that does not tell the lungs apart (the threshold rule, a one-channel network) needs a side
    per voxel before it can be scored per lung. The rule uses the geometry, not the image: the mid-sagittal
    plane is the plane `x = c` in patient coordinates (LPS: +x is the patient's left) through the mask's centre
    of mass `c`. Each 3-D region (face-connected) lying at least `majority` on one side of that plane goes to
    that side whole; a region across it (lungs joined at the trachea, or a mask of one piece) is cut at the
    plane, voxel by voxel.

    Args:
        mask: `(z, y, x)` array or `Volume`; nonzero is lung.
        volume: the `Volume` whose grid `mask` lies on (its geometry says where the patient's left is).
        majority: fraction of a region's voxels on one side above which the whole region goes to that side.

    Returns:
        `(z, y, x)` uint8 array: 0 background, `LEFT_LUNG`, `RIGHT_LUNG`.
    """
    from scipy import ndimage

    from lung_keras.data.ct import LEFT_LUNG
    from lung_keras.data.ct import RIGHT_LUNG

    fg = np.asarray(getattr(mask, "array", mask)) != 0
    if fg.shape != tuple(volume.shape):
        raise ValueError(f"`mask` must lie on `volume`'s grid. Received: mask.shape={fg.shape}, "
                         f"volume.shape={tuple(volume.shape)}")
    if not 0.5 < majority <= 1.0:
        raise ValueError(f"`majority` must be in (0.5, 1]. Received: majority={majority!r}")
    out = np.zeros(fg.shape, np.uint8)
    if not fg.any():
        return out
    # Patient x (LPS, mm) of every voxel: linear in the indices, so a sum of three broadcast axes.
    step = np.asarray(volume.direction, float)[:, 0] * np.asarray(volume.spacing, float)
    x = (float(volume.origin[0]) + step[0] * np.arange(fg.shape[0])[:, None, None]
         + step[1] * np.arange(fg.shape[1])[None, :, None] + step[2] * np.arange(fg.shape[2])[None, None, :])
    left = x > x[fg].mean()
    labels, count = ndimage.label(fg)
    per_region = np.bincount(labels.ravel(), minlength=count + 1)
    left_count = np.bincount(labels.ravel(), weights=left.ravel(), minlength=count + 1)
    share = left_count / np.maximum(per_region, 1)
    region_side = np.where(share >= majority, LEFT_LUNG, np.where(share <= 1 - majority, RIGHT_LUNG, 0))
    out[fg] = region_side[labels[fg]]
    cut = fg & (out == 0)
    out[cut] = np.where(left[cut], LEFT_LUNG, RIGHT_LUNG)
    return out


def largest_components(mask, num_components=2, connectivity=1):
    """Keep the `num_components` largest 3-D regions of a mask (the threshold rule's step 3, for any mask).

    A network that segments slice by slice can mark air-like spots the lungs never reach (bowel gas, the
    air around the patient in a slice unlike its training slices); two lungs are the two largest regions.

    Args:
        mask: `(z, y, x)` array or `Volume`; nonzero is foreground.
        num_components: regions kept (ties keep the region labelled first).
        connectivity: 1 (faces), 2 (edges) or 3 (corners), as in `threshold_lungs`.

    Returns:
        `(z, y, x)` uint8 mask, 1 where kept.
    """
    from scipy import ndimage

    fg = np.asarray(getattr(mask, "array", mask)) != 0
    if connectivity not in (1, 2, 3):
        raise ValueError(f"`connectivity` must be 1, 2 or 3. Received: connectivity={connectivity!r}")
    if int(num_components) < 1:
        raise ValueError(f"`num_components` must be >= 1. Received: num_components={num_components!r}")
    labels, count = ndimage.label(fg, structure=ndimage.generate_binary_structure(fg.ndim, connectivity))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0
    return _keep_largest(labels, sizes, num_components).astype(np.uint8)


def _keep_largest(labels, sizes, num_components):
    """Boolean mask of the regions of `labels` with nonzero `sizes` (indexed by label): the `num_components`
    largest (ties: the region labelled first), or all of them for `None`."""
    keep = np.flatnonzero(sizes)
    if num_components is not None:
        keep = np.argsort(-sizes, kind="stable")[: int(num_components)]
        keep = keep[sizes[keep] > 0]
    return np.isin(labels, keep)
