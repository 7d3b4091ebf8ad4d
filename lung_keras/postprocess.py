"""Optional post-processing of predicted lung masks: keep the largest connected components, fill holes.

A chest X-ray shows two lungs, each one connected region without holes. A U-Net trained on few images can
leave specks outside the chest and holes over dense opacities; these steps remove both. They run on
thresholded numpy masks after `predict` (not in the graph), so training metrics never include them;
`lung-keras evaluate` and the compare report give Dice with and without them.
"""

import numpy as np


def keep_largest_components(mask, num_components=2, connectivity=1):
    """Keep the `num_components` largest connected foreground regions of a 2-D binary mask.

    Args:
        mask: `(H, W)` array; nonzero is foreground.
        num_components: regions to keep (2: the two lungs). Ties in size keep the region found first.
        connectivity: 1 (4-neighbourhood) or 2 (8-neighbourhood).

    Returns:
        A `(H, W)` uint8 {0, 1} mask.
    """
    from scipy import ndimage

    mask = _check_mask(mask)
    if int(num_components) < 1:
        raise ValueError(f"`num_components` must be >= 1. Received: num_components={num_components}")
    labels, count = ndimage.label(mask, structure=ndimage.generate_binary_structure(2, connectivity))
    if count <= num_components:
        return (labels > 0).astype(np.uint8)
    sizes = np.bincount(labels.ravel())[1:]
    keep = np.argsort(-sizes, kind="stable")[:num_components] + 1
    return np.isin(labels, keep).astype(np.uint8)


def fill_holes(mask):
    """Fill background regions of a 2-D binary mask that do not touch the image border."""
    from scipy import ndimage

    return ndimage.binary_fill_holes(_check_mask(mask)).astype(np.uint8)


def postprocess_masks(probabilities, threshold=0.5, num_components=2, fill=True):
    """Threshold a batch of predictions and clean each mask.

    Args:
        probabilities: `(N, H, W)` or `(N, H, W, 1)` predicted lung probabilities.
        threshold: foreground where probability >= threshold.
        num_components: keep this many largest regions per image (None keeps all).
        fill: fill holes inside the kept regions.

    Returns:
        float32 {0, 1} masks of the input's shape, usable wherever predictions are (Dice at threshold 0.5).
    """
    probabilities = np.asarray(probabilities)
    squeeze = probabilities.ndim == 4
    if squeeze and probabilities.shape[-1] != 1:
        raise ValueError(f"Expected one channel. Received: shape={probabilities.shape}")
    masks = probabilities[..., 0] if squeeze else probabilities
    if masks.ndim != 3:
        raise ValueError(f"Expected (N, H, W) or (N, H, W, 1) predictions. Received: shape={probabilities.shape}")
    out = np.empty(masks.shape, np.float32)
    for i, m in enumerate(masks):
        m = (m >= threshold).astype(np.uint8)
        if num_components is not None:
            m = keep_largest_components(m, num_components)
        if fill:
            m = fill_holes(m)
        out[i] = m
    return out[..., None] if squeeze else out


def _check_mask(mask):
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"Expected a 2-D mask. Received: shape={mask.shape}")
    if mask.dtype.kind == "f" and not np.all(np.isfinite(mask)):
        raise ValueError("The mask holds NaN or inf values.")
    return mask != 0
