"""Helpers shared by the parity tests: run a lung_keras layer and an Albumentations transform on the same data,
and measure their agreement."""

import keras
import numpy as np


def run_ours(layer, images, masks=None, transformation=None):
    """Apply a lung_keras layer (training=True) or, with `transformation`, its pure transform functions."""
    if transformation is not None:
        out_images = layer.transform_images(keras.ops.convert_to_tensor(images), transformation)
        out_masks = None
        if masks is not None:
            out_masks = layer.transform_segmentation_masks(keras.ops.convert_to_tensor(masks), transformation)
    elif masks is None:
        out_images, out_masks = layer(images, training=True), None
    else:
        out = layer({"images": images, "segmentation_masks": masks}, training=True)
        out_images, out_masks = out["images"], out["segmentation_masks"]
    out_images = np.asarray(keras.ops.convert_to_numpy(out_images))
    if out_masks is not None:
        out_masks = np.asarray(keras.ops.convert_to_numpy(out_masks))
    return out_images, out_masks


def run_albu(transform, images, masks=None, **params):
    """Apply an Albumentations transform to each sample: with `params`, through `apply`/`apply_to_mask` with those
    fixed parameters; else through a seeded `Compose` (use degenerate ranges so the draw does not matter)."""
    import albumentations as A

    out_i, out_m = [], []
    for k in range(len(images)):
        im = images[k]
        m = None if masks is None else masks[k]
        if params:
            p = dict(params)
            p.setdefault("shape", im.shape)
            oi = transform.apply(im, **p)
            om = None if m is None else transform.apply_to_mask(m, **p)
        else:
            pipe = A.Compose([transform], seed=k)
            res = pipe(image=im) if m is None else pipe(image=im, mask=m)
            oi, om = res["image"], res.get("mask")
        if oi.ndim == 2:
            oi = oi[..., None]
        if om is not None and om.ndim == 2:
            om = om[..., None]
        out_i.append(oi)
        out_m.append(om)
    return np.stack(out_i), (None if masks is None else np.stack(out_m))


def interior(x, margin):
    return x[:, margin:-margin, margin:-margin] if margin else x


def diffs(ours, ref, margin=0):
    """`(max abs diff on pixels >= margin from the border, mean abs diff overall)` in value units."""
    a = ours.astype(np.float64)
    b = ref.astype(np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(interior(a, margin) - interior(b, margin)).max()), float(np.abs(a - b).mean())


def agreement(ours, ref):
    """Fraction of mask pixels with identical values."""
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    return float(np.mean(ours == ref))
