"""lung_keras.viz: headless figures for training curves and segmentations.

All functions return `matplotlib.figure.Figure` objects drawn on an Agg canvas
(no pyplot global state, works without a display) and save when given `path`.
Show one in a notebook by leaving it as the cell's value, or save it.
"""

from lung_keras.viz._arrays import as_binary_mask
from lung_keras.viz._arrays import as_display_image
from lung_keras.viz._arrays import dice_np
from lung_keras.viz.dice_changes import dice_change_figure
from lung_keras.viz.dice_changes import dice_change_figures
from lung_keras.viz.dice_changes import largest_changes
from lung_keras.viz.display import display
from lung_keras.viz.display import show_predictions
from lung_keras.viz.fast_grid import overlay_array
from lung_keras.viz.fast_grid import segmentation_grid_array
from lung_keras.viz.grid import grid_to_array
from lung_keras.viz.grid import segmentation_grid
from lung_keras.viz.history import load_history
from lung_keras.viz.history import plot_histories
from lung_keras.viz.history import plot_history
from lung_keras.viz.overlay import overlay_contours
