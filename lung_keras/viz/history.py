"""Training curves: `plot_history` (one run) and `plot_histories` (arms, seeds)."""

import csv
import math
import os
import warnings

import numpy as np

from lung_keras.viz._figure import finish_epoch_axes
from lung_keras.viz._figure import finish_figure
from lung_keras.viz._figure import new_figure

_METRIC_LABELS = {"loss": "Loss", "accuracy": "Accuracy", "dice": "Dice"}

#: Line style of each split, shared by `plot_history` and `plot_histories`: validation solid (what
#: checkpoint selection reads), training dashed.
SPLIT_STYLES = {"train": "--", "val": "-"}
BEST_MARKER = dict(marker="*", markersize=12, markeredgecolor="black", markeredgewidth=0.6, linestyle="none")


def _best_mode(key):
    return "min" if "loss" in key else "max"


def best_epoch(values, key):
    """0-based index of the best value of a validation curve (`min` for losses, else `max`); None if all NaN."""
    values = np.asarray(values, dtype="float64")
    if values.size == 0 or np.isnan(values).all():
        return None
    return int(np.nanargmin(values) if _best_mode(key) == "min" else np.nanargmax(values))


def _monitor_key(hist, best):
    """The validation key the best epoch is read from, or None (absent, or `best=None`)."""
    if best is None:
        return None
    key = best if best.startswith("val_") else f"val_{best}"
    if key in hist:
        return key
    return "val_loss" if best == "val_dice" and "val_loss" in hist else None


