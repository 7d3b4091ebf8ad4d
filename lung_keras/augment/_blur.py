"""Blur kernels: Gaussian kernels, per-sample separable blur, elastic displacement fields (private;
public names in `functional`). Pure functions of tensors."""

import numpy as np
from keras import ops

from lung_keras.augment._geometric import BORDER_REFLECT_101
from lung_keras.augment._geometric import border_index


def gaussian_kernel_size(sigma, ksize):
    """Kernel size Albumentations' `GaussianBlur` uses (`create_gaussian_kernel_1d`).

    `ksize == 0` -> `int(sigma * 3.5) * 2 + 1`; even sizes are bumped to odd.
    Works on Python numbers and on tensors.
    """
    if isinstance(sigma, (int, float)) and isinstance(ksize, (int, float)):
        size = int(sigma * 3.5) * 2 + 1 if ksize == 0 else int(ksize)
        return size + 1 if size % 2 == 0 else size
    sigma = ops.cast(sigma, "float32")
    ksize = ops.cast(ksize, "int32")
    auto = ops.cast(ops.floor(sigma * 3.5), "int32") * 2 + 1
    size = ops.where(ksize == 0, auto, ksize)
    return size + ops.cast(ops.mod(size, 2) == 0, "int32")


def gaussian_kernels(sigma, size, max_size):
    """Per-sample normalized 1D Gaussian kernels, zero padded to `max_size` taps.

    Args:
        sigma: `(B,)` standard deviations.
        size: `(B,)` int32 odd kernel sizes (<= `max_size`).
        max_size: static odd int.

    Returns:
        `(B, max_size)` float32; tap `k` sits at offset `k - max_size // 2`.
    """
    radius = max_size // 2
    offsets = ops.arange(-radius, radius + 1, dtype="float32")[None, :]
    sigma = ops.maximum(ops.cast(sigma, "float32"), 1e-6)[:, None]
    half = ops.cast(ops.cast(size, "int32") // 2, "float32")[:, None]
    weights = ops.exp(-0.5 * ops.square(offsets / sigma))
    weights = ops.where(ops.abs(offsets) <= half, weights, 0.0)
    return weights / ops.sum(weights, axis=1, keepdims=True)


def _pad_axis(images, radius, axis, border_mode):
    size = ops.shape(images)[axis]
    idx = ops.arange(-radius, size + radius, dtype="int32")
    idx, _ = border_index(idx, size, border_mode)
    return ops.take(images, idx, axis=axis)


def separable_blur(images, kernels, border_mode=BORDER_REFLECT_101):
    """Convolve each sample with its own separable kernel (`cv2.sepFilter2D`).

    The batch is folded into the channel axis so one depthwise convolution per
    axis handles per-sample kernels.

    Args:
        images: `(B, H, W, C)` float32.
        kernels: `(B, K)` float32, K odd (static), symmetric.
        border_mode: OpenCV border code (Albumentations uses reflect_101).

    Returns:
        `(B, H, W, C)` float32.
    """
    ksize = kernels.shape[-1]
    radius = ksize // 2
    shape = ops.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    static_c = images.shape[-1]
    if static_c is None:
        raise ValueError("separable_blur needs a static channel count. Received: channels=None")
    padded = _pad_axis(images, radius, 1, border_mode)
    padded = _pad_axis(padded, radius, 2, border_mode)
    # (B, Hp, Wp, C) -> (1, Hp, Wp, B * C)
    folded = ops.transpose(padded, (1, 2, 0, 3))
    hp = height + 2 * radius
    wp = width + 2 * radius
    folded = ops.reshape(folded, (1, hp, wp, -1))
    per_channel = ops.repeat(kernels, static_c, axis=0)  # (B*C, K)
    kx = ops.reshape(ops.transpose(per_channel), (1, ksize, -1, 1))
    ky = ops.reshape(ops.transpose(per_channel), (ksize, 1, -1, 1))
    out = ops.depthwise_conv(folded, kx, strides=1, padding="valid")
    out = ops.depthwise_conv(out, ky, strides=1, padding="valid")
    out = ops.reshape(out, (height, width, batch, channels))
    return ops.transpose(out, (2, 0, 1, 3))


def cv2_gaussian_kernel(sigma, ksize=0):
    """`cv2.getGaussianKernel(ksize, sigma)` for float data, as numpy.

    `ksize <= 0` -> `round(sigma * 8 + 1) | 1` (OpenCV's rule for float32).
    """
    if ksize <= 0:
        ksize = int(round(sigma * 8 + 1)) | 1
    x = np.arange(ksize, dtype=np.float64) - (ksize - 1) / 2.0
    w = np.exp(-(x**2) / (2.0 * sigma * sigma))
    return (w / w.sum()).astype(np.float32)


def replicate_blur_matrix(size, kernel):
    """`(n, n)` matrix applying a 1D kernel with replicate border: `out = K @ signal`.

    Built with keras.ops so `size` may be dynamic. Row `i` holds the weight of
    every source index `j` after folding out-of-range taps onto the edge
    pixels (`cv2.BORDER_REPLICATE`).
    """
    k = np.asarray(kernel, dtype=np.float32)
    radius = (k.shape[0] - 1) // 2
    cdf = np.concatenate([[0.0], np.cumsum(k)]).astype(np.float32)
    cdf_t = ops.convert_to_tensor(cdf)
    k_t = ops.convert_to_tensor(k)
    i = ops.arange(size, dtype="int32")[:, None]
    j = ops.arange(size, dtype="int32")[None, :]
    d = j - i
    inside = ops.abs(d) <= radius
    interior = ops.where(inside, ops.take(k_t, ops.clip(d + radius, 0, 2 * radius)), 0.0)
    last = size - 1
    # mass of taps k with i + k <= 0  -> sum_{k=-r}^{-i} w  = cdf[-i + r + 1]
    left = ops.take(cdf_t, ops.clip(-i + radius + 1, 0, 2 * radius + 1))
    # mass of taps k with i + k >= n-1 -> 1 - cdf[(n-1-i) - 1 + r + 1]
    right = 1.0 - ops.take(cdf_t, ops.clip(last - i + radius, 0, 2 * radius + 1))
    is_first = ops.cast(j == 0, "float32")
    is_last = ops.cast(j == last, "float32")
    middle = (1.0 - is_first) * (1.0 - is_last)
    return interior * middle + left * is_first + right * is_last


def elastic_displacement(noise, alpha, sigma, approximate=False, same_dxdy=False):
    """Albumentations' `generate_displacement_fields` from given noise, batched.

    Args:
        noise: `(B, H, W, 2)` float32 noise already normalized as Albumentations
            does (gaussian divided by the per-sample max |value|, or uniform in
            [-1, 1]). With `same_dxdy` only `[..., 0]` is used.
        alpha: displacement scale (pixels).
        sigma: Gaussian smoothing sigma (pixels).
        approximate: 17x17 kernel instead of OpenCV's automatic size.
        same_dxdy: one field for both axes.

    Returns:
        `(B, H, W, 2)` displacement `(dx, dy)` in pixels.

    Like Albumentations, the two fields are stacked vertically into one
    `(2H, W)` array before `cv2.GaussianBlur(..., BORDER_REPLICATE)`, so the
    vertical smoothing runs across the dx/dy seam.
    """
    kernel = cv2_gaussian_kernel(float(sigma), 17 if approximate else 0)
    shape = ops.shape(noise)
    height, width = shape[1], shape[2]
    if same_dxdy:
        fields = noise[..., :1]
        rows = height
    else:
        # (B, H, W, 2) -> (B, 2H, W, 1): dx rows then dy rows
        fields = ops.concatenate([noise[..., :1], noise[..., 1:2]], axis=1)
        rows = 2 * height
    kv = replicate_blur_matrix(rows, kernel)
    kh = replicate_blur_matrix(width, kernel)
    blurred = ops.einsum("ij,bjwc->biwc", kv, fields)
    blurred = ops.einsum("kw,bhwc->bhkc", kh, blurred)
    blurred = blurred * float(alpha)
    if same_dxdy:
        return ops.concatenate([blurred, blurred], axis=-1)
    return ops.concatenate([blurred[:, :height], blurred[:, height:]], axis=-1)
