"""lung_keras.viz: headless figures for training curves and segmentations.

All functions return `matplotlib.figure.Figure` objects drawn on an Agg canvas
(no pyplot global state, works without a display) and save when given `path`.
"""

from lung_keras.viz.history import load_history
from lung_keras.viz.history import plot_histories
from lung_keras.viz.history import plot_history
