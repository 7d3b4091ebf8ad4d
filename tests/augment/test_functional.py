import numpy as np
import pytest

import augment_checks as C
from lung_keras.augment import _execution as X
from lung_keras.augment import functional as F


def _border(i, n, mode):
    """cv2.borderInterpolate written out; None = outside (constant)."""
    if 0 <= i < n:
        return i
    if mode == 0:
        return None
    if mode == 1:
        return min(max(i, 0), n - 1)
    if mode == 3:
        return i % n
    if mode == 2:
        m = i % (2 * n)
        return m if m < n else 2 * n - 1 - m
    m = i % (2 * n - 2)
    return m if m < n else 2 * n - 2 - m


def _reference_bilinear(img, x, y, mode, fill):
    h, w = img.shape
    out = np.zeros(x.shape)
    for k, (xx, yy) in enumerate(zip(x.ravel(), y.ravel())):
        x0, y0 = int(np.floor(xx)), int(np.floor(yy))
        fx, fy = xx - x0, yy - y0
        acc = 0.0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                bx, by = _border(x0 + dx, w, mode), _border(y0 + dy, h, mode)
                v = fill if bx is None or by is None else img[by, bx]
                acc += wy * wx * v
        out.flat[k] = acc
    return out


@pytest.mark.parametrize("mode", [0, 1, 2, 3, 4])
def test_bilinear_sampling_matches_opencv_border_rules(mode):
    # coordinates well outside the image on every side, several periods away
    rng = np.random.default_rng(mode)
    img = rng.uniform(0, 1, (5, 7)).astype("float32")
    x = rng.uniform(-20, 27, (1, 9, 11)).astype("float32")
    y = rng.uniform(-15, 20, (1, 9, 11)).astype("float32")
    ours = C.to_np(F.sample(img[None, ..., None], x, y, 1, mode, fill=0.25))[0, ..., 0]
    ref = _reference_bilinear(img, x[0], y[0], mode, 0.25)
    np.testing.assert_allclose(ours, ref, atol=2e-5)


@pytest.mark.parametrize("mode", [0, 1, 2, 3, 4])
def test_nearest_sampling_reads_input_values(mode):
    img = np.arange(35, dtype="int32").reshape(1, 5, 7, 1)
    x = np.array([[[-3.2, 0.4, 6.6, 9.0]]], "float32")
    y = np.array([[[2.0, -1.0, 4.4, 6.0]]], "float32")
    ours = C.to_np(F.sample(img, x, y, 0, mode, fill=-1))[0, 0, :, 0]
    expected = []
    for xx, yy in zip(x.ravel(), y.ravel()):
        bx, by = _border(int(np.round(xx)), 7, mode), _border(int(np.round(yy)), 5, mode)
        expected.append(-1 if bx is None or by is None else img[0, by, bx, 0])
    np.testing.assert_array_equal(ours, expected)


def test_uint8_and_float_paths_agree():
    img = C.smooth_image(2)
    matrix = F.rotation_matrix(np.array([13.0, -41.0], "float32"), C.H, C.W)
    as_uint8 = C.to_np(F.warp(img, [("affine", matrix)]))
    as_float = C.to_np(F.warp(img.astype("float32"), [("affine", matrix)]))
    np.testing.assert_array_equal(as_uint8, np.clip(np.round(as_float), 0, 255).astype("uint8"))


def test_warp_coordinates_composes_output_to_input_maps():
    # flip then shift: output x reads (W-1) - (x - 2) ... composed in application order
    h, w = 4, 6
    flip = F.horizontal_flip_matrix(1, w)
    shift = np.array([[[1, 0, -2], [0, 1, 0], [0, 0, 1]]], "float32")  # output x reads x - 2
    x, y = F.warp_coordinates([("affine", flip), ("affine", shift)], h, w)
    np.testing.assert_allclose(C.to_np(x)[0, 0], (w - 1) - (np.arange(w) - 2))
    field = np.zeros((1, h, w, 2), "float32")
    field[..., 1] = 0.5
    x, y = F.warp_coordinates([("field", field), ("affine", shift)], h, w)
    np.testing.assert_allclose(C.to_np(y)[0, :, 0], np.arange(h) + 0.5)


