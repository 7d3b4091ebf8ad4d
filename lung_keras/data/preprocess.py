"""Read images and masks: the one image intensity rule and the one mask rule, used by every reader.

`read_image` and `read_mask` are the only way the package turns files into arrays: `lung-keras data check`
(`check_dataset`), the numpy loader (`load_sample`, `load_arrays`), the tf.data loader (`make_tf_dataset`, which
calls `load_sample` through `tf.numpy_function`) and offline `lung-keras augment` / `preview` all call them, so a
file means the same thing everywhere.

Every failure is a `ValueError` naming the file (`MaskError` for masks that decode but cannot be lung masks).
Files declaring more pixels than Pillow's `Image.MAX_IMAGE_PIXELS` (a possible decompression bomb) are refused
before their pixels are decoded.
"""

import math
import numbers
import pathlib
import threading
import warnings

import numpy as np
from PIL import Image

#: Allowed diagnosis values are in `sources.DIAGNOSES`; these are the intensity scales of the image rule.
BITS_8, BITS_12, BITS_16 = 255.0, 4095.0, 65535.0

EMPTY_MASK_DETAIL = "no lung pixel: every pixel is background under the mask rule"

# `warnings.catch_warnings` swaps process-wide state; the tf.data loader reads files from several threads.
_WARNINGS_LOCK = threading.Lock()


class MaskError(ValueError):
    """A mask file that decodes but cannot be used as a lung mask.

    `kind` is the `lung-keras data check` problem kind (`"mask not binary"` or `"empty mask"`), `detail` says why.
    """

    def __init__(self, path, kind, detail):
        self.path = str(path)
        self.kind = kind
        self.detail = detail
        super().__init__(f"{path}: {kind} ({detail})")


class IntensityWarning(UserWarning):
    """An image whose intensity scale was chosen from its values (12-bit data stored in a 16-bit file)."""


# --------------------------------------------------------------------------------------------------
# Decoding


def _decode(path, convert):
    """Open `path` with Pillow and return `convert(image)`; every failure is a `ValueError` naming the file."""
    path = pathlib.Path(path)
    try:
        # Only the header is parsed here; Pillow's size check warns above MAX_IMAGE_PIXELS and raises above twice
        # that. Both become errors, so a tiny file declaring a huge image is refused before any pixel is decoded.
        with _WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            img.load()
            return convert(img)
    except FileNotFoundError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ValueError(
            f"{path}: cannot read image: {error} Refusing to decode it; if the file is genuine, raise "
            f"PIL.Image.MAX_IMAGE_PIXELS (now {Image.MAX_IMAGE_PIXELS})."
        ) from None
    except Exception as error:  # Pillow raises several types for corrupt or truncated files.
        raise ValueError(f"{path}: cannot read image ({type(error).__name__}: {error})") from error


def _image_array(img):
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(img, dtype=np.uint16)
    if img.mode == "I":
        return np.asarray(img, dtype=np.int32)
    if img.mode == "F":
        return np.asarray(img, dtype=np.float32)
    if img.mode in ("LA", "La", "1"):
        return np.asarray(img.convert("L"))
    if img.mode != "L" and img.mode != "RGB":
        img = img.convert("RGB")  # RGBA, P, CMYK, YCbCr, ...: the colour, without alpha
    return np.asarray(img)


def read_image_file(path):
    """Read an image as a 2-D (grayscale) or 3-D (colour) numpy array in its stored dtype (no scaling).

    Raises:
        ValueError: naming the file when it cannot be decoded or declares more than `Image.MAX_IMAGE_PIXELS`.
    """
    return _decode(path, _image_array)


def to_grayscale(array):
    """Convert an HxWx3 array to HxW by the ITU-R 601 luma weights; 2-D input is returned unchanged."""
    if array.ndim == 3:
        return (array[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])).astype(array.dtype)
    return array


# --------------------------------------------------------------------------------------------------
# The image intensity rule


