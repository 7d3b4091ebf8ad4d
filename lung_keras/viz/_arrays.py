"""Array helpers shared by the viz functions (numpy only, any backend's tensors)."""

import numpy as np


def to_numpy(x):
    """Converts a numpy array, TF/JAX/torch tensor or nested list to numpy."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "numpy") and callable(x.numpy):  # TF eager tensor, torch (cpu)
        return np.asarray(x.numpy())
    return np.asarray(x)


def _squeeze_batch(x):
    while x.ndim > 3 or (x.ndim == 3 and x.shape[0] == 1 and x.shape[-1] not in (1, 3)):
        if x.shape[0] != 1:
            raise ValueError(f"Expected a single image, got a batch. Received: shape={x.shape}")
        x = x[0]
    return x


def as_display_image(image):
    """Returns a float image in [0, 1], shape (H, W) or (H, W, 3).

    Accepts (H, W), (H, W, 1), (H, W, 3) (and a leading batch axis of 1),
    uint8 (0..255), floats in [0, 1], floats in [0, 255], or any other float
    range (e.g. standardized), which is min-max scaled.
    """
    x = _squeeze_batch(to_numpy(image))
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[-1] not in (3, 4)):
        raise ValueError(f"Expected an image of shape (H, W), (H, W, 1) or (H, W, 3). Received: shape={x.shape}")
    if x.ndim == 3 and x.shape[-1] == 4:
        x = x[..., :3]
    if x.dtype == np.bool_:
        return x.astype("float32")
    if np.issubdtype(x.dtype, np.integer):
        return np.clip(x.astype("float32") / (255.0 if x.max(initial=0) > 1 else 1.0), 0.0, 1.0)
    x = x.astype("float32")
    finite = np.isfinite(x)
    if not finite.any():
        return np.zeros_like(x)
    lo, hi = float(x[finite].min()), float(x[finite].max())
    if lo >= 0.0 and hi <= 1.0:
        return np.where(finite, x, 0.0)
    if lo >= 0.0 and hi <= 255.0:
        return np.where(finite, x / 255.0, 0.0)
    scale = hi - lo if hi > lo else 1.0
    return np.where(finite, (x - lo) / scale, 0.0)


def as_binary_mask(mask, threshold=0.5):
    """Returns a boolean (H, W) mask.

    - bool: as is.
    - integers: 0/1 or 0/255 masks (divided by 255 when max > 1), then `>= threshold`.
    - floats: probabilities, foreground where `>= threshold` (the convention
      of `lung_keras.metrics`); values above 1 are taken as 0..255.
    - a trailing channel axis > 1 (one-hot or per-class probabilities, as in the
      TensorFlow tutorial) -> argmax, foreground = any class other than 0.
    """
    m = _squeeze_batch(to_numpy(mask))
    if m.ndim == 3:
        if m.shape[-1] == 1:
            m = m[..., 0]
        else:
            return np.argmax(m, axis=-1) > 0
    if m.ndim != 2:
        raise ValueError(f"Expected a mask of shape (H, W) or (H, W, C). Received: shape={m.shape}")
    if m.dtype == np.bool_:
        return m
    m = m.astype("float32")
    if m.max(initial=0.0) > 1.0:
        m = m / 255.0
    return m >= threshold


def dice_np(true, pred, empty_score=1.0):
    """Dice of two boolean masks; `empty_score` when both are empty."""
    true = np.asarray(true, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    denom = true.sum() + pred.sum()
    if denom == 0:
        return float(empty_score)
    return float(2.0 * np.logical_and(true, pred).sum() / denom)