# ----------------------------------------------------------------- fast affine path (keras.ops.image.affine_transform)


def _random_matrices(n, h, w, seed):
    """Output->input matrices mixing flips, rotation, scale, shear and translation (no degenerate ones)."""
    rng = np.random.default_rng(seed)
    forward = F.albumentations_affine_matrix(
        h, w,
        rng.uniform(-40, 40, n).astype("float32"),
        rng.uniform(0.7, 1.3, n).astype("float32"),
        rng.uniform(0.7, 1.3, n).astype("float32"),
        rng.uniform(-10, 10, n).astype("float32"),
        rng.uniform(-10, 10, n).astype("float32"),
        rng.integers(-4, 5, n).astype("float32"),
        rng.integers(-4, 5, n).astype("float32"),
    )
    flip = F.select_matrix(np.arange(n) % 2 == 0, F.horizontal_flip_matrix(n, w))
    return [("affine", flip), ("affine", F.invert_affine(forward))]


def _near_half(geo, h, w, eps=1e-3):
    """Output pixels whose source position is within eps of a rounding tie (x.5) in x or y."""
    x, y = (C.to_np(v) for v in F.warp_coordinates(geo, h, w))
    return (np.abs(np.abs(x - np.floor(x)) - 0.5) < eps) | (np.abs(np.abs(y - np.floor(y)) - 0.5) < eps)


@pytest.mark.parametrize("mode", [0, 1, 2])
def test_affine_transform_path_equals_gather_path_bilinear(mode):
    # Same OpenCV sampling rules through the kernel and through gathers; both in float32. Measured on
    # TensorFlow and JAX: max |diff| <= 1.2e-6 on [0, 1] images. Asserted: 1e-5 (float32), and uint8 results
    # identical except where float32 rounding lands the other side of .5 (<= 1 grey level, >= 99.5% equal).
    n, h, w = 4, C.H, C.W  # the shapes of the other tests: JAX compiles fewer kernels
    geo = _random_matrices(n, h, w, seed=mode)
    img = C.smooth_image(n, dtype="float32", seed=mode)
    fast = C.to_np(F.warp(img, geo, 1, mode, fill=0.3, method="affine_transform"))
    slow = C.to_np(F.warp(img, geo, 1, mode, fill=0.3, method="gather"))
    assert fast.dtype == slow.dtype == np.float32
    np.testing.assert_allclose(fast, slow, atol=1e-5)
    img8 = C.smooth_image(n, dtype="uint8", seed=mode)
    fast8 = C.to_np(F.warp(img8, geo, 1, mode, fill=77, method="affine_transform")).astype(int)
    slow8 = C.to_np(F.warp(img8, geo, 1, mode, fill=77, method="gather")).astype(int)
    assert np.abs(fast8 - slow8).max() <= 1 and np.mean(fast8 == slow8) >= 0.995


@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize("dtype", ["uint8", "float32", "bool"])
def test_affine_transform_path_equals_gather_path_nearest(mode, dtype):
    # Masks: nearest reads input values. The kernel rounds exact ties (x.5) away from zero, the gather path
    # to even, so pixels whose source lies within 1e-3 px of a tie may differ; every other pixel must be equal.
    n, h, w = 4, C.H, C.W
    geo = _random_matrices(n, h, w, seed=10 + mode)
    masks = C.blob_masks(n, h=h, w=w, dtype="uint8", values=(0, 1, 2)).astype(dtype)
    fast = C.to_np(F.warp(masks, geo, 0, mode, fill=1, method="affine_transform"))
    slow = C.to_np(F.warp(masks, geo, 0, mode, fill=1, method="gather"))
    assert fast.dtype == slow.dtype == np.dtype(dtype)
    ties = _near_half(geo, h, w)[..., None]
    np.testing.assert_array_equal(np.where(ties, 0, fast), np.where(ties, 0, slow))
    assert np.mean(ties) < 0.05  # the comparison really covers the image


