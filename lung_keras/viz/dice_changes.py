"""Where did augmentation change the segmentation most? Per-image Dice changes between two arms.

`largest_changes` picks the images with the largest gains and losses of a paired
per-image Dice difference; `dice_change_figure` draws them (image | true mask |
arm A's prediction | arm B's prediction); `dice_change_figures` makes one such
figure per test set of a comparison, captioned with a link that opens the same
pair of arms in the Segmentation dashboard (format: `lung_keras_tb.links`).
"""

import numpy as np

from lung_keras.viz._arrays import as_binary_mask
from lung_keras.viz._arrays import as_display_image
from lung_keras.viz._arrays import to_numpy
from lung_keras.viz._figure import finish_figure
from lung_keras.viz._figure import new_figure
from lung_keras.viz.overlay import overlay_contours


def largest_changes(dice_a, dice_b, k=3):
    """Indices of the `k` largest gains and `k` largest losses of `dice_b - dice_a`.

    Only strict changes count: gains have a difference above 0 (largest first),
    losses below 0 (most negative first); NaN differences are skipped; ties keep
    the input order.

    Returns:
        `(gains, losses)`, two lists of indices.

    Example:
        >>> largest_changes([0.5, 0.9, 0.7, 0.8], [0.9, 0.6, 0.7, 0.85], k=3)
        ([0, 3], [1])
    """
    a = np.asarray(dice_a, dtype=np.float64).reshape(-1)
    b = np.asarray(dice_b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"dice_a and dice_b need the same length. Received: {a.shape[0]} and {b.shape[0]}")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer. Received: k={k!r}")
    diff = b - a
    filled = np.nan_to_num(diff, nan=0.0)
    gains = [int(i) for i in np.argsort(-filled, kind="stable") if diff[i] > 0][:k]
    losses = [int(i) for i in np.argsort(filled, kind="stable") if diff[i] < 0][:k]
    return gains, losses


