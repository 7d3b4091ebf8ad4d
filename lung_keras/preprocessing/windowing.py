import keras
from keras import ops

from lung_keras._windowing import LUNG_WINDOW
from lung_keras._windowing import MEDIASTINUM_WINDOW  # noqa: F401 (re-exported by lung_keras.preprocessing)
from lung_keras._windowing import check_windows
from lung_keras._windowing import window_hu


@keras.saving.register_keras_serializable(package="lung_keras")
class Windowing(keras.layers.Layer):
    """Hounsfield-unit windowing of CT slices to [0, 1], in the graph, so it is saved with the model.

    A window (level `L`, width `W`) maps `L - W/2` to 0 and `L + W/2` to 1 linearly:
    `y = clip((x - (L - W/2)) / W, 0, 1)`. Values below the window are clipped to 0 and values above to 1
    (everything darker than -1350 HU is 0 in the default lung window, everything brighter than 150 HU is 1),
    so air, lung and dense tissue stay apart while bone and metal saturate. This is MONAI's
    `ScaleIntensityRange(a_min=L - W/2, a_max=L + W/2, b_min=0, b_max=1, clip=True)`; DICOM's own VOI LUT
    formula (PS3.3 C.11.2.1.2) differs by half a grey level (`(x - (L - 0.5)) / (W - 1) + 0.5`). The arithmetic
    is `window_hu`'s, which CT slice datasets (`lung_keras.data.slice_volume`) use on numpy arrays.

    Several windows give several channels: the input's channels through the first window, then through the
    second, and so on (`windows=[(-600, 1500), (40, 400)]` on a one-channel slice gives lung and mediastinum as
    channels 0 and 1).

    Args:
        level: window centre in HU. Defaults to -600 (lung window).
        width: window width in HU, > 0. Defaults to 1500.
        windows: a list of `(level, width)` pairs, instead of `level`/`width` (leave those at their defaults).
            Defaults to `None` (the one window `(level, width)`).

    Input: `(batch, height, width, channels)` or `(height, width, channels)` in HU, any real or integer dtype.
    Output: same leading shape, `channels * len(windows)` channels, float (the layer's compute dtype), in [0, 1].

    Example:
        >>> layer = Windowing(windows=[(-600, 1500), (40, 400)])
        >>> x = keras.ops.convert_to_tensor([[[[-1000.0], [-600.0], [40.0]]]])
        >>> [[round(float(v), 4) for v in px] for px in keras.ops.convert_to_numpy(layer(x))[0, 0]]
        [[0.2333, 0.0], [0.5, 0.0], [0.9267, 0.5]]
    """

    def __init__(self, level=LUNG_WINDOW[0], width=LUNG_WINDOW[1], windows=None, **kwargs):
        super().__init__(**kwargs)
        received = f"level={level!r}, width={width!r}" if windows is None else f"windows={windows!r}"
        if windows is None:
            windows = [(level, width)]
        elif (level, width) != LUNG_WINDOW:
            raise ValueError(
                "Give either `level`/`width` or `windows`, not both. "
                f"Received: level={level!r}, width={width!r}, windows={windows!r}"
            )
        self.windows = check_windows(windows, received)
        self.level, self.width = self.windows[0] if len(self.windows) == 1 else LUNG_WINDOW
        self.supports_masking = False

    def call(self, inputs):
        return window_hu(ops.cast(inputs, self.compute_dtype), self.windows)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        return tuple(input_shape[:-1]) + (None if channels is None else channels * len(self.windows),)

    def get_config(self):
        config = super().get_config()
        if len(self.windows) > 1:
            config.update({"level": LUNG_WINDOW[0], "width": LUNG_WINDOW[1], "windows": [list(w) for w in self.windows]})
        else:
            config.update({"level": self.level, "width": self.width, "windows": None})
        return config