def test_affine_transform_path_image_as_mask():
    # One geometry for image and mask: the same image through both interpolations' nearest path is identical.
    img = C.smooth_image(4, c=1)
    geo = _random_matrices(4, C.H, C.W, seed=3)
    a = C.to_np(F.warp(img, geo, 0, 0, fill=0, method="affine_transform"))
    b = C.to_np(F.warp(img.copy(), geo, 0, 0, fill=0, method="affine_transform"))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, img)


# [interpolation, border_mode, fill, supported]
SUPPORT_CASES = [
    [1, 0, 0.0, True],
    [0, 1, 5.0, True],
    [1, 2, (3.0, 3.0, 3.0), True],  # the same value for every channel is a scalar fill
    [1, 0, (1.0, 2.0, 3.0), False],  # per-channel fill: the kernel takes one number
    [1, 3, 0.0, False],  # wrap: the kernel wraps the coordinate, not the two neighbours
    [1, 4, 0.0, False],  # reflect_101: no such mode
]


@pytest.mark.parametrize("interpolation, border_mode, fill, supported", SUPPORT_CASES)
def test_affine_transform_supported(interpolation, border_mode, fill, supported):
    assert F.affine_transform_supported(interpolation, border_mode, fill) is supported
    geo = _random_matrices(4, C.H, C.W, seed=0)
    img = C.smooth_image(4, c=3 if isinstance(fill, tuple) else 1, dtype="float32")
    if supported:
        F.warp(img, geo, interpolation, border_mode, fill, method="affine_transform")
    else:
        with pytest.raises(ValueError, match="Received: interpolation="):
            F.warp(img, geo, interpolation, border_mode, fill, method="affine_transform")
    # "auto" falls back to the gather path instead
    auto = C.to_np(F.warp(img, geo, interpolation, border_mode, fill))
    gather = C.to_np(F.warp(img, geo, interpolation, border_mode, fill, method="gather"))
    np.testing.assert_allclose(auto, gather, atol=1e-5)


def test_affine_transform_path_rejects_fields():
    field = np.zeros((1, 4, 5, 2), "float32")
    with pytest.raises(ValueError, match="displacement field"):
        F.warp(np.zeros((1, 4, 5, 1), "float32"), [("field", field)], method="affine_transform")
    with pytest.raises(ValueError, match="Received: method='bicubic'"):
        F.warp(np.zeros((1, 4, 5, 1), "float32"), [("affine", F.identity_matrices(1))], method="bicubic")


def _compiled(fn):
    if C.BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)
    if C.BACKEND == "jax":
        import jax

        return jax.jit(fn)
    return fn


@pytest.mark.parametrize("compiled", [False, True])
def test_skip_identity_returns_input_and_still_warps_otherwise(compiled):
    # Eager: decided in Python; compiled (tf.function / jax.jit): keras.ops.cond, both branches traced.
    img = C.smooth_image(3, dtype="uint8")
    eye = F.identity_matrices(3)
    rot = F.rotation_matrix(np.array([0.0, 17.0, 0.0], "float32"), C.H, C.W)

    def run(x, m):
        return F.warp(x, [("affine", m)], 1, 0, 0.0, skip_identity=True)

    fn = _compiled(run) if compiled else run
    np.testing.assert_array_equal(C.to_np(fn(img, eye)), img)
    expected = C.to_np(F.warp(img, [("affine", rot)], 1, 0, 0.0))
    out = C.to_np(fn(img, rot))
    np.testing.assert_array_equal(out, expected)
    assert not np.array_equal(out[1], img[1])
    np.testing.assert_array_equal(out[0], img[0])  # identity samples of a warped batch are untouched