def intensity_scale(array):
    """The one image intensity rule: the value that maps `array` to [0, 1], chosen from the values found.

    - `uint8`: 255.
    - 16-bit (and other integer) images, by their maximum: <= 255 -> 255 (8-bit data in a 16-bit file);
      <= 4095 -> 4095 (12-bit data in a 16-bit file, the usual detector range: `scale_image` warns, naming the
      file); else 65535.
    - float images: maximum <= 1 -> 1 (already in [0, 1]); otherwise the integer rule on their range.
    - bool: 1.

    Raises:
        ValueError: for negative values or values above 65535 (no 8/12/16-bit scale fits them).
    """
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return BITS_8
    if array.dtype == np.bool_:
        return 1.0
    if array.size == 0:
        return BITS_8
    low, high = array.min(), array.max()
    if array.dtype.kind == "f" and not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError("image holds NaN or infinite values")
    if low < 0:
        raise ValueError(f"image has negative values (minimum {low}); expected 8-, 12- or 16-bit intensities")
    if array.dtype.kind == "f" and high <= 1.0:
        return 1.0
    if high <= 255:
        return BITS_8
    if high <= 4095:
        return BITS_12
    if high <= 65535:
        return BITS_16
    raise ValueError(f"image values reach {high}, above the 16-bit range (65535)")


def scale_image(array, path=None, warn=True):
    """Scale an image to float32 in [0, 1] by `intensity_scale` (the one intensity rule).

    Warns (`IntensityWarning`, naming `path`) when the image looks like 12-bit data in a 16-bit container, unless
    `warn=False` (the caller reports it another way, e.g. as a `data check` problem).
    """
    array = np.asarray(array)
    try:
        scale = intensity_scale(array)
    except ValueError as error:
        raise ValueError(f"{path}: {error}" if path is not None else str(error)) from None
    if scale == BITS_12 and warn:
        warnings.warn(
            f"{path or 'image'}: 16-bit image whose maximum value is {array.max()} (<= 4095) looks like 12-bit "
            "data in a 16-bit container; scaled by 1/4095 instead of 1/65535.",
            IntensityWarning,
            stacklevel=2,
        )
    return np.clip(array.astype(np.float32) / np.float32(scale), 0.0, 1.0)


def read_image(path, channels=1):
    """Read an image file as float32 `HxWxC` in [0, 1] by the intensity rule (`intensity_scale`).

    Args:
        path: image file (PNG, JPEG, TIFF, BMP; 8, 12-in-16 or 16 bits).
        channels: 1 (colour converted by the ITU-R 601 luma weights) or 3 (grayscale replicated).
    """
    return image_from_array(read_image_file(path), channels, path)


def image_from_array(raw, channels=1, path=None, warn=True):
    """A decoded image (`read_image_file`) as float32 `HxWxC` in [0, 1]: what `read_image` returns for its file."""
    image = scale_image(to_grayscale(raw) if channels == 1 else raw, path, warn=warn)
    if image.ndim == 2:
        image = image[..., None]
    if channels == 3 and image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return image


# --------------------------------------------------------------------------------------------------
# The mask rule


def check_binarize_threshold(binarize_threshold):
    """Validate `binarize_threshold`: None, or a number strictly between 0 and 1; returns it as a float."""
    if binarize_threshold is None:
        return None
    value = binarize_threshold
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(float(value))
        or not 0.0 < float(value) < 1.0
    ):
        raise ValueError(
            "`binarize_threshold` must be a number strictly between 0 and 1 (a fraction of the mask dtype's full "
            f"range, e.g. 0.5). Received: binarize_threshold={binarize_threshold!r}"
        )
    return float(value)


def _full_range(array):
    if array.dtype == np.bool_:
        return 1.0
    if array.dtype.kind == "f":
        return 1.0
    if array.dtype == np.uint8:
        return 255.0
    if array.dtype == np.uint16 or array.max(initial=0) <= 65535:
        return 65535.0
    return float(np.iinfo(array.dtype).max)


