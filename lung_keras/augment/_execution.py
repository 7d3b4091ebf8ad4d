"""How the kernels run: the warp dispatcher, XLA probing and compiled-function caches (private).

Kernels (`_geometric`, `_matrices`, `_photometric`, `_blur`, `_dtypes`) are pure functions of tensors;
this module chooses how to run them on the current backend and holds the only state: the XLA probe
result, the compiled-function caches and two switches for benchmarks and tests
(`DEFAULT_WARP_METHOD`, `TF_XLA_TRANSFORMS`). Layers call `warp` and `run_transforms`; nothing here
knows a layer.
"""

import functools
import warnings
import weakref

import keras
from keras import ops

from lung_keras.augment._dtypes import dtype_name
from lung_keras.augment._dtypes import from_float
from lung_keras.augment._geometric import BORDER_CONSTANT
from lung_keras.augment._geometric import INTER_LINEAR
from lung_keras.augment._geometric import INTER_NEAREST
from lung_keras.augment._geometric import affine_transform_supported
from lung_keras.augment._geometric import gather_warp
from lung_keras.augment._geometric import warp_affine
from lung_keras.augment._matrices import compose_affine
from lung_keras.augment._matrices import is_identity


#: What `warp(..., method="auto")` (the layers' call) does. "auto": the gather path, which on the
#: TensorFlow backend outside an XLA graph runs as its own XLA-compiled function (`_tf_xla_gather`;
#: on a 2-core CPU at 256x256 about 2x faster than TensorFlow's `ImageProjectiveTransformV3` for
#: bilinear images and up to 9x for nearest uint8 masks, see benchmarks/augment_throughput.py
#: --breakdown); "affine_transform": `warp_affine` wherever supported (any backend; not under
#: TensorFlow XLA); "gather": always the gather path, traced inline into the caller's graph
#: (benchmarks, debugging, tests of the fast path).
DEFAULT_WARP_METHOD = "auto"


_WARP_METHODS = ("auto", "gather", "affine_transform")


def _use_affine_transform(method, interpolation, border_mode, fill):
    if method not in _WARP_METHODS:
        raise ValueError(f"method must be one of {_WARP_METHODS}. Received: method={method!r}")
    supported = affine_transform_supported(interpolation, border_mode, fill)
    if method == "affine_transform":
        if not supported:
            raise ValueError(
                "method='affine_transform' needs nearest/linear interpolation, a constant/replicate/"
                "reflect border and a scalar fill. Received: "
                f"interpolation={interpolation}, border_mode={border_mode}, fill={fill!r}"
            )
        return True
    if method == "gather" or DEFAULT_WARP_METHOD == "gather" or not supported:
        return False
    tensorflow = keras.backend.backend() == "tensorflow"
    if tensorflow and _tf_xla_context():
        return False  # XLA has no kernel for ImageProjectiveTransformV3
    if DEFAULT_WARP_METHOD == "affine_transform":
        return True
    # "auto": the gather path (JAX's affine_transform is map_coordinates over (B, H, W, C)
    # coordinates, slower than ours; TensorFlow runs ours through XLA, `_tf_xla_gather`), except on
    # a TensorFlow without XLA, where its kernel is 3x faster than the gather path op by op.
    return tensorflow and not tf_xla_available()


def _use_tf_xla(method):
    """Whether to run work as its own XLA cluster: TensorFlow backend with XLA, `method` "auto" (and
    `DEFAULT_WARP_METHOD` "auto"), and not already inside an XLA graph (there it is compiled inline
    with the rest)."""
    return (
        method == "auto"
        and DEFAULT_WARP_METHOD == "auto"
        and keras.backend.backend() == "tensorflow"
        and not _tf_xla_context()
        and tf_xla_available()
    )


_TF_XLA_AVAILABLE = []


