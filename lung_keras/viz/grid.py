"""`segmentation_grid` (rows = samples) and `grid_to_array` (figure -> RGB uint8)."""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lung_keras.viz._arrays import as_binary_mask
from lung_keras.viz._arrays import as_display_image
from lung_keras.viz._arrays import dice_np
from lung_keras.viz._arrays import to_numpy
from lung_keras.viz._figure import finish_figure
from lung_keras.viz._figure import new_figure
from lung_keras.viz.overlay import overlay_contours

COLUMNS = ("image", "true mask", "prediction", "overlay")


def segmentation_grid(
    images,
    masks,
    preds,
    ids=None,
    dice=None,
    path=None,
    threshold=0.5,
    panel_size=2.2,
    dpi=100,
    title=None,
):
    """One row per sample: image | true mask | prediction | overlay.

    The overlay panel's caption reads `"<id>  Dice 0.953"`.

    Args:
        images: (N, H, W[, C]) images (arrays or tensors).
        masks: (N, H, W[, 1]) true masks.
        preds: (N, H, W[, 1]) predicted masks or probabilities (binarized at
            `threshold` for display).
        ids: N sample ids for the captions; defaults to `"0"`, `"1"`, ...
        dice: N Dice values for the captions; if None, computed from the
            binarized masks (1.0 when both are empty).
        path: if given, the figure is saved there.
        threshold: probability threshold.
        panel_size: inches per panel.
        dpi: figure resolution.
        title: optional figure title.

    Returns:
        The `matplotlib.figure.Figure`.
    """
    images, masks, preds = to_numpy(images), to_numpy(masks), to_numpy(preds)
    n = images.shape[0]
    if masks.shape[0] != n or preds.shape[0] != n:
        raise ValueError(
            f"images, masks and preds need the same length. Received: {n}, {masks.shape[0]}, {preds.shape[0]}"
        )
    if n == 0:
        raise ValueError("segmentation_grid needs at least one sample.")
    ids = [str(i) for i in range(n)] if ids is None else [str(i) for i in ids]
    if len(ids) != n:
        raise ValueError(f"Need one id per sample. Received: {len(ids)} ids for {n} samples")
    true_b = [as_binary_mask(m, threshold) for m in masks]
    pred_b = [as_binary_mask(p, threshold) for p in preds]
    if dice is None:
        dice = [dice_np(t, p) for t, p in zip(true_b, pred_b)]
    dice = [float(d) for d in np.asarray(dice).reshape(-1)]
    if len(dice) != n:
        raise ValueError(f"Need one Dice per sample. Received: {len(dice)} values for {n} samples")

    fig = new_figure(figsize=(panel_size * 4, panel_size * n + 0.3 + (0.3 if title else 0)), dpi=dpi)
    axes = fig.subplots(n, 4, squeeze=False)
    for r in range(n):
        img = as_display_image(images[r])
        row = axes[r]
        row[0].imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
        row[1].imshow(true_b[r], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        row[2].imshow(pred_b[r], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        overlay_contours(row[3], img, [true_b[r], pred_b[r]], labels=("true", "pred"), legend=(r == 0))
        row[0].set_title(ids[r], fontsize="small")
        row[1].set_title(COLUMNS[1], fontsize="small")
        row[2].set_title(COLUMNS[2], fontsize="small")
        row[3].set_title(f"{ids[r]}  Dice {dice[r]:.3f}", fontsize="small")
        for ax in row:
            ax.set_axis_off()
    return finish_figure(fig, path, title)


def grid_to_array(fig):
    """Renders `fig` to an RGB `uint8` array of shape (H, W, 3) (for TensorBoard)."""
    canvas = fig.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.array(canvas.buffer_rgba(), dtype=np.uint8)[..., :3].copy()
