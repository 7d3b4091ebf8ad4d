"""Training curves: `plot_history` (one run) and `plot_histories` (arms, seeds)."""

import csv
import math
import os
import warnings

import numpy as np
from matplotlib.ticker import MaxNLocator

from lung_keras.viz._figure import new_figure
from lung_keras.viz._figure import save_figure

_METRIC_LABELS = {"loss": "Loss", "accuracy": "Accuracy", "dice": "Dice"}


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
):
    """Plots train vs validation curves, one panel per metric present.

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
    for ax, (metric, key) in zip(axes, present):
        for split_key, label, style in ((key, "train", "-"), (f"val_{key}", "val", "--")):
            if split_key in hist:
                y = hist[split_key]
                ax.plot(_epochs(hist, len(y)), y, style, marker="o", markersize=3, label=label)
        ax.set_title(_label(metric))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


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
):
    """Overlays the curves of several arms, e.g. baseline vs augmented.

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
                curves = []
                for h in hs:
                    key = _resolve_metric(h, metric)
                    if key is None:
                        continue
                    k = key if split == "train" else f"val_{key}"
                    if k in h:
                        curves.append(h[k])
                if not curves:
                    continue
                y = _stack(curves)
                with np.errstate(all="ignore"):
                    mean = np.nanmean(y, axis=0)
                x = np.arange(1, y.shape[1] + 1)
                style = "-" if split == "val" else "--"
                label = f"{arm} {split}" + (f" (n={len(curves)})" if len(curves) > 1 else "")
                ax.plot(x, mean, style, color=color, label=label)
                if band is not None and len(curves) > 1:
                    with np.errstate(all="ignore"), warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        if band == "std":
                            sd = np.nanstd(y, axis=0)
                            lo, hi = mean - sd, mean + sd
                        else:
                            lo, hi = np.nanmin(y, axis=0), np.nanmax(y, axis=0)
                    ax.fill_between(x, lo, hi, color=color, alpha=0.15 if split == "val" else 0.08, linewidth=0)
        ax.set_title(_label(metric))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize="x-small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    return fig

