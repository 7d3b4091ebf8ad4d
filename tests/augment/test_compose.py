import numpy as np
import pytest

import augment_checks as C
from lung_keras.augment import (
    Affine,
    Compose,
    ElasticTransform,
    GaussianBlur,
    GaussNoise,
    HorizontalFlip,
    OneOf,
    RandomBrightnessContrast,
    RandomGamma,
    Rotate,
    VerticalFlip,
)


def test_nested_serialization_round_trip():
    policy = Compose(
        [OneOf([Rotate(limit=10), GaussianBlur()], p=0.7), Compose([VerticalFlip(), RandomGamma()], p=0.5)],
        seed=4,
        mask_interpolation=0,
    )
    restored = Compose.from_config(policy.get_config())
    assert restored.get_config() == policy.get_config()
    assert isinstance(restored.transforms[0], OneOf) and isinstance(restored.transforms[1].transforms[0], VerticalFlip)
    data = C.batch(n=4)
    a, b = policy(data, training=True), restored(data, training=True)
    np.testing.assert_array_equal(C.to_np(a["images"]), C.to_np(b["images"]))


def test_compose_seed_drives_unseeded_children():
    data = C.batch(dtype="float32", n=4)
    a = Compose([Rotate(p=1.0), GaussNoise(p=1.0)], seed=21)(data, training=True)
    b = Compose([Rotate(p=1.0), GaussNoise(p=1.0)], seed=21)(data, training=True)
    np.testing.assert_array_equal(C.to_np(a["images"]), C.to_np(b["images"]))


def test_compose_p_gates_children():
    policy = Compose([GaussNoise(p=1.0), Rotate(p=1.0)], p=0.5, seed=1)
    t = policy.get_random_transformation(np.zeros((200, 4, 4, 1), "float32"))
    apply = C.to_np(t["apply"])
    assert 0.35 < apply.mean() < 0.65
    for step in t["steps"]:
        np.testing.assert_array_equal(C.to_np(step["apply"]), apply)


def test_runs_group_compatible_steps():
    policy = Compose(
        [
            HorizontalFlip(),
            Rotate(),
            Affine(),  # same resampling key as Rotate -> same run
            Rotate(border_mode=4),  # different border -> new run
            RandomBrightnessContrast(),
            RandomGamma(),
            GaussNoise(),  # one elementwise run
            GaussianBlur(),  # on its own
            VerticalFlip(),
        ]
    )
    t = policy.get_random_transformation(np.zeros((2, 8, 8, 1), "uint8"))
    runs = [(kind, len(members)) for kind, _, members in policy.runs(t)]
    assert runs == [("geometric", 3), ("geometric", 1), ("elementwise", 3), ("single", 1), ("geometric", 1)]
    assert len(policy.runs(t, fuse=False)) == 9


