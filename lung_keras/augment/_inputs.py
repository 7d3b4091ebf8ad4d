"""What an augmentation layer accepts (private): a tensor or a dict of images and masks, checked and batched.

Also the bridge from a TensorFlow graph (`tf.data.Dataset.map`) to a layer of another backend (JAX), which
runs the call eagerly through `tf.py_function`, as Keras' own preprocessing layers also work there.
"""

import sys

import keras
from keras import ops

from lung_keras.augment import functional as F


def data_info(images):
    """Static/dynamic facts about a batched `(B, H, W, C)` image tensor."""
    shape = ops.shape(images)
    return {
        "batch": shape[0],
        "height": shape[1],
        "width": shape[2],
        "channels": images.shape[-1] if images.shape[-1] is not None else shape[3],
        "dtype": images.dtype,
        "max_value": F.max_value_for_dtype(images.dtype),
        "images": images,
    }


def tensor_rank(x):
    return len(x.shape)


def same_spatial(a, b):
    for da, db in zip(a.shape[1:3], b.shape[1:3]):
        if da is not None and db is not None and da != db:
            return False
    return True


#: dict keys a layer reads: "images" and "segmentation_masks" are transformed, "labels" pass through.
SUPPORTED_KEYS = ("images", "segmentation_masks", "labels")


def images_of(data):
    if isinstance(data, dict):
        if "images" not in data:
            raise ValueError(
                'Dict inputs must contain an "images" entry (and optionally '
                f'"segmentation_masks"). Received: keys={sorted(data)}'
            )
        return data["images"]
    return data


def check_keys(data):
    """Refuse dict entries a layer cannot transform (e.g. `bounding_boxes`) instead of passing them through."""
    if not isinstance(data, dict):
        return
    for key in data:
        if key not in SUPPORTED_KEYS:
            raise ValueError(
                f"Unsupported dict entry {key!r}: lung_keras.augment layers transform 'images' and "
                f"'segmentation_masks' and pass 'labels' through. Received: key={key!r}"
            )


def _static_rank(x):
    try:
        return len(x.shape)
    except (TypeError, ValueError):  # a tensor of unknown rank (e.g. inside tf.data)
        return None


def check_inputs(data):
    """Validate the rank and dtype of the images (and masks) of a layer's input, with a clear `ValueError`.

    Images: rank 3 `(H, W, C)` or 4 `(B, H, W, C)`, dtype uint8, uint16 or float. Masks: the images' rank or one
    less, dtype bool, integer or float. Run on every call, at inference too, so a wrong input never passes
    through unnoticed. Unknown ranks (symbolic tensors of unknown shape) are not checked.
    """
    check_keys(data)
    images = images_of(data)
    rank = _static_rank(images) if hasattr(images, "shape") else None
    if rank is not None and rank not in (3, 4):
        raise ValueError(
            "Images must be rank 3 (H, W, C) or rank 4 (B, H, W, C), channels last. "
            f"Received: shape={tuple(images.shape)}"
        )
    if hasattr(images, "dtype"):
        F.max_value_for_dtype(images.dtype)
    masks = data.get("segmentation_masks") if isinstance(data, dict) else None
    if masks is None or not hasattr(masks, "dtype"):
        return
    mask_rank = _static_rank(masks)
    if rank is not None and mask_rank is not None and mask_rank not in (rank, rank - 1):
        raise ValueError(
            "segmentation_masks must have the rank of the images, or one less (no channel axis). "
            f"Received: segmentation_masks.shape={tuple(masks.shape)}, images.shape={tuple(images.shape)}"
        )
    name = F.dtype_name(masks.dtype)
    if not ("int" in name or "float" in name or name == "bool"):
        raise ValueError(f"segmentation_masks must be bool, integer or floating point. Received: dtype={name}")


def in_foreign_tf_graph(data):
    """Whether `data` are symbolic TensorFlow tensors (e.g. inside `tf.data.Dataset.map`) on another backend."""
    if keras.backend.backend() == "tensorflow" or "tensorflow" not in sys.modules:
        return False
    import tensorflow as tf

    leaves = keras.tree.flatten(data)
    return bool(leaves) and isinstance(leaves[0], tf.Tensor) and not tf.executing_eagerly()


def call_through_py_function(layer, data, args, kwargs):
    """Run `layer(data, *args, **kwargs)` eagerly on this backend from a TensorFlow graph (`tf.py_function`).

    Keras' own preprocessing layers switch to TensorFlow ops inside `tf.data`; ours are written in
    `keras.ops` of the configured backend, so the graph calls back into Python with the values.
    Every output keeps the shape and dtype of its input.
    """
    import tensorflow as tf

    leaves = keras.tree.flatten(data)

    def run(*values):
        out = layer(keras.tree.pack_sequence_as(data, [v.numpy() for v in values]), *args, **kwargs)
        return [ops.convert_to_numpy(v) for v in keras.tree.flatten(out)]

    outputs = tf.py_function(run, leaves, Tout=[leaf.dtype for leaf in leaves])
    for out, leaf in zip(outputs, leaves):
        out.set_shape(leaf.shape)
    return keras.tree.pack_sequence_as(data, outputs)


def batched_images(images):
    images = ops.convert_to_tensor(images) if not hasattr(images, "shape") else images
    rank = tensor_rank(images)
    if rank == 3:
        return ops.expand_dims(images, 0), True
    if rank == 4:
        return images, False
    raise ValueError(
        f"Images must be rank 3 (H, W, C) or rank 4 (B, H, W, C), channels last. Received: shape={tuple(images.shape)}"
    )