def load_history(history_or_csv):
    """Returns a training history as `{name: np.ndarray}` (one value per epoch).

    Args:
        history_or_csv: a `keras.callbacks.History` (anything with a `.history`
            dict), a dict of per-epoch lists, or a path to a `keras.callbacks.
            CSVLogger` file (`epoch,loss,...,val_loss,...`). The `epoch`
            column, if present, is kept under the key `"epoch"` (0-based as
            Keras writes it).
    """
    h = history_or_csv
    if hasattr(h, "history") and isinstance(getattr(h, "history"), dict):
        h = h.history
    if isinstance(h, (str, os.PathLike)):
        with open(h, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            raise ValueError(f"History CSV has no rows. Received: path={h!r}")
        out = {}
        for key in rows[0].keys():
            vals = []
            for row in rows:
                v = row.get(key, "")
                vals.append(float(v) if v not in ("", None) else math.nan)
            out[key.strip()] = np.asarray(vals, dtype="float64")
        return out
    if isinstance(h, dict):
        return {str(k): np.asarray(v, dtype="float64").reshape(-1) for k, v in h.items()}
    raise TypeError(
        "Expected a keras History, a dict of lists or a CSVLogger path. "
        f"Received: history_or_csv={type(history_or_csv).__name__}"
    )


def _resolve_metric(hist, metric):
    """Finds the key for `metric` in `hist`: exact name, else a unique train key containing it."""
    if metric in hist or f"val_{metric}" in hist:
        return metric
    candidates = [
        k for k in hist if not k.startswith("val_") and k != "epoch" and metric in k
    ]
    if metric == "loss":  # never mistake 'dice_loss' etc. for the total loss
        candidates = []
    return candidates[0] if len(candidates) == 1 else None


def _epochs(hist, n):
    if "epoch" in hist and len(hist["epoch"]) == n:
        return hist["epoch"] + 1.0
    return np.arange(1, n + 1, dtype="float64")


def _label(metric):
    return _METRIC_LABELS.get(metric, metric.replace("_", " ").capitalize())


def plot_history(
    history_or_csv,
    metrics=("loss", "accuracy", "dice"),
    path=None,
    title=None,
    dpi=100,
    best="val_dice",
):
    """Plots train vs validation curves, one panel per metric present.

    Training is dashed, validation solid (as in `plot_histories`). The best epoch of
    the `best` validation curve (the checkpoint `lung-keras train` keeps) is marked:
    a dotted vertical line on every panel and a star on that curve.

    Args:
        history_or_csv: a `keras.callbacks.History`, a dict of per-epoch lists
            or a path to a `CSVLogger` file (see `load_history`).
        metrics: metric names to plot. A metric is plotted when its train key
            (`"dice"`) or validation key (`"val_dice"`) is present; if the exact
            name is absent, a single train key containing it is used (e.g.
            `"binary_accuracy"` for `"accuracy"`). Missing metrics are skipped.
        path: if given, the figure is saved there (PNG by suffix).
        title: optional figure title.
        dpi: figure resolution.
        best: validation metric whose best epoch is marked (highest, or lowest for a
            loss); `"val_dice"` falls back to `"val_loss"` when absent; None marks nothing.

    Returns:
        The `matplotlib.figure.Figure` (Agg canvas, works headless).

    Raises:
        ValueError: if none of `metrics` is in the history.

    Example:
    ```python
    history = model.fit(...)
    plot_history(history, path="curves.png")
    plot_history("run/history.csv", metrics=("loss", "dice"))
    ```
    """
    hist = load_history(history_or_csv)
    if isinstance(metrics, str):
        metrics = (metrics,)
    present = [(m, k) for m in metrics if (k := _resolve_metric(hist, m)) is not None]
    if not present:
        raise ValueError(
            f"None of the requested metrics is in the history (keys: {sorted(hist)}). "
            f"Received: metrics={tuple(metrics)}"
        )
    n = len(present)
    fig = new_figure(figsize=(4.2 * n, 3.4), dpi=dpi)
    axes = fig.subplots(1, n, squeeze=False)[0]
    monitor = _monitor_key(hist, best)
    best_i = best_epoch(hist[monitor], monitor) if monitor else None
    for ax, (metric, key) in zip(axes, present):
        for split_key, split in ((key, "train"), (f"val_{key}", "val")):
            if split_key in hist:
                y = hist[split_key]
                ax.plot(_epochs(hist, len(y)), y, SPLIT_STYLES[split], marker="o", markersize=3, label=split)
        if best_i is not None:
            x_best = _epochs(hist, len(hist[monitor]))[best_i]
            ax.axvline(x_best, color="0.4", linestyle=":", linewidth=1.0,
                       label=f"best epoch {x_best:.0f} ({monitor} {hist[monitor][best_i]:.3f})")
            if f"val_{key}" == monitor:
                ax.plot([x_best], [hist[monitor][best_i]], color="C1", **BEST_MARKER)
        finish_epoch_axes(ax, _label(metric), "small")
    return finish_figure(fig, path, title)


def _stack(curves):
    """Stacks curves of possibly different lengths into a NaN-padded array."""
    length = max(len(c) for c in curves)
    out = np.full((len(curves), length), np.nan)
    for i, c in enumerate(curves):
        out[i, : len(c)] = c
    return out


def plot_histories(
    histories,
    metrics=("loss", "accuracy", "dice"),
    path=None,
    title=None,
    splits=("train", "val"),
    band="std",
    dpi=100,
    best="val_dice",
):
    """Overlays the curves of several arms, e.g. baseline vs augmented.

    Training is dashed, validation solid (as in `plot_history`); each arm's best
    epoch of its (seed-mean) `best` validation curve is starred in its colour.

    Args:
        histories: `{arm_name: history}` or `{arm_name: [history, ...]}` (one
            per seed); each history is anything `load_history` accepts.
        metrics: metric names; one panel per metric present in any arm.
        path: if given, the figure is saved there.
        title: optional figure title.
        splits: which curves to draw: `"train"` (dashed) and/or `"val"` (solid).
        band: with several histories per arm the mean curve is drawn with a
            shaded band: `"std"` (mean ± one standard deviation across seeds),
            `"minmax"` (range across seeds) or `None` (no band). Runs of
            different length (early stopping) are averaged over the seeds that
            reached each epoch.
        dpi: figure resolution.
        best: validation metric whose best epoch is starred per arm (highest, or
            lowest for a loss); None marks nothing.

    Returns:
        The `matplotlib.figure.Figure`.
    """
    if band not in ("std", "minmax", None):
        raise ValueError(f"band must be 'std', 'minmax' or None. Received: band={band!r}")
    bad = [s for s in splits if s not in ("train", "val")]
    if bad or not splits:
        raise ValueError(f"splits must be a subset of ('train', 'val'). Received: splits={splits!r}")
    if not isinstance(histories, dict) or not histories:
        raise ValueError("histories must be a non-empty dict {arm: history or [histories]}.")
    if isinstance(metrics, str):
        metrics = (metrics,)
    arms = {}
    for arm, hs in histories.items():
        if not isinstance(hs, (list, tuple)):
            hs = [hs]
        arms[arm] = [load_history(h) for h in hs]

    present = []
    for m in metrics:
        if any(_resolve_metric(h, m) is not None for hs in arms.values() for h in hs):
            present.append(m)
    if not present:
        raise ValueError(f"None of the requested metrics is in the histories. Received: metrics={tuple(metrics)}")

    n = len(present)
    fig = new_figure(figsize=(4.2 * n, 3.4), dpi=dpi)
    axes = fig.subplots(1, n, squeeze=False)[0]
    colors = [f"C{i}" for i in range(10)]
    for ax, metric in zip(axes, present):
        for ci, (arm, hs) in enumerate(arms.items()):
            color = colors[ci % len(colors)]
            for split in splits:
                curves, val_key = [], None
                for h in hs:
                    key = _resolve_metric(h, metric)
                    if key is None:
                        continue
                    k = key if split == "train" else f"val_{key}"
                    if k in h:
                        curves.append(h[k])
                        val_key = f"val_{key}"
                if not curves:
                    continue
                y = _stack(curves)
                with np.errstate(all="ignore"):
                    mean = np.nanmean(y, axis=0)
                x = np.arange(1, y.shape[1] + 1)
                label = f"{arm} {split}" + (f" (n={len(curves)})" if len(curves) > 1 else "")
                ax.plot(x, mean, SPLIT_STYLES[split], color=color, label=label)
                if split == "val" and _monitor_key(hs[0], best) == val_key:
                    i = best_epoch(mean, val_key)
                    if i is not None:
                        ax.plot([x[i]], [mean[i]], color=color, label=f"{arm} best: epoch {x[i]}", **BEST_MARKER)
                if band is not None and len(curves) > 1:
                    with np.errstate(all="ignore"), warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        if band == "std":
                            sd = np.nanstd(y, axis=0)
                            lo, hi = mean - sd, mean + sd
                        else:
                            lo, hi = np.nanmin(y, axis=0), np.nanmax(y, axis=0)
                    ax.fill_between(x, lo, hi, color=color, alpha=0.15 if split == "val" else 0.08, linewidth=0)
        finish_epoch_axes(ax, _label(metric), "x-small")
    return finish_figure(fig, path, title)