def tf_xla_available():
    """Whether TensorFlow can compile with XLA here (probed once with a tiny function, eagerly).

    A TensorFlow build without XLA's JIT makes `jit_compile=True` fail at run time; then the
    layers warn once and run op by op (warps through `ImageProjectiveTransformV3` where it
    applies), so they keep working, only slower.
    """
    if not _TF_XLA_AVAILABLE:
        import tensorflow as tf

        try:
            with tf.init_scope():  # run eagerly even when first asked while tracing a graph
                probe = tf.function(lambda v: v * 2.0 + 1.0, jit_compile=True)
                ok = float(probe(tf.constant(1.0))) == 3.0
        except Exception as e:  # no XLA JIT in this build, or it failed: op by op instead
            warnings.warn(
                "lung_keras.augment: TensorFlow cannot compile with XLA here "
                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                "augmentation runs op by op (slower).",
                RuntimeWarning,
                stacklevel=2,
            )
            ok = False
        _TF_XLA_AVAILABLE.append(ok)
    return _TF_XLA_AVAILABLE[0]


_TF_XLA_GATHER = {}


def _tf_xla_function(fn):
    """`tf.function(fn, jit_compile=True)` that does not retrace per input shape.

    `reduce_retracing`: after a second shape the trace generalizes the varying dimensions (batch,
    height, width) to None (at most three traces), so eager calls on images of many sizes (offline
    expansion, previews) reuse one trace instead of tracing again and warning about it; XLA still
    compiles per concrete shape, as it must. TensorFlow counts traces for its "excessive
    retracing" warning per code object, shared by every function built from the same `fn`; a
    `functools.partial` (no `__code__`) gives each function its own count.
    """
    import tensorflow as tf

    return tf.function(functools.partial(fn), jit_compile=True, autograph=False, reduce_retracing=True)


def _tf_xla_gather(images, geometric_ops, interpolation, border_mode, fill, rounding):
    """`gather_warp` wrapped in `tf.function(jit_compile=True)` (TensorFlow only).

    TensorFlow's own kernels for the gather path (GatherV2 plus a dozen elementwise ops over
    `(B, H, W)`) run op by op; XLA fuses the coordinate arithmetic into the gathers, 3-10x faster
    on CPU. Called from a plain `tf.function`, eagerly or in `tf.data.Dataset.map`, the nested
    function becomes one compiled cluster. One function per dtype and static setting (op kinds,
    interpolation, border, fill, rounding), so each sees only its own shapes (`_tf_xla_function`).
    Only the warp is compiled: TensorFlow's XLA lowering of its random ops is ~70x slower on CPU
    than the plain kernels, so parameter sampling and noise stay outside.
    """
    kinds = tuple(kind for kind, _ in geometric_ops)
    key = (dtype_name(images.dtype), kinds, interpolation, border_mode, repr(fill), rounding)
    fn = _TF_XLA_GATHER.get(key)
    if fn is None:
        fn = _tf_xla_function(gather_warp)
        _TF_XLA_GATHER[key] = fn
    return fn(images, list(geometric_ops), interpolation, border_mode, fill, rounding)


#: TensorFlow backend: run each layer call's image and mask transforms (everything after parameter
#: sampling) as one XLA-compiled function (`run_transforms`). False: TensorFlow's op-by-op kernels.
TF_XLA_TRANSFORMS = True


_TF_XLA_RUNNERS = weakref.WeakKeyDictionary()


def run_transforms(transform, images, masks, transformation):
    """`transform(images, masks, transformation)` (masks may be None), compiled where that pays.

    `transform` is a bound method of the object (a layer) whose parameters it reads; compiled functions
    are cached per that object (weakly) and per input dtypes.

    On the TensorFlow backend outside an XLA graph (`TF_XLA_TRANSFORMS`, `DEFAULT_WARP_METHOD`
    "auto"), both run as one `tf.function(jit_compile=True)` per layer and input dtypes: XLA fuses
    the sampling-grid arithmetic into the gathers and the photometric chain into one elementwise
    loop (on a 2-core CPU at 256x256 the default policy goes from ~40 to ~20 ms per batch of 32,
    see benchmarks/augment_throughput.py). Parameter sampling stays outside: TensorFlow's XLA
    lowering of its random ops is ~70x slower on CPU than its plain kernels. Elsewhere (JAX,
    already inside XLA) they run inline.
    """
    if not (TF_XLA_TRANSFORMS and _use_tf_xla("auto")):
        return transform(images, masks, transformation)
    # one function per owner and input dtypes, so each retraces only for new shapes
    runners = _TF_XLA_RUNNERS.setdefault(transform.__self__, {})
    key = (dtype_name(images.dtype), None if masks is None else dtype_name(masks.dtype))
    runner = runners.get(key)
    if runner is None:
        # a weak reference: the runner is the dict's value, it must not keep its key alive
        ref = weakref.WeakMethod(transform)
        runner = _tf_xla_function(lambda i, m, t: ref()(i, m, t))
        runners[key] = runner
    return runner(images, masks, transformation)


