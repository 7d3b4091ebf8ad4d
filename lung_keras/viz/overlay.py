"""Contour / fill overlays of one or more masks on an image."""

import numpy as np
from matplotlib.colors import to_rgba
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from lung_keras.viz._arrays import as_binary_mask
from lung_keras.viz._arrays import as_display_image

#: Colours used by default: ground truth green, prediction red, then others.
DEFAULT_COLORS = ("#00d000", "#ff2020", "#2080ff", "#ffb000", "#c040ff")


def overlap_color(first, second, fill_alpha, background=0.5):
    """RGB colour of a pixel under both fills (first, then second, each at `fill_alpha`) on a mid-grey image."""
    rgb = np.full(3, float(background))
    for color in (first, second):
        rgb = (1 - fill_alpha) * rgb + fill_alpha * np.asarray(to_rgba(color)[:3])
    return tuple(rgb)


def overlay_contours(
    ax,
    image,
    masks,
    colors=None,
    labels=None,
    threshold=0.5,
    fill_alpha=0.25,
    linewidth=1.5,
    legend=True,
    overlap_label="overlap",
):
    """Draws `image` in grey (or RGB) with each mask's outline and a light fill.

    Reusable for prediction overlays and augmentation previews.

    Args:
        ax: a matplotlib `Axes`.
        image: (H, W), (H, W, 1) or (H, W, 3) array or tensor.
        masks: one mask or a list of masks (each (H, W) or (H, W, 1); see
            `as_binary_mask` for the accepted encodings).
        colors: one colour per mask; defaults to green, red, blue, ...
            (ground truth first, prediction second).
        labels: one legend label per mask, e.g. `("true", "pred")`.
        threshold: probability threshold for float masks.
        fill_alpha: opacity of the fill (0 draws outlines only).
        linewidth: outline width.
        legend: draw a legend when `labels` is given.
        overlap_label: legend label of the colour where the first two masks' fills
            overlap (e.g. truth and prediction agree); shown when they do overlap
            and `fill_alpha > 0`; None leaves it out.

    Returns:
        `ax`.
    """
    if not isinstance(masks, (list, tuple)):
        masks = [masks]
    colors = list(colors) if colors is not None else list(DEFAULT_COLORS)
    if len(colors) < len(masks):
        raise ValueError(f"Need one colour per mask. Received: {len(colors)} colors for {len(masks)} masks")
    if labels is not None and len(labels) != len(masks):
        raise ValueError(f"Need one label per mask. Received: labels={labels!r} for {len(masks)} masks")
    img = as_display_image(image)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
    h, w = img.shape[:2]
    handles = []
    for i, mask in enumerate(masks):
        m = as_binary_mask(mask, threshold)
        if m.shape != (h, w):
            raise ValueError(f"Mask {i} shape {m.shape} does not match image shape {(h, w)}.")
        rgba = to_rgba(colors[i])
        if fill_alpha > 0 and m.any():
            layer = np.zeros((h, w, 4), dtype="float32")
            layer[m] = (*rgba[:3], fill_alpha)
            ax.imshow(layer, interpolation="nearest")
        if m.any() and not m.all():  # a constant mask has no contour
            ax.contour(m.astype("float32"), levels=[0.5], colors=[rgba], linewidths=linewidth)
        if labels is not None:
            handles.append(Line2D([0], [0], color=rgba, lw=linewidth * 1.5, label=str(labels[i])))
    if labels is not None and legend:
        if overlap_label is not None and fill_alpha > 0 and len(masks) >= 2:
            first, second = (as_binary_mask(m, threshold) for m in masks[:2])
            if (first & second).any():
                handles.append(Patch(facecolor=overlap_color(colors[0], colors[1], fill_alpha),
                                      edgecolor="none", label=str(overlap_label)))
        ax.legend(handles=handles, loc="lower right", fontsize="x-small", framealpha=0.6)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_axis_off()
    return ax