def _mask_levels(img):
    """The 2-D array whose levels the mask rule reads, and its dtype's full range."""
    mode = img.mode
    if mode == "1":
        values = np.asarray(img, dtype=bool).astype(np.uint8)
        return values, 1.0
    if mode in ("P", "PA"):  # palette: explicitly to its colours, keeping transparency as alpha
        img = img.convert("RGBA" if mode == "PA" or "transparency" in img.info else "RGB")
    elif mode == "La":
        img = img.convert("LA")
    elif mode not in ("L", "LA", "RGB", "RGBA", "I", "F") and not mode.startswith("I;16"):
        img = img.convert("RGBA" if "A" in mode else "RGB")  # CMYK, YCbCr, RGBa, ...
    if img.mode in ("LA", "RGBA"):
        array = np.asarray(img)
        colour, alpha = array[..., :-1], array[..., -1]
        colour_constant = all(colour[..., c].min() == colour[..., c].max() for c in range(colour.shape[-1]))
        if colour_constant and alpha.min() != alpha.max():
            return alpha, 255.0  # the lung is drawn in the alpha channel
        values = colour.max(axis=-1)
        return np.where(alpha == 0, np.zeros_like(values), values), 255.0
    values = _image_array(img) if img.mode != "RGB" else np.asarray(img).max(axis=-1)
    return values, _full_range(values)


def _levels(values):
    """The sorted distinct values of a mask (`np.unique`), by counting for 8- and 16-bit masks: no sort of a
    20-megapixel radiograph's mask (~10x faster at native Montgomery size)."""
    if values.dtype in (np.uint8, np.uint16):
        return np.flatnonzero(np.bincount(values.ravel(), minlength=1)).astype(values.dtype)
    return np.unique(values)


def _format_levels(levels):
    shown = ", ".join(str(v) for v in levels[:6])
    return shown + (", ..." if len(levels) > 6 else "")


def read_mask(path, binarize_threshold=None, allow_empty=False):
    """Read a lung mask file as a uint8 `HxW` array in {0, 1}: the one mask rule.

    The rule, applied to the levels of the mask image:

    - Two-level masks (at most two distinct values): every nonzero pixel is lung. {0, 1}, {0, 100}, {0, 255} and
      {0, 65535} all work.
    - RGB masks: lung where any colour channel is nonzero (the maximum over the channels is the level image, so
      a red, a green or a white lung all count).
    - RGBA / LA masks: if the colour channels are constant and the alpha channel is not, alpha is the mask;
      otherwise the colour rule, with alpha == 0 as background.
    - Palette (P) images are converted explicitly to their colours (RGB, or RGBA when the palette has
      transparency) and then follow the rules above; 1-bit images are {0, 1}.
    - Soft masks (more than two levels: anti-aliased edges, probability maps) are rejected as "mask not binary"
      naming the file, unless `binarize_threshold` is given: then lung is where the level is above
      `binarize_threshold` times the dtype's full range (255 for 8-bit, 65535 for 16-bit, 1 for float).
      Two-level masks ignore the threshold (nonzero is lung).
    - A mask with no lung pixel is an error ("empty mask") naming the file, unless `allow_empty=True`.

    Args:
        path: the mask file.
        binarize_threshold: None (default; soft masks are errors) or a fraction in (0, 1) of the dtype's full
            range, e.g. 0.5 (`--binarize-threshold 0.5`).
        allow_empty: return an all-zero mask instead of raising (`check_dataset` reports it itself).

    Raises:
        MaskError: a `ValueError` naming the file, for a soft mask without a threshold or an empty mask.
        ValueError: naming the file when it cannot be decoded.
    """
    threshold = check_binarize_threshold(binarize_threshold)
    values, full = _decode(path, _mask_levels)
    levels = _levels(values)
    if len(levels) > 2:
        if threshold is None:
            raise MaskError(
                path,
                "mask not binary",
                f"{len(levels)} levels: {_format_levels(levels)}; a soft mask needs a threshold: "
                "binarize_threshold=0.5 (--binarize-threshold 0.5) keeps values above half the full range",
            )
        mask = values.astype(np.float64) > threshold * full
    else:
        mask = values != 0
    if not allow_empty and not mask.any():
        raise MaskError(path, "empty mask", EMPTY_MASK_DETAIL)
    return mask.astype(np.uint8)