def _tf_xla_context():
    """Whether TensorFlow is tracing for XLA (`jit_compile=True`, e.g. `model.fit` compiled with XLA).

    TensorFlow has no XLA kernel for `ImageProjectiveTransformV3`, so the warp must take the gather
    path there. Only called on the TensorFlow backend (TensorFlow is imported already). Uses TF's
    own check (`control_flow_util.GraphOrParentsInXlaContext`, as tf.keras did); if that ever
    fails, answers True: the gather path is always correct.
    """
    try:
        import tensorflow as tf
        from tensorflow.python.ops import control_flow_util

        if tf.executing_eagerly():
            return False
        return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))
    except Exception:  # a TensorFlow without this private helper: stay on the safe side
        return True


def unless(skip, fn, x):
    """`x` if the scalar bool `skip` holds, else `fn(x)`; `fn(x)` must keep x's dtype and shape.

    Eager tensors are decided in Python (no trace of the unused branch);
    symbolic ones (tf.function graphs, jax.jit tracers) go through
    `keras.ops.cond`, so the result stays graph and jit compatible.
    """
    try:
        value = bool(skip)
    except TypeError:  # tf.Tensor in a graph or a JAX tracer: cannot be a Python bool
        return ops.cond(skip, lambda: x, lambda: fn(x))
    return x if value else fn(x)


def warp(
    images,
    geometric_ops,
    interpolation=INTER_LINEAR,
    border_mode=BORDER_CONSTANT,
    fill=0.0,
    rounding="round",
    method="auto",
    skip_identity=False,
):
    """Resample `(B, H, W, C)` images once through a geometric op list.

    Linear interpolation is computed in float32 and cast back to the input
    dtype (integers rounded half to even, like OpenCV 5); nearest gathers the
    input values themselves, so the output values are a subset of the input
    values plus `fill`.

    `method`: `"gather"` (coordinates + gathers, every border mode, fields),
    `"affine_transform"` (`warp_affine`, one kernel call; only affine op lists
    and the settings `affine_transform_supported` accepts; TensorFlow has no
    XLA kernel for it) or `"auto"` (default: the gather path, compiled as
    its own XLA function on the TensorFlow backend outside XLA graphs; see
    `DEFAULT_WARP_METHOD`).

    `skip_identity`: for affine op lists, return `images` unchanged without
    resampling when every matrix is the identity (decided at run time with
    `unless`; exact, since resampling at the pixel centres is the identity).
    """
    matrix = compose_affine(geometric_ops)
    if skip_identity and matrix is not None:
        return unless(
            is_identity(matrix),
            lambda v: warp(v, geometric_ops, interpolation, border_mode, fill, rounding, method),
            images,
        )
    if matrix is not None and _use_affine_transform(method, interpolation, border_mode, fill):
        out = warp_affine(images, matrix, interpolation, border_mode, fill)
        return out if interpolation == INTER_NEAREST else from_float(out, images.dtype, rounding)
    if method == "affine_transform":
        raise ValueError("method='affine_transform' needs affine ops only. Received: a displacement field")
    if _use_tf_xla(method):
        return _tf_xla_gather(images, geometric_ops, interpolation, border_mode, fill, rounding)
    return gather_warp(images, geometric_ops, interpolation, border_mode, fill, rounding)
