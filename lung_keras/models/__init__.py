"""lung_keras.models: segmentation models."""

from lung_keras.models.conv_block import ConvBlock
from lung_keras.models.unet import unet

from lung_keras import saving as _saving  # noqa: E402

_saving.register_pending()  # see lung_keras.saving: registration that waited for this import to finish
