"""The Hounsfield-unit window arithmetic, once, for the `Windowing` layer and the CT slice datasets.

Kept free of Keras (imported only for tensors) so `lung_keras.data` windows numpy slices without loading it.
"""

import numpy as np

LUNG_WINDOW = (-600.0, 1500.0)
MEDIASTINUM_WINDOW = (40.0, 400.0)


def check_windows(windows, received):
    """`windows` as a list of `(level, width)` float pairs; `ValueError` ending with `Received: {received}`."""
    try:
        pairs = [(float(level), float(width)) for level, width in windows]
    except (TypeError, ValueError):
        raise ValueError(f"`windows` must be a list of (level, width) pairs. Received: {received}")
    if not pairs:
        raise ValueError(f"`windows` must hold at least one (level, width) pair. Received: {received}")
    for level, width in pairs:
        if not (0 < width < float("inf") and abs(level) < float("inf")):
            raise ValueError(f"A window's width must be a finite number > 0 and its level finite. Received: {received}")
    return pairs


def window_hu(x, windows=(LUNG_WINDOW,)):
    """Map Hounsfield units to [0, 1] through one or several `(level, width)` windows, channels last.

    Each window maps `level - width/2` to 0 and `level + width/2` to 1 linearly and clips outside:
    `y = clip((x - (level - width/2)) / width, 0, 1)` (MONAI's `ScaleIntensityRange` with `clip=True`). Several
    windows give the input's channels through the first window, then through the second, and so on. The
    `Windowing` layer calls this function, so a model's in-graph windowing and a dataset's windowing agree bit
    for bit in float32.

    Args:
        x: HU values, channels last. A numpy array (or a list, or a number) gives a float32 numpy array; a
            tensor goes through `keras.ops` in its own float dtype.
        windows: a list of `(level, width)` pairs; defaults to the lung window `(-600, 1500)`.

    Example:
        >>> window_hu(np.array([[-1350.0], [-1000.0], [-600.0], [150.0], [400.0]]))[:, 0].tolist()
        [0.0, 0.23333333432674408, 0.5, 1.0, 1.0]
    """
    pairs = check_windows(windows, f"windows={windows!r}")
    if isinstance(x, (np.ndarray, np.generic, list, tuple, int, float)):
        x = np.asarray(x, np.float32)
        low = [np.float32(level - width / 2.0) for level, width in pairs]
        outs = [np.clip((x - lo) / np.float32(width), np.float32(0), np.float32(1)) for lo, (_, width) in zip(low, pairs)]
        return outs[0] if len(outs) == 1 else np.concatenate(outs, axis=-1)
    from keras import ops

    outs = [ops.clip((x - (level - width / 2.0)) / width, 0.0, 1.0) for level, width in pairs]
    return outs[0] if len(outs) == 1 else ops.concatenate(outs, axis=-1)
