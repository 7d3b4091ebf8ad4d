"""`segmentation_grid_array`: the segmentation grid drawn with numpy + PIL (fast, for logging)."""

import numpy as np

from lung_keras.viz._arrays import as_binary_mask
from lung_keras.viz._arrays import as_display_image
from lung_keras.viz._arrays import dice_np
from lung_keras.viz._arrays import to_numpy

TRUE_COLOR = np.array([0, 208, 0], dtype="float32")  # as overlay_contours' defaults
PRED_COLOR = np.array([255, 32, 32], dtype="float32")


def _outline(m):
    """Pixels of `m` with a 4-neighbour outside `m` (one-pixel inner contour)."""
    p = np.pad(m, 1, mode="constant", constant_values=False)
    inner = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return m & ~inner


def _rgb(gray_or_rgb):
    x = gray_or_rgb if gray_or_rgb.ndim == 3 else np.repeat(gray_or_rgb[..., None], 3, axis=-1)
    return x.astype("float32") * 255.0


def overlay_array(image, true_mask, pred_mask, fill_alpha=0.25):
    """RGB uint8 overlay: truth green, prediction red (fill + one-pixel outline)."""
    out = _rgb(as_display_image(image))
    for m, color in ((true_mask, TRUE_COLOR), (pred_mask, PRED_COLOR)):
        if m is None:
            continue
        out[m] = (1.0 - fill_alpha) * out[m] + fill_alpha * color
    for m, color in ((true_mask, TRUE_COLOR), (pred_mask, PRED_COLOR)):
        if m is not None:
            out[_outline(m)] = color
    return np.clip(out, 0, 255).astype(np.uint8)


COLUMNS = ("image", "true mask", "prediction", "overlay")


def caption_font(size):
    """A scalable font of `size` pixels (DejaVu Sans, bundled with matplotlib; Pillow's default otherwise)."""
    from PIL import ImageFont

    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)
    except (ImportError, OSError, ValueError):
        return ImageFont.load_default(size=size)


def caption_size(width):
    """Caption font size for a grid `width` pixels wide: 1/30 of it, at least 12 px.

    TensorBoard's Images tab fits a grid to its card, so a caption sized relative
    to the image stays readable at the default zoom (a fixed 11 px bitmap font
    shrank to a few pixels).
    """
    return max(12, round(width / 30))


def _fit(draw, text, size, width, smallest=9):
    """`(font, text)`: the largest font <= `size` (down to `smallest` px) in which `text` fits `width`
    pixels; still too long at that size, the text loses characters in its middle ("MCU…0001_0")."""
    while True:
        font = caption_font(size)
        if draw.textlength(text, font=font) <= width:
            return font, text
        if size <= smallest:
            break
        size -= 1
    keep = len(text)
    while keep > 1:
        keep -= 1
        short = text[: (keep + 1) // 2] + "\u2026" + text[len(text) - keep // 2 :]
        if draw.textlength(short, font=font) <= width:
            return font, short
    return font, "\u2026"


def segmentation_grid_array(images, masks, preds, ids=None, dice=None, threshold=0.5, scale=None, caption=True,
                            font_size=None):
    """One row per sample, `image | true mask | prediction | overlay`, as a uint8 RGB array.

    The fast counterpart of `segmentation_grid` (no matplotlib; milliseconds
    per sample), used by `DisplayCallback`. With `caption`, a header strip names
    the columns ("image", "true mask", "prediction", "overlay") and each row has
    a caption strip `"<id>  Dice 0.953"` above it, in a font sized relative to
    the grid (`caption_size`), so it stays legible when TensorBoard scales the
    image to its card; a long id shrinks the font, then loses its middle, to fit.

    Args:
        images, masks, preds: (N, H, W[, C]) arrays or tensors.
        ids: N sample ids (default "0", "1", ...).
        dice: N Dice values; computed from the binarized masks when None.
        threshold: foreground where the prediction `>= threshold`.
        scale: integer upscaling of each panel (default: smallest giving
            panels at least 128 pixels high).
        caption: draw the header and caption strips.
        font_size: caption font size in pixels (default `caption_size(width)`).

    Returns:
        `(header + rows * (strip + H * scale), 4 * W * scale + 3 * gap, 3)` uint8,
        where `strip = header = round(1.5 * font_size)` with captions, else 0.
    """
    from PIL import Image
    from PIL import ImageDraw

    images, masks, preds = to_numpy(images), to_numpy(masks), to_numpy(preds)
    n = images.shape[0]
    if masks.shape[0] != n or preds.shape[0] != n or n == 0:
        raise ValueError(
            f"images, masks and preds need the same, non-zero length. Received: {n}, {masks.shape[0]}, {preds.shape[0]}"
        )
    ids = [str(i) for i in range(n)] if ids is None else [str(i) for i in ids]
    true_b = [as_binary_mask(m, threshold) for m in masks]
    pred_b = [as_binary_mask(p, threshold) for p in preds]
    if dice is None:
        dice = [dice_np(t, p) for t, p in zip(true_b, pred_b)]
    dice = [float(d) for d in np.asarray(dice).reshape(-1)]
    h, w = true_b[0].shape
    if scale is None:
        scale = max(1, -(-128 // h))
    gap = 4
    width = 4 * w * scale + 3 * gap
    size = (font_size or caption_size(width)) if caption else 0
    cap = round(1.5 * size) if caption else 0
    header = cap
    row_h = cap + h * scale
    canvas = np.full((header + n * row_h, width, 3), 255, dtype=np.uint8)
    for r in range(n):
        img = as_display_image(images[r])
        panels = [
            np.clip(_rgb(img), 0, 255).astype(np.uint8),
            np.repeat((true_b[r] * 255).astype(np.uint8)[..., None], 3, -1),
            np.repeat((pred_b[r] * 255).astype(np.uint8)[..., None], 3, -1),
            overlay_array(img, true_b[r], pred_b[r]),
        ]
        y0 = header + r * row_h + cap
        for c, panel in enumerate(panels):
            big = np.kron(panel, np.ones((scale, scale, 1), dtype=np.uint8)) if scale > 1 else panel
            x0 = c * (w * scale + gap)
            canvas[y0 : y0 + h * scale, x0 : x0 + w * scale] = big
    if caption:
        pil = Image.fromarray(canvas)
        draw = ImageDraw.Draw(pil)
        column = w * scale
        for c, label in enumerate(COLUMNS):
            font, label = _fit(draw, label, size, column)
            x = c * (column + gap) + (column - draw.textlength(label, font=font)) / 2
            draw.text((x, header / 2), label, fill=(90, 90, 90), font=font, anchor="lm")
        for r in range(n):
            text = f"{ids[r]}   Dice {dice[r]:.3f}"
            font, text = _fit(draw, text, size, width - 4)
            draw.text((2, header + r * row_h + cap / 2), text, fill=(0, 0, 0), font=font, anchor="lm")
        canvas = np.asarray(pil).copy()
    return canvas
