import keras
from keras import ops

MODES = ("none", "standardize", "percentile", "equalize")


@keras.saving.register_keras_serializable(package="lung_keras")
class IntensityNormalization(keras.layers.Layer):
    """Per-image intensity normalization, in the graph, so a new scanner's grey levels reach the model mapped.

    Statistics are computed per image over height, width and channels, at training and at inference alike
    (the layer has no weights and no state), so the same radiograph taken brighter or with lower contrast maps
    to nearly the same input. Put it first in a model (`unet(..., normalization="equalize")` does) and it is
    saved with the model: `evaluate`, `predict` and a user's own pipeline get it for free.

    Args:
        mode: one of
            - `"none"`: identity (cast to the compute dtype);
            - `"standardize"`: `(x - mean) / max(std, 1 / sqrt(N))` with `N` the pixel count (as
              `tf.image.per_image_standardization`): invariant to any global gain and offset;
            - `"percentile"`: clip to the image's `percentiles` (linear interpolation between order
              statistics) and rescale that range to [0, 1]: robust to a few saturated pixels, labels and
              collimator edges;
            - `"equalize"`: histogram equalization: each value is replaced by the fraction of the image's
              pixels below it, read from a `bins`-bin histogram spanning the image's own min..max with
              linear interpolation inside a bin (output in [0, 1]): invariant to any increasing grey-level
              mapping (gain, offset, gamma, window) up to the bin width.
            Defaults to `"equalize"` (chosen by measurement; see `benchmarks/RESULTS.md`).
        percentiles: `(low, high)` in [0, 100] for `"percentile"`. Defaults to `(1.0, 99.0)`.
        bins: histogram bins for `"equalize"`. Defaults to 256.

    Input: `(batch, height, width, channels)` or `(height, width, channels)`, any real or integer dtype.
    Output: same shape, float (the layer's compute dtype).

    Example:
        >>> layer = IntensityNormalization("standardize")
        >>> x = keras.random.uniform((2, 64, 64, 1), seed=0)
        >>> y = layer(0.5 * x + 0.2)
        >>> bool(ops.all(ops.abs(y - layer(x)) < 1e-4))
        True
    """

    def __init__(self, mode="equalize", percentiles=(1.0, 99.0), bins=256, **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {MODES}. Received: mode={mode!r}")
        try:
            low, high = (float(p) for p in percentiles)
        except (TypeError, ValueError):
            raise ValueError(f"`percentiles` must be two numbers (low, high). Received: percentiles={percentiles!r}")
        if not 0.0 <= low < high <= 100.0:
            raise ValueError(f"`percentiles` must satisfy 0 <= low < high <= 100. Received: percentiles={percentiles!r}")
        if isinstance(bins, bool) or int(bins) != bins or int(bins) < 2:
            raise ValueError(f"`bins` must be an integer >= 2. Received: bins={bins!r}")
        self.mode = mode
        self.percentiles = (low, high)
        self.bins = int(bins)
        self.supports_masking = False

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "none":
            return x
        unbatched = len(x.shape) == 3
        if unbatched:
            x = ops.expand_dims(x, 0)
        shape = ops.shape(x)
        flat = ops.reshape(x, (shape[0], -1))
        if self.mode == "standardize":
            out = _standardize(flat)
        elif self.mode == "percentile":
            out = _percentile_rescale(flat, self.percentiles)
        else:
            out = _equalize(flat, self.bins)
        out = ops.reshape(out, shape)
        return out[0] if unbatched else out

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode, "percentiles": list(self.percentiles), "bins": self.bins})
        return config


def _standardize(flat):
    n = ops.cast(ops.shape(flat)[1], flat.dtype)
    mean = ops.mean(flat, axis=1, keepdims=True)
    std = ops.sqrt(ops.mean(ops.square(flat - mean), axis=1, keepdims=True))
    return (flat - mean) / ops.maximum(std, ops.rsqrt(n))


def _percentile_rescale(flat, percentiles):
    q = ops.convert_to_tensor([percentiles[0] / 100.0, percentiles[1] / 100.0], dtype=flat.dtype)
    bounds = ops.quantile(flat, q, axis=1, keepdims=True)  # (2, batch, 1)
    low, high = bounds[0], bounds[1]
    span = high - low
    scaled = (flat - low) / ops.where(span > 0, span, ops.ones_like(span))
    return ops.clip(ops.where(span > 0, scaled, ops.zeros_like(scaled)), 0.0, 1.0)


def _equalize(flat, bins):
    """Piecewise-linear empirical CDF of each row, from a `bins`-bin histogram over the row's min..max."""
    n = ops.shape(flat)[1]
    low = ops.min(flat, axis=1, keepdims=True)
    high = ops.max(flat, axis=1, keepdims=True)
    span = high - low
    pos = (flat - low) / ops.where(span > 0, span, ops.ones_like(span)) * bins  # in [0, bins]
    index = ops.clip(ops.cast(ops.floor(pos), "int32"), 0, bins - 1)
    frac = pos - ops.cast(index, flat.dtype)
    # Per-row histogram as one segment sum (traceable with a static bin count, unlike bincount on JAX).
    rows = ops.shape(flat)[0]
    ids = index + ops.expand_dims(ops.arange(rows, dtype="int32") * bins, 1)
    counts = ops.segment_sum(ops.reshape(ops.ones_like(flat), (-1,)), ops.reshape(ids, (-1,)), num_segments=rows * bins)
    counts = ops.reshape(counts, (rows, bins))
    below = ops.cumsum(counts, axis=1) - counts
    start = ops.take_along_axis(below, index, axis=1)
    width = ops.take_along_axis(counts, index, axis=1)
    out = (start + frac * width) / ops.cast(n, flat.dtype)
    # A constant image has no grey-level order: map it to 0.5.
    return ops.where(span > 0, out, ops.full_like(out, 0.5))