def dice_change_figure(
    images,
    masks,
    preds_a,
    preds_b,
    ids,
    dice_a,
    dice_b,
    labels=("A", "B"),
    row_labels=None,
    path=None,
    threshold=0.5,
    panel_size=2.0,
    dpi=100,
    title=None,
):
    """One row per image: image | true mask | A's prediction | B's prediction (outlines over the image).

    Args:
        images, masks, preds_a, preds_b: (N, H, W[, C]) arrays; predictions are
            probabilities, binarized at `threshold`.
        ids: N sample ids.
        dice_a, dice_b: N Dice values shown for each arm (e.g. seed-averaged).
        labels: the two arms' names.
        row_labels: optional N strings shown before each id (e.g. ``"gain"``).
        path: save the figure there when given.
        threshold, panel_size, dpi, title: as `lung_keras.viz.segmentation_grid`.

    Returns:
        The `matplotlib.figure.Figure`.
    """
    images, masks = to_numpy(images), to_numpy(masks)
    preds_a, preds_b = to_numpy(preds_a), to_numpy(preds_b)
    n = images.shape[0]
    if n == 0:
        raise ValueError("dice_change_figure needs at least one image.")
    for name, value in (("masks", masks), ("preds_a", preds_a), ("preds_b", preds_b), ("ids", ids),
                        ("dice_a", dice_a), ("dice_b", dice_b)):
        if len(value) != n:
            raise ValueError(f"{name} needs {n} entries, one per image. Received: {len(value)}")
    row_labels = [""] * n if row_labels is None else [str(r) for r in row_labels]
    fig = new_figure(figsize=(panel_size * 4, panel_size * n + 0.4 + (0.3 if title else 0)), dpi=dpi)
    axes = fig.subplots(n, 4, squeeze=False)
    for r in range(n):
        img = as_display_image(images[r])
        truth = as_binary_mask(masks[r], 0.5)
        pa, pb = as_binary_mask(preds_a[r], threshold), as_binary_mask(preds_b[r], threshold)
        da, db = float(dice_a[r]), float(dice_b[r])
        row = axes[r]
        row[0].imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
        row[1].imshow(truth, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        overlay_contours(row[2], img, [truth, pa], labels=("true", "pred"), legend=(r == 0))
        overlay_contours(row[3], img, [truth, pb], labels=("true", "pred"), legend=False)
        prefix = f"{row_labels[r]} " if row_labels[r] else ""
        row[0].set_title(f"{prefix}{ids[r]}", fontsize="small")
        row[1].set_title(f"true mask  \u0394 {db - da:+.3f}", fontsize="small")
        row[2].set_title(f"{labels[0]}  Dice {da:.3f}", fontsize="small")
        row[3].set_title(f"{labels[1]}  Dice {db:.3f}", fontsize="small")
        for ax in row:
            ax.set_axis_off()
    return finish_figure(fig, path, title)


def dice_change_figures(out, entries, predictions, arms, dashboard_arm, slug, k=3):
    """One figure per test set: the `k` largest gains and losses of `arms[1] - arms[0]`.

    Args:
        out: report folder; figures go to `<out>/figures/changes_<slug>.png`.
        entries: `lung_keras.compare` conditions (``"train"``, ``"test_set"``,
            ``"arms"`` with ``per_image`` ``ids`` / ``dice`` seed-averaged).
        predictions: `{(test set name, arm): (images, masks, predictions, ids)}`
            of the arms' first seed.
        arms: `(a, b)`, e.g. `("baseline", "augmented")`.
        dashboard_arm: `arm -> arm name in the dashboard` (the run name without
            `-seed<k>`, relative to the TensorBoard logdir), for the links.
        slug: `text -> file-name-safe text`.
        k: images per direction.

    Returns:
        `{caption: path relative to out}`; each caption ends with the dashboard link.
    """
    import pathlib

    from lung_keras.callbacks.test_predictions import TEST_SUBDIR
    from lung_keras.callbacks.test_predictions import dashboard_tag

    try:
        from lung_keras_tb.links import arm_view_link
    except ImportError:  # no dashboard installed: figures without links
        arm_view_link = None
    a, b = arms
    out = pathlib.Path(out)
    figures = {}
    for entry in entries:
        set_name = entry["test_set"]
        if a not in entry["arms"] or b not in entry["arms"] or (set_name, a) not in predictions \
                or (set_name, b) not in predictions:
            continue
        ids = list(entry["arms"][a]["per_image"]["ids"])
        if list(entry["arms"][b]["per_image"]["ids"]) != ids:
            continue
        dice_a = np.asarray(entry["arms"][a]["per_image"]["dice"], dtype=np.float64)
        dice_b = np.asarray(entry["arms"][b]["per_image"]["dice"], dtype=np.float64)
        gains, losses = largest_changes(dice_a, dice_b, k)
        chosen = gains + losses
        if not chosen:
            continue
        x, y, pa, ids_a = predictions[(set_name, a)]
        _, _, pb, ids_b = predictions[(set_name, b)]
        pos_a = {sid: i for i, sid in enumerate(ids_a)}
        pos_b = {sid: i for i, sid in enumerate(ids_b)}
        ia = [pos_a[ids[i]] for i in chosen]
        ib = [pos_b[ids[i]] for i in chosen]
        name = f"{entry['train']} | {set_name}"
        path = out / "figures" / f"changes_{slug(name)}.png"
        dice_change_figure(
            x[ia], y[ia], pa[ia], pb[ib], [ids[i] for i in chosen], dice_a[chosen], dice_b[chosen],
            labels=(a, b), row_labels=["gain"] * len(gains) + ["loss"] * len(losses), path=path,
            title=f"{name}: largest per-image Dice changes, {b} \u2212 {a}\n"
                  "(Dice: mean over seeds; outlines: first seed's predictions)",
        )
        counts = (f"top {len(gains)} gain{'' if len(gains) == 1 else 's'} and "
                  f"{len(losses)} loss{'' if len(losses) == 1 else 'es'}")
        caption = (f"largest Dice changes {name}: {counts} of {b} \u2212 {a} "
                   f"(seed-averaged per-image Dice; predictions of the first seed)")
        if arm_view_link is not None:
            link = arm_view_link(dashboard_tag(set_name), f"{dashboard_arm(a)}/logs/{TEST_SUBDIR}",
                                 f"{dashboard_arm(b)}/logs/{TEST_SUBDIR}", sort="abs",
                                 image=ids[max(chosen, key=lambda i: abs(dice_b[i] - dice_a[i]))])
            caption += f". Dashboard (tensorboard --logdir {out / 'runs'} --host 127.0.0.1): {link}"
        figures[caption] = str(path.relative_to(out))
    return figures
