"""lung_keras.models: segmentation models."""

from lung_keras.models.conv_block import ConvBlock
from lung_keras.models.unet import unet
