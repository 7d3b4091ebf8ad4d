"""`display` and `show_predictions`, as in the TensorFlow segmentation tutorial."""

import os

import numpy as np

from lung_keras.viz._arrays import as_binary_mask
from lung_keras.viz._arrays import as_display_image
from lung_keras.viz._arrays import dice_np
from lung_keras.viz._arrays import to_numpy
from lung_keras.viz._figure import finish_figure
from lung_keras.viz._figure import new_figure
from lung_keras.viz.overlay import overlay_contours

DEFAULT_TITLES = ("Input Image", "True Mask", "Predicted Mask")


def display(
    display_list,
    titles=None,
    path=None,
    overlay=True,
    threshold=0.5,
    panel_size=3.0,
    dpi=100,
    suptitle=None,
):
    """Shows panels side by side: image, true mask, predicted mask, overlay.

    `display([image, mask])` or `display([image, mask, pred])`, as users of
    the TensorFlow segmentation tutorial know it. The first item is the image;
    every further item is a mask, binarized for display (probabilities
    `> threshold`, 0/255 masks, one-hot / per-class maps by argmax).

    Args:
        display_list: `[image, mask, ...]`; numpy arrays or tensors of shape
            (H, W), (H, W, 1) or (H, W, 3) (a leading batch axis of 1 is
            dropped).
        titles: one title per item; defaults to "Input Image", "True Mask",
            "Predicted Mask", "Mask 4", ...
        path: if given, the figure is saved there.
        overlay: add a last panel with the masks drawn on the image (first mask
            green = truth, second red = prediction). With both a true and a
            predicted mask its title carries their Dice.
        threshold: probability threshold for float masks.
        panel_size: inches per panel.
        dpi: figure resolution.
        suptitle: optional figure title.

    Returns:
        The `matplotlib.figure.Figure` (Agg canvas, headless).

    Example:
    ```python
    image, mask = next(iter(test_ds.unbatch()))
    display([image, mask, model.predict(image[None])[0]], path="pred.png")
    ```
    """
    if not isinstance(display_list, (list, tuple)) or len(display_list) == 0:
        raise ValueError("display_list must be a non-empty list [image, mask, ...].")
    n_items = len(display_list)
    if titles is None:
        titles = [DEFAULT_TITLES[i] if i < len(DEFAULT_TITLES) else f"Mask {i + 1}" for i in range(n_items)]
    elif len(titles) != n_items:
        raise ValueError(f"Need one title per item. Received: titles={list(titles)!r} for {n_items} items")
    image = as_display_image(display_list[0])
    masks = [as_binary_mask(m, threshold) for m in display_list[1:]]
    for i, m in enumerate(masks):
        if m.shape != image.shape[:2]:
            raise ValueError(f"Item {i + 1} shape {m.shape} does not match image shape {image.shape[:2]}.")
    with_overlay = bool(overlay) and len(masks) > 0
    n_panels = n_items + int(with_overlay)
    fig = new_figure(figsize=(panel_size * n_panels, panel_size + 0.4), dpi=dpi)
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    axes[0].imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
    for ax, m in zip(axes[1:n_items], masks):
        ax.imshow(m, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    for ax, t in zip(axes, titles):
        ax.set_title(t)
        ax.set_axis_off()
    if with_overlay:
        labels = ["true", "pred"][: len(masks)] + [f"mask {i + 1}" for i in range(2, len(masks))]
        overlay_contours(axes[-1], image, masks, labels=labels)
        title = "Overlay"
        if len(masks) >= 2:
            title += f" (Dice {dice_np(masks[0], masks[1]):.3f})"
        axes[-1].set_title(title)
    return finish_figure(fig, path, suptitle)


def _take(data, num):
    """Returns up to `num` (images, masks_or_None) numpy arrays from arrays or a batched dataset."""
    if isinstance(data, (tuple, list)) and len(data) in (1, 2) and hasattr(data[0], "shape"):
        images = to_numpy(data[0])[:num]
        masks = to_numpy(data[1])[:num] if len(data) == 2 else None
        return images, masks
    if hasattr(data, "shape"):  # images only
        return to_numpy(data)[:num], None
    images, masks = [], []
    for batch in data:  # tf.data / any iterable of (images, masks) or images batches
        if isinstance(batch, dict):
            batch = (batch["images"], batch.get("segmentation_masks"))
        if isinstance(batch, (tuple, list)):
            x = to_numpy(batch[0])
            y = to_numpy(batch[1]) if len(batch) > 1 and batch[1] is not None else None
        else:
            x, y = to_numpy(batch), None
        for i in range(x.shape[0]):
            images.append(x[i])
            if y is not None:
                masks.append(y[i])
            if len(images) >= num:
                break
        if len(images) >= num:
            break
    if not images:
        raise ValueError("data yielded no samples.")
    return np.stack(images), (np.stack(masks) if masks else None)


def show_predictions(model, data, num=3, path=None, threshold=0.5, overlay=True):
    """Predicts on the first `num` samples of `data` and `display`s each.

    Args:
        model: a Keras model mapping images to (N, H, W, 1) probabilities (or
            (N, H, W, C) class scores, shown by argmax).
        data: `(images, masks)` arrays, images alone, or an iterable (e.g. a
            `tf.data.Dataset`) of `(images, masks)` batches; the first `num`
            samples are used.
        num: number of samples.
        path: if given, figure `i` is saved to `<stem>_<i><suffix>`
            (`preds.png` -> `preds_0.png`, `preds_1.png`, ...).
        threshold: probability threshold for display.
        overlay: add the overlay panel.

    Returns:
        A list of `num` Figures (fewer if `data` holds fewer samples), one per
        sample, each `[image, true mask, predicted mask, overlay]`. Use
        `segmentation_grid` for a single figure with one row per sample.
    """
    if num < 1:
        raise ValueError(f"num must be >= 1. Received: num={num}")
    images, masks = _take(data, num)
    preds = to_numpy(model.predict(images, verbose=0))
    figs = []
    for i in range(images.shape[0]):
        items = [images[i]] + ([masks[i]] if masks is not None else []) + [preds[i]]
        titles = list(DEFAULT_TITLES) if masks is not None else ["Input Image", "Predicted Mask"]
        p = None
        if path is not None:
            stem, suffix = os.path.splitext(os.fspath(path))
            p = f"{stem}_{i}{suffix or '.png'}"
        figs.append(display(items, titles=titles, path=p, threshold=threshold, overlay=overlay))
    return figs
