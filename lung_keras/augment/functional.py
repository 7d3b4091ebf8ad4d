"""Tensor kernels behind `lung_keras.augment` (keras.ops only, backend agnostic): the public names.

The kernels are pure functions of tensors, jit friendly: no randomness, no state, only `keras.ops`.
They live by family in private modules (`_dtypes`: value units and dtypes; `_matrices`:
pixel-coordinate matrices; `_geometric`: border rules, sampling, warps; `_photometric`: pointwise
ops; `_blur`: Gaussian and elastic fields). `warp` comes from `_execution`, which chooses how a warp
runs on the current backend (gather path compiled with XLA on TensorFlow, or
`keras.ops.image.affine_transform`) and holds the only state (probe results, compiled-function
caches). The layers sample parameters and dispatch to these kernels.

Conventions (shared by all layers and by the transformation dicts they return):

* Images are channels-last. Batched kernels take `(B, H, W, C)` tensors.
* Arithmetic happens in float32 "value units": a uint8 image keeps its 0..255
  values, a float image is assumed to lie in [0, 1] (Albumentations'
  `MAX_VALUES_BY_DTYPE`). `max_value_for_dtype` gives the maximum.
* Pixel coordinates follow OpenCV: `x` is the column, `y` the row, pixel centres
  sit on integer coordinates and the image centre is `((W - 1) / 2, (H - 1) / 2)`.
* A *pixel-coordinate matrix* is a `(B, 3, 3)` float32 matrix that maps
  homogeneous **output** pixel coordinates `(x, y, 1)` to **input** pixel
  coordinates (an inverse map, like `cv2.WARP_INVERSE_MAP`). Albumentations
  stores the forward (input -> output) matrix and lets `cv2.warpAffine` invert
  it; `invert_affine` converts between the two.
* A *displacement field* is a `(B, H, W, 2)` float32 tensor `(dx, dy)` in pixels:
  output pixel `(x, y)` reads input `(x + dx, y + dy)` (Albumentations'
  `map_x = x + dx`, `map_y = y + dy` for `cv2.remap`).
* A *geometric op list* is a list of `("affine", matrix)` and
  `("field", displacement)` pairs in application order (first applied first);
  `warp_coordinates` composes it into one sampling grid.

OpenCV codes used as arguments: interpolation `0` nearest, `1` linear; border
`0` constant, `1` replicate, `2` reflect, `3` wrap, `4` reflect_101.
"""

from lung_keras.augment._dtypes import max_value_for_dtype
from lung_keras.augment._dtypes import is_integer_dtype
from lung_keras.augment._dtypes import dtype_name
from lung_keras.augment._dtypes import to_float
from lung_keras.augment._dtypes import from_float
from lung_keras.augment._dtypes import quantize
from lung_keras.augment._dtypes import fill_in_range
from lung_keras.augment._dtypes import per_sample
from lung_keras.augment._photometric import clip_where
from lung_keras.augment._photometric import gamma
from lung_keras.augment._matrices import identity_matrices
from lung_keras.augment._matrices import invert_affine
from lung_keras.augment._matrices import albumentations_affine_matrix
from lung_keras.augment._matrices import rotation_matrix
from lung_keras.augment._matrices import horizontal_flip_matrix
from lung_keras.augment._matrices import vertical_flip_matrix
from lung_keras.augment._matrices import select_matrix
from lung_keras.augment._matrices import compose_affine
from lung_keras.augment._matrices import is_identity
from lung_keras.augment._matrices import affine_coefficients
from lung_keras.augment._matrices import apply_matrix_to_coordinates
from lung_keras.augment._geometric import INTER_NEAREST
from lung_keras.augment._geometric import INTER_LINEAR
from lung_keras.augment._geometric import SUPPORTED_INTERPOLATIONS
from lung_keras.augment._geometric import BORDER_CONSTANT
from lung_keras.augment._geometric import BORDER_REPLICATE
from lung_keras.augment._geometric import BORDER_REFLECT
from lung_keras.augment._geometric import BORDER_WRAP
from lung_keras.augment._geometric import BORDER_REFLECT_101
from lung_keras.augment._geometric import SUPPORTED_BORDER_MODES
from lung_keras.augment._geometric import CV2_SUBPIXEL_STEPS
from lung_keras.augment._geometric import border_index
from lung_keras.augment._geometric import sample
from lung_keras.augment._geometric import pixel_grid
from lung_keras.augment._geometric import warp_coordinates
from lung_keras.augment._geometric import AFFINE_TRANSFORM_FILL_MODES
from lung_keras.augment._geometric import scalar_fill
from lung_keras.augment._geometric import affine_transform_supported
from lung_keras.augment._geometric import warp_affine
from lung_keras.augment._geometric import gather_warp
from lung_keras.augment._geometric import resize_bilinear
from lung_keras.augment._blur import gaussian_kernel_size
from lung_keras.augment._blur import gaussian_kernels
from lung_keras.augment._blur import separable_blur
from lung_keras.augment._blur import cv2_gaussian_kernel
from lung_keras.augment._blur import replicate_blur_matrix
from lung_keras.augment._blur import elastic_displacement
from lung_keras.augment._execution import warp

__all__ = [
    "max_value_for_dtype",
    "is_integer_dtype",
    "dtype_name",
    "to_float",
    "from_float",
    "quantize",
    "fill_in_range",
    "per_sample",
    "clip_where",
    "gamma",
    "identity_matrices",
    "invert_affine",
    "albumentations_affine_matrix",
    "rotation_matrix",
    "horizontal_flip_matrix",
    "vertical_flip_matrix",
    "select_matrix",
    "compose_affine",
    "is_identity",
    "affine_coefficients",
    "apply_matrix_to_coordinates",
    "INTER_NEAREST",
    "INTER_LINEAR",
    "SUPPORTED_INTERPOLATIONS",
    "BORDER_CONSTANT",
    "BORDER_REPLICATE",
    "BORDER_REFLECT",
    "BORDER_WRAP",
    "BORDER_REFLECT_101",
    "SUPPORTED_BORDER_MODES",
    "CV2_SUBPIXEL_STEPS",
    "border_index",
    "sample",
    "pixel_grid",
    "warp_coordinates",
    "AFFINE_TRANSFORM_FILL_MODES",
    "scalar_fill",
    "affine_transform_supported",
    "warp_affine",
    "gather_warp",
    "resize_bilinear",
    "gaussian_kernel_size",
    "gaussian_kernels",
    "separable_blur",
    "cv2_gaussian_kernel",
    "replicate_blur_matrix",
    "elastic_displacement",
    "warp",
    "use_xla_transforms",
]


def use_xla_transforms(enabled=True):
    """Whether layers run their image and mask transforms as one XLA-compiled function on TensorFlow (default
    True). `use_xla_transforms(False)` switches to TensorFlow's op-by-op kernels (what a TensorFlow build without
    XLA gets anyway). Returns the previous setting. No effect on JAX, where everything is traced into the caller.
    """
    from lung_keras.augment import _execution

    previous = _execution.TF_XLA_TRANSFORMS
    _execution.TF_XLA_TRANSFORMS = bool(enabled)
    return previous