def _smooth(n, size, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    out = np.zeros((n, size, size, 1), "float32")
    for i in range(n):
        for _ in range(4):
            cx, cy, s = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(size / 6, size / 3)
            out[i, ..., 0] += rng.uniform(0.2, 0.5) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
    return np.clip(out, 0, 1)


def _stepwise(policy, images, masks, t):
    for layer, leaf_t in policy.leaves(t):
        images = layer.transform_images(images, leaf_t)
        masks = layer.transform_segmentation_masks(masks, leaf_t)
    return C.to_np(images), C.to_np(masks)


def _label_within_one_pixel(fused, step):
    """For each pixel: does `fused`'s label occur in `step`'s 3x3 neighbourhood?"""
    n, h, w, _ = step.shape
    padded = np.pad(step[..., 0], ((0, 0), (1, 1), (1, 1)), mode="edge")
    ok = np.zeros((n, h, w), bool)
    for dy in range(3):
        for dx in range(3):
            ok |= padded[:, dy : dy + h, dx : dx + w] == fused[..., 0]
    return ok


def test_fused_equals_step_by_step_on_interior():
    # One resample through the composed grid vs four successive resamples with the
    # same draws, on the central 24x24 of 48x48 smooth float images (no step reads
    # outside the image there). Measured over 4 seeds: image max |diff| 0.002-0.009,
    # mean 0.0003-0.0004 (the extra bilinear blur of step-by-step); mask agreement
    # 0.973-0.981, every disagreement at a label edge (the label is found within one
    # pixel). Asserted: max < 0.03, mean < 0.003, agreement >= 0.95, all
    # disagreements within one pixel of that label.
    size, margin = 48, 12
    images = _smooth(6, size, seed=0)
    masks = (images > 0.35).astype("uint8") + (images > 0.6).astype("uint8")
    policy = Compose(
        [
            HorizontalFlip(p=0.5),
            Rotate(limit=15, p=1.0),
            Affine(scale=(0.95, 1.05), translate_percent=(-0.03, 0.03), shear=(-5, 5), p=1.0),
            ElasticTransform(alpha=20, sigma=6, p=1.0),
        ],
        seed=3,
    )
    t = policy.get_random_transformation({"images": images})
    assert len(policy.runs(t)) == 1  # really fused
    fused_i = C.to_np(policy.transform_images(images, t))
    fused_m = C.to_np(policy.transform_segmentation_masks(masks, t))
    step_i, step_m = _stepwise(policy, images, masks, t)
    inner = (slice(None), slice(margin, size - margin), slice(margin, size - margin))
    diff = np.abs(fused_i[inner] - step_i[inner])
    assert diff.max() < 0.03 and diff.mean() < 0.003
    assert np.mean(fused_m[inner] == step_m[inner]) >= 0.95
    assert _label_within_one_pixel(fused_m, step_m)[inner[:3]].all()
    assert not np.allclose(fused_i, images)  # the policy did move pixels


def test_fused_equals_step_by_step_exactly_on_the_pixel_grid():
    # flips and quarter turns keep pixel centres on pixel centres: both paths are exact
    images = C.smooth_image(4, h=15, w=15, c=2)
    masks = C.blob_masks(4, h=15, w=15)
    policy = Compose([HorizontalFlip(), Rotate(limit=(90, 90)), VerticalFlip(), Rotate(limit=(-90, -90), p=0.5)], seed=2)
    t = policy.get_random_transformation(images)
    step_i, step_m = _stepwise(policy, images, masks, t)
    np.testing.assert_array_equal(C.to_np(policy.transform_images(images, t)), step_i)
    np.testing.assert_array_equal(C.to_np(policy.transform_segmentation_masks(masks, t)), step_m)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_photometric_fusion_is_exact(dtype):
    images = C.smooth_image(4, dtype=dtype)
    masks = C.blob_masks(4)
    policy = Compose([RandomBrightnessContrast(p=0.8), RandomGamma(p=0.8), GaussNoise(std_range=(0.05, 0.1))], seed=5)
    t = policy.get_random_transformation(images)
    assert len(policy.runs(t)) == 1
    step_i, step_m = _stepwise(policy, images, masks, t)
    np.testing.assert_allclose(C.to_np(policy.transform_images(images, t)), step_i, atol=1e-6)
    np.testing.assert_array_equal(C.to_np(policy.transform_segmentation_masks(masks, t)), masks)


def test_unfused_compose_equals_manual_chain():
    images = C.smooth_image(3, dtype="uint8")
    masks = C.blob_masks(3)
    children = [Rotate(limit=25), GaussianBlur(), Affine(rotate=(-5, 5), scale=(0.9, 1.1)), RandomGamma()]
    policy = Compose(children, fuse=False, seed=6)
    t = policy.get_random_transformation(images)
    step_i, step_m = _stepwise(policy, images, masks, t)
    np.testing.assert_array_equal(C.to_np(policy.transform_images(images, t)), step_i)
    np.testing.assert_array_equal(C.to_np(policy.transform_segmentation_masks(masks, t)), step_m)


def test_mask_interpolation_override():
    masks = C.blob_masks(2, dtype="float32")
    data = {"images": C.smooth_image(2), "segmentation_masks": masks}
    nearest = Compose([Rotate(limit=(20, 20), p=1.0)])(data, training=True)["segmentation_masks"]
    linear = Compose([Rotate(limit=(20, 20), p=1.0)], mask_interpolation=1)(data, training=True)["segmentation_masks"]
    assert set(np.unique(C.to_np(nearest)).tolist()) <= {0.0, 1.0}
    assert len(np.unique(C.to_np(linear))) > 2


def test_invalid_arguments():
    with pytest.raises(ValueError, match="Received: transform="):
        Compose([HorizontalFlip(), "rotate"])
    with pytest.raises(ValueError, match="Received: p=2"):
        Compose([HorizontalFlip()], p=2)
    with pytest.raises(ValueError, match="Received: mask_interpolation=3"):
        Compose([HorizontalFlip()], mask_interpolation=3)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_fast_warp_path_equals_gather_path(monkeypatch, dtype):
    # The fused geometric run through keras.ops.image.affine_transform vs the gather path, same draws.
    # Float32: max |diff| measured <= 2e-6 (asserted 1e-5). uint8: float32 rounding may land the other side
    # of .5: <= 1 grey level, >= 99.5% identical. Masks (nearest): identical except exact rounding ties
    # (x.5 positions), asserted agreement >= 99.5%.
    from lung_keras.augment import _execution as X

    images = C.smooth_image(4, dtype=dtype)
    masks = C.blob_masks(4)
    policy = Compose(
        [HorizontalFlip(), Rotate(limit=30, p=0.8), Affine(scale=(0.8, 1.2), shear=(-8, 8), translate_percent=(-0.1, 0.1))],
        seed=8,
    )
    t = policy.get_random_transformation(images)
    outputs = {}
    for method in ("affine_transform", "gather"):
        monkeypatch.setattr(X, "DEFAULT_WARP_METHOD", method)
        outputs[method] = (C.to_np(policy.transform_images(images, t)), C.to_np(policy.transform_segmentation_masks(masks, t)))
    (fast_i, fast_m), (slow_i, slow_m) = outputs["affine_transform"], outputs["gather"]
    assert fast_i.dtype == slow_i.dtype == np.dtype(dtype) and fast_m.dtype == np.uint8
    if dtype == "float32":
        np.testing.assert_allclose(fast_i, slow_i, atol=1e-5)
    else:
        diff = np.abs(fast_i.astype(int) - slow_i.astype(int))
        assert diff.max() <= 1 and np.mean(diff == 0) >= 0.995
    assert np.mean(fast_m == slow_m) >= 0.995
    assert not np.array_equal(fast_i, images)


@C.requires_tf_backend
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_tensorflow_xla_transforms_equal_op_by_op(monkeypatch, dtype):
    # On TensorFlow a layer call runs its transforms as one XLA function (_execution.run_transforms); with
    # TF_XLA_TRANSFORMS off they run op by op. Same seeds, same draws: float32 within 1e-5 (XLA contracts
    # multiply-adds, measured ~1e-6); uint8 at most 1 grey level where a value lands on .5, >= 99.5%
    # identical; masks (nearest) identical.
    import tensorflow as tf

    from lung_keras.augment import _execution as X

    from lung_keras.augment import functional

    images = C.smooth_image(4, dtype=dtype)
    masks = C.blob_masks(4)
    outputs = {}
    monkeypatch.setattr(X, "TF_XLA_TRANSFORMS", X.TF_XLA_TRANSFORMS)  # restored after the test
    for flag in (True, False):
        functional.use_xla_transforms(flag)  # the public switch
        policy = Compose(
            [HorizontalFlip(), Rotate(limit=30, p=0.8), RandomBrightnessContrast(p=1.0), GaussNoise(std_range=(0.05, 0.1), p=1.0)],
            seed=8,
        )
        call = tf.function(lambda d: policy(d, training=True))
        out = call({"images": images, "segmentation_masks": masks})
        outputs[flag] = (C.to_np(out["images"]), C.to_np(out["segmentation_masks"]))
        ops_used = call.get_concrete_function(
            {"images": tf.TensorSpec(images.shape, images.dtype), "segmentation_masks": tf.TensorSpec(masks.shape, masks.dtype)}
        ).graph.as_graph_def()
        compiled = any(n.attr["_XlaMustCompile"].b for n in ops_used.node if "_XlaMustCompile" in n.attr)
        assert compiled == flag
    (xla_i, xla_m), (tf_i, tf_m) = outputs[True], outputs[False]
    assert xla_i.dtype == tf_i.dtype == np.dtype(dtype)
    if dtype == "float32":
        np.testing.assert_allclose(xla_i, tf_i, atol=1e-5)
    else:
        diff = np.abs(xla_i.astype(int) - tf_i.astype(int))
        assert diff.max() <= 1 and np.mean(diff == 0) >= 0.995
    np.testing.assert_array_equal(xla_m, tf_m)
    assert not np.array_equal(xla_i, images)


@C.requires_tf_backend
def test_tensorflow_eager_calls_on_many_sizes_do_not_retrace(monkeypatch, caplog):
    # Offline expansion and previews call the layers eagerly on images of many sizes: the XLA functions
    # must generalize their trace (no "triggered tf.function retracing" warnings) and give the results
    # of the op-by-op gather path at every size (float32 within 1e-5; masks identical).
    import logging

    from lung_keras.augment import _execution as X

    policy = Compose([Rotate(limit=20, p=1.0), RandomBrightnessContrast(p=1.0)], seed=2)
    sizes = [(1, 20, 24), (2, 21, 24), (3, 22, 30), (1, 23, 31), (2, 26, 25), (1, 27, 33), (2, 28, 28)]
    runs = []
    for xla in (True, False):
        monkeypatch.setattr(X, "TF_XLA_TRANSFORMS", xla)
        monkeypatch.setattr(X, "DEFAULT_WARP_METHOD", "auto" if xla else "gather")
        outs = []
        with caplog.at_level(logging.WARNING):
            for i, (b, h, w) in enumerate(sizes):
                data = {"images": C.smooth_image(b, h=h, w=w, dtype="float32"), "segmentation_masks": C.blob_masks(b, h=h, w=w)}
                t = policy.get_random_transformation(data, seed=i)
                outs.append((C.to_np(policy.transform_images(data["images"], t)), C.to_np(policy.transform_segmentation_masks(data["segmentation_masks"], t))))
                out = policy(data, training=True)
                assert tuple(out["images"].shape) == (b, h, w, 1)
        runs.append(outs)
    assert "retracing" not in caplog.text
    for (xi, xm), (gi, gm) in zip(*runs):
        np.testing.assert_allclose(xi, gi, atol=1e-5)
        np.testing.assert_array_equal(xm, gm)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_flip_only_run_is_an_exact_index_flip(dtype):
    images = C.smooth_image(8, dtype=dtype)
    masks = C.blob_masks(8)
    policy = Compose([HorizontalFlip(p=0.5), VerticalFlip(p=0.5)], seed=1)
    t = policy.get_random_transformation(images)
    h, v = (C.to_np(step["apply"]) for step in t["steps"])
    expected = images.copy()
    expected[h] = expected[h][:, :, ::-1]
    expected[v] = expected[v][:, ::-1]
    out = C.to_np(policy.transform_images(images, t))
    assert out.dtype == images.dtype
    np.testing.assert_array_equal(out, expected)
    m = C.to_np(policy.transform_segmentation_masks(masks, t))
    np.testing.assert_array_equal(m[h & ~v], masks[h & ~v][:, :, ::-1])
    assert 0 < h.sum() < 8 and 0 < v.sum() < 8  # both flip and no-flip samples were drawn
