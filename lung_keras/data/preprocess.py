"""Read and preprocess images and masks with Pillow (numpy path; the tf.data path mirrors it)."""

import pathlib

import numpy as np
from PIL import Image


def read_image_file(path):
    """Read an image as a 2-D (grayscale) or 3-D (colour) numpy array in its stored dtype.

    Raises:
        ValueError: naming the file when it cannot be decoded.
    """
    path = pathlib.Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L"):
                return np.asarray(img, dtype=np.uint16)
            if img.mode == "I":
                return np.asarray(img, dtype=np.int32)
            if img.mode in ("RGBA", "LA", "P", "CMYK", "YCbCr"):
                img = img.convert("RGB" if img.mode != "LA" else "L")
            if img.mode == "1":
                img = img.convert("L")
            return np.asarray(img)
    except FileNotFoundError:
        raise
    except Exception as error:  # Pillow raises several types for corrupt files.
        raise ValueError(f"{path}: cannot read image ({error})") from error


def to_grayscale(array):
    """Convert an HxWx3 array to HxW by the ITU-R 601 luma weights; 2-D input is returned unchanged."""
    if array.ndim == 3:
        return (array[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])).astype(array.dtype)
    return array


def scale_image(array):
    """Scale an integer or float image to float32 in [0, 1] (by the dtype's range, or by 255 for floats > 1)."""
    if np.issubdtype(array.dtype, np.integer):
        if array.dtype == np.uint8:
            return array.astype(np.float32) / 255.0
        peak = 65535.0 if array.max(initial=0) > 255 else 255.0
        return np.clip(array.astype(np.float32) / peak, 0.0, 1.0)
    array = array.astype(np.float32)
    return np.clip(array / 255.0 if array.max(initial=0) > 1.0 else array, 0.0, 1.0)


def binarize_mask(array):
    """Map a mask to {0, 1} uint8: values above half the mask's stored range count as foreground."""
    array = to_grayscale(np.asarray(array))
    if np.issubdtype(array.dtype, np.integer) and array.max(initial=0) > 1:
        threshold = 127 if array.max(initial=0) <= 255 else 32767
        return (array > threshold).astype(np.uint8)
    return (array > 0.5 if array.dtype.kind == "f" else array > 0).astype(np.uint8)


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

    Args:
        sample: a `lung_keras.data.Sample`.
        image_size: `(height, width)` to resize to, or None to keep the stored size.
        channels: 1 (grayscale) or 3 (grayscale replicated / colour kept).
    """
    raw = read_image_file(sample.image_path)
    image = scale_image(to_grayscale(raw) if channels == 1 else raw)
    mask = None
    for path in sample.mask_paths:
        part = binarize_mask(read_image_file(path))
        if part.shape != image.shape[:2]:
            raise ValueError(
                f"{path}: mask size {part.shape[1]}x{part.shape[0]} differs from image "
                f"{sample.image_path} size {image.shape[1]}x{image.shape[0]}"
            )
        mask = part if mask is None else np.maximum(mask, part)
    if image_size is not None:
        image = resize_image(image, tuple(image_size))
        mask = resize_mask(mask, tuple(image_size))
    if image.ndim == 2:
        image = image[..., None]
    if channels == 3 and image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return image.astype(np.float32), mask[..., None].astype(np.float32)
