import keras

from lung_keras.models.conv_block import ConvBlock
from lung_keras.preprocessing import IntensityNormalization


def unet(
    input_shape=(128, 128, 1),
    base_filters=16,
    depth=4,
    num_classes=1,
    momentum=0.9,
    dropout=0.0,
    upsampling="transpose",
    normalization=None,
    synchronized=False,
    name="unet",
):
    """Build a U-Net: `ConvBlock`s (Conv2D + BatchNorm + ReLU, twice) with skip connections.

    Args:
        input_shape: `(height, width, channels)`; height and width must be divisible by `2**depth`
            (`None` allowed for fully convolutional use).
        base_filters: filters of the first level; doubled at every level down.
        depth: number of down-sampling steps (max-pool 2x2).
        num_classes: 1 gives one sigmoid channel (binary lung mask); more gives softmax over classes.
        momentum: BatchNormalization momentum of every block (0.9 suits small data sets; see `ConvBlock`).
        dropout: dropout rate in the bottleneck block.
        upsampling: `"transpose"` (Conv2DTranspose 2x2, stride 2) or `"bilinear"` (UpSampling2D + 1x1 conv).
        normalization: per-image intensity normalization applied first, inside the model (so it is saved with
            it): a mode of `lung_keras.preprocessing.IntensityNormalization` (`"standardize"`, `"percentile"`,
            `"equalize"`), a layer, or None / `"none"` for none.
        synchronized: BatchNormalization statistics over the global batch under a `tf.distribute` strategy
            (see `ConvBlock`); `lung_keras.train` sets it when training on several replicas.
        name: model name.

    Returns:
        A functional `keras.Model` mapping images to per-pixel probabilities.

    Example:
        >>> model = unet((128, 128, 1))
        >>> model.output_shape
        (None, 128, 128, 1)
    """
    if len(input_shape) != 3:
        raise ValueError(f"`input_shape` must be (height, width, channels). Received: input_shape={input_shape}")
    if int(depth) < 1:
        raise ValueError(f"`depth` must be >= 1. Received: depth={depth}")
    if int(num_classes) < 1:
        raise ValueError(f"`num_classes` must be >= 1. Received: num_classes={num_classes}")
    if upsampling not in ("transpose", "bilinear"):
        raise ValueError(f"`upsampling` must be 'transpose' or 'bilinear'. Received: upsampling={upsampling!r}")
    factor = 2**depth
    for axis, size in zip(("height", "width"), input_shape[:2]):
        if size is not None and size % factor:
            raise ValueError(
                f"Input {axis} {size} is not divisible by 2**depth = {factor}; resize to a multiple of {factor} "
                f"(e.g. {max(factor, round(size / factor) * factor)}) or lower `depth`. "
                f"Received: input_shape={tuple(input_shape)}, depth={depth}"
            )

    inputs = keras.Input(input_shape, name="image")
    x = inputs
    if isinstance(normalization, str):
        normalization = None if normalization == "none" else IntensityNormalization(normalization, name="normalization")
    if normalization is not None:
        x = normalization(x)
    skips = []
    for level in range(depth):
        x = ConvBlock(base_filters * 2**level, momentum=momentum, synchronized=synchronized, name=f"down{level}")(x)
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = ConvBlock(base_filters * 2**depth, momentum=momentum, dropout=dropout, synchronized=synchronized, name="bottleneck")(x)
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        if upsampling == "transpose":
            x = keras.layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"up{level}")(x)
        else:
            x = keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"upsample{level}")(x)
            x = keras.layers.Conv2D(filters, 1, name=f"up{level}")(x)
        x = keras.layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = ConvBlock(filters, momentum=momentum, synchronized=synchronized, name=f"dec{level}")(x)
    activation = "sigmoid" if num_classes == 1 else "softmax"
    outputs = keras.layers.Conv2D(num_classes, 1, activation=activation, dtype="float32", name="mask")(x)
    return keras.Model(inputs, outputs, name=name)