def _graph_ops(fn, spec):
    """Op types in a traced tf.function and the functions it calls, and whether any call is XLA-compiled."""
    graph_def = fn.get_concrete_function(spec).graph.as_graph_def()
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    xla_calls = [n for n in nodes if "_XlaMustCompile" in n.attr and n.attr["_XlaMustCompile"].b]
    return {n.op for n in nodes}, xla_calls


@C.requires_tf_backend
def test_warp_on_tensorflow_runs_the_gather_path_as_an_xla_function():
    # Outside XLA, the auto method calls the gather path compiled as its own XLA function (faster than
    # ImageProjectiveTransformV3 on CPU); inside jit_compile=True it is traced inline. Same result either
    # way: XLA fuses (fma), measured ~2e-6, asserted 1e-5.
    import tensorflow as tf

    img = C.smooth_image(4, dtype="float32")
    geo = _random_matrices(4, C.H, C.W, seed=5)
    xla = tf.function(lambda x: F.warp(x, geo, 1, 0, 0.0, skip_identity=True), jit_compile=True)
    plain = tf.function(lambda x: F.warp(x, geo, 1, 0, 0.0, skip_identity=True))
    gather = C.to_np(F.warp(img, geo, 1, 0, 0.0, method="gather"))
    np.testing.assert_allclose(C.to_np(xla(img)), gather, atol=1e-5)
    np.testing.assert_allclose(C.to_np(plain(img)), gather, atol=1e-5)
    np.testing.assert_allclose(C.to_np(F.warp(img, geo, 1, 0, 0.0)), gather, atol=1e-5)  # eager call
    spec = tf.TensorSpec(img.shape, tf.float32)
    ops_used, xla_calls = _graph_ops(plain, spec)
    assert xla_calls and "ImageProjectiveTransformV3" not in ops_used
    explicit = tf.function(lambda x: F.warp(x, geo, 1, 0, 0.0, method="affine_transform"))
    assert "ImageProjectiveTransformV3" in _graph_ops(explicit, spec)[0]


@C.requires_tf_backend
def test_tensorflow_without_xla_falls_back_to_its_warp_kernel(monkeypatch):
    # A TensorFlow build that cannot compile with XLA: the layers run op by op, the warp through
    # ImageProjectiveTransformV3, with the gather path's results (float32 within 1e-5, as the fast-path test).
    import tensorflow as tf

    from lung_keras.augment import Compose, RandomBrightnessContrast, Rotate

    assert X.tf_xla_available()  # the pinned Linux wheel has XLA's JIT
    policy = Compose([Rotate(limit=30, p=1.0), RandomBrightnessContrast(p=1.0)], seed=4)
    images = C.smooth_image(4, dtype="float32")
    t = policy.get_random_transformation(images)
    expected = C.to_np(policy.transform_images(images, t))
    monkeypatch.setattr(X, "_TF_XLA_AVAILABLE", [False])
    call = tf.function(lambda x: policy.transform_images(x, t))
    np.testing.assert_allclose(C.to_np(call(images)), expected, atol=1e-5)
    ops_used, xla_calls = _graph_ops(call, tf.TensorSpec(images.shape, tf.float32))
    assert not xla_calls and "ImageProjectiveTransformV3" in ops_used
    out = tf.function(lambda d: policy(d, training=True))({"images": images, "segmentation_masks": C.blob_masks(4)})
    assert out["images"].shape == images.shape


@C.requires_tf_backend
def test_xla_probe_failure_warns_once_and_answers_false(monkeypatch):
    import tensorflow as tf

    real_function = tf.function

    def no_jit(fn=None, **kwargs):
        if kwargs.get("jit_compile"):
            raise tf.errors.UnimplementedError(None, None, "XLA compilation is disabled in this build")
        return real_function(fn, **kwargs)

    monkeypatch.setattr(X, "_TF_XLA_AVAILABLE", [])
    monkeypatch.setattr(tf, "function", no_jit)
    with pytest.warns(RuntimeWarning, match="cannot compile with XLA.*XLA compilation is disabled"):
        assert X.tf_xla_available() is False
    assert X.tf_xla_available() is False  # remembered: no second probe, no second warning
