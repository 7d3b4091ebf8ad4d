"""Headless figure helpers (Agg canvas, never pyplot global state)."""

import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def new_figure(figsize, dpi=100, **kwargs):
    """Returns a `Figure` attached to its own Agg canvas (no pyplot, no GUI)."""
    fig = Figure(figsize=figsize, dpi=dpi, **kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path, dpi=None):
    """Saves `fig` to `path` (format from the suffix), creating parent folders."""
    if path is None:
        return None
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    from lung_keras._io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi if dpi is not None else "figure", bbox_inches="tight")
    return path


def finish_figure(fig, path=None, title=None):
    """The common end of every figure here: the title over all panels, a tight layout, saved when `path` is
    given. Returns `fig`."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def finish_epoch_axes(ax, metric_label, legend_size="small"):
    """Title, epoch x-axis with integer ticks, light grid and legend of one per-epoch curve panel."""
    from matplotlib.ticker import MaxNLocator

    ax.set_title(metric_label)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=legend_size)
