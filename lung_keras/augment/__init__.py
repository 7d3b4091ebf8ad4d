"""lung_keras.augment: Albumentations-semantics augmentation as Keras 3 layers.

Every layer takes a tensor or a dict `{"images", "segmentation_masks"}`
(rank 3 or 4, channels last, uint8 or float in [0, 1]), draws its parameters
once per sample (shared by image and mask), and is the identity at inference.
Argument names, defaults and meaning follow Albumentations 2.0.8.

Geometric: `HorizontalFlip`, `VerticalFlip`, `Rotate`, `Affine`, `ElasticTransform`.
Photometric: `RandomBrightnessContrast`, `RandomGamma`, `GaussNoise`, `GaussianBlur`, `CoarseDropout`.
Containers: `Compose` (fused execution), `OneOf`.
Training: `AugmentedModel(model, policy)` augments (x, y) in `train_step` only.
Albumentations bridge: `from_albumentations`, `to_albumentations`, `load_policy`, `save_policy`
(the `A.save` JSON/YAML format). Offline: `expand_dataset`, `preview`.
Kernels: `lung_keras.augment.functional`.
"""

from lung_keras.augment import functional
from lung_keras.augment.affine import Affine
from lung_keras.augment.augmented_model import AugmentedModel
from lung_keras.augment.bridge import SUPPORTED_TRANSFORMS
from lung_keras.augment.bridge import from_albumentations
from lung_keras.augment.bridge import load_policy
from lung_keras.augment.bridge import save_policy
from lung_keras.augment.bridge import to_albumentations
from lung_keras.augment.coarse_dropout import CoarseDropout
from lung_keras.augment.compose import Compose
from lung_keras.augment.elastic_transform import ElasticTransform
from lung_keras.augment.gauss_noise import GaussNoise
from lung_keras.augment.gaussian_blur import GaussianBlur
from lung_keras.augment.horizontal_flip import HorizontalFlip
from lung_keras.augment.offline import expand_dataset
from lung_keras.augment.offline import preview
from lung_keras.augment.one_of import OneOf
from lung_keras.augment.random_brightness_contrast import RandomBrightnessContrast
from lung_keras.augment.random_gamma import RandomGamma
from lung_keras.augment.rotate import Rotate
from lung_keras.augment.vertical_flip import VerticalFlip

__all__ = [
    "Affine",
    "AugmentedModel",
    "CoarseDropout",
    "Compose",
    "ElasticTransform",
    "GaussNoise",
    "GaussianBlur",
    "HorizontalFlip",
    "OneOf",
    "RandomBrightnessContrast",
    "RandomGamma",
    "Rotate",
    "VerticalFlip",
    "functional",
    "SUPPORTED_TRANSFORMS",
    "expand_dataset",
    "from_albumentations",
    "load_policy",
    "preview",
    "save_policy",
    "to_albumentations",
]

from lung_keras import saving as _saving  # noqa: E402

_saving.register_pending()  # see lung_keras.saving: registration that waited for this import to finish