def read_masks(paths, binarize_threshold=None):
    """The union of `read_mask` of several files (NLM left and right lung masks) as uint8 `HxW` in {0, 1}.

    With several files one part may be empty (one lung absent: pneumonectomy, collapse); the union may not.
    """
    paths = list(paths)
    mask = None
    for path in paths:
        part = read_mask(path, binarize_threshold, allow_empty=len(paths) > 1)
        if mask is not None and part.shape != mask.shape:
            raise ValueError(
                f"{path}: mask size {part.shape[1]}x{part.shape[0]} differs from {paths[0]} "
                f"size {mask.shape[1]}x{mask.shape[0]}"
            )
        mask = part if mask is None else np.maximum(mask, part)
    if mask is None:
        raise ValueError("No mask file given.")
    if not mask.any():
        raise MaskError(", ".join(str(p) for p in paths), "empty mask", EMPTY_MASK_DETAIL)
    return mask


# --------------------------------------------------------------------------------------------------
# Resizing and samples


def resize_image(image, size):
    """Resize a float32 [0, 1] image to `size=(height, width)` with antialiased bilinear (area-like when shrinking)."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image.astype(np.float32)
    channels = [image] if image.ndim == 2 else [image[..., c] for c in range(image.shape[-1])]
    out = [np.asarray(Image.fromarray(c.astype(np.float32), mode="F").resize((w, h), Image.BILINEAR)) for c in channels]
    return np.clip(out[0] if image.ndim == 2 else np.stack(out, -1), 0.0, 1.0).astype(np.float32)


def resize_mask(mask, size):
    """Resize a {0, 1} mask to `size=(height, width)` with nearest neighbour, so it stays binary."""
    h, w = size
    if mask.shape[:2] == (h, w):
        return mask
    return np.asarray(Image.fromarray(mask.astype(np.uint8)).resize((w, h), Image.NEAREST))


def load_sample(sample, image_size=None, channels=1):
    """Load one `Sample` as `(image float32 HxWxC in [0, 1], mask float32 HxWx1 in {0, 1})`.

    The image follows the intensity rule (`intensity_scale`), the mask the mask rule (`read_mask`, with the
    sample's `binarize_threshold`).

    Args:
        sample: a `lung_keras.data.Sample`.
        image_size: `(height, width)` to resize to, or None to keep the stored size.
        channels: 1 (grayscale) or 3 (grayscale replicated / colour kept).
    """
    image = read_image(sample.image_path, channels)
    mask = read_masks(sample.mask_paths, getattr(sample, "binarize_threshold", None))
    if mask.shape != image.shape[:2]:
        raise ValueError(
            f"{sample.mask_paths[0]}: mask size {mask.shape[1]}x{mask.shape[0]} differs from image "
            f"{sample.image_path} size {image.shape[1]}x{image.shape[0]}"
        )
    return resize_pair(image, mask, image_size)


def resize_pair(image, mask, image_size=None):
    """`(image float32 HxWxC, mask float32 HxWx1)` at `image_size` (or the stored size): `load_sample`'s last step."""
    if image_size is not None:
        image = resize_image(image, tuple(image_size))
        mask = resize_mask(mask, tuple(image_size))
    if image.ndim == 2:
        image = image[..., None]
    return image.astype(np.float32), mask[..., None].astype(np.float32)
