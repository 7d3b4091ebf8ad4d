"""Augmentation throughput: Albumentations vs Keras core layers vs lung_keras layers vs fused Compose.

Policy (issue 3): horizontal flip p=0.5, rotate +-15 deg, brightness/contrast +-0.2, Gaussian noise; batch 32;
image + mask; sizes 128/256/512. Prints images/s (median over repeats) for

  (a) Albumentations 2.0.8, per-image loop (uint8 input, its fast path; float32 also timed),
  (b) a chain of Keras core layers (RandomFlip, RandomRotation, RandomBrightness, RandomContrast, GaussianNoise),
  (c) lung_keras layers applied one by one,
  (d) lung_keras fused `Compose`,

compiled (TensorFlow: `tf.function`, plus `jit_compile=True` variants of (c)/(d) with --jit; JAX: `jax.jit` over
a stateless step) and the ratios of each to (a). Images are float32 in [0, 1] and masks float32 for (b)-(d);
"(d) uint8" feeds uint8 images and masks to the fused Compose.

`--baseline REV` also times (c) and (d) of the lung_keras.augment code at git revision REV in the same process
(interleaved with the current code, same data), for before/after figures from one run. `--breakdown` prints
where the time of one fused batch goes (each component compiled and timed alone).

Usage:
    .venv/bin/python benchmarks/augment_throughput.py                  # TensorFlow backend
    .venv/bin/python benchmarks/augment_throughput.py --backend jax    # JAX backend (or KERAS_BACKEND=jax)
    .venv/bin/python benchmarks/augment_throughput.py --sizes 256 --repeats 3 --baseline HEAD~3 --breakdown
"""

import argparse
import os
import statistics
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", choices=("tensorflow", "jax"), default=None, help="Keras backend (default: env)")
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement (median reported)")
    p.add_argument("--min-images", type=int, default=256, help="images per repeat (rounded up to batches)")
    p.add_argument("--jit", action="store_true", help="TensorFlow: also compile (c)/(d) with XLA (jit_compile=True);"
                   " on CPU XLA's gather makes them ~20x slower, so plain tf.function is the default")
    p.add_argument("--skip", default="", help="comma list of runners to skip: a,b,c,d,d_uint8")
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--baseline", default=None, metavar="REV",
                   help="git revision whose lung_keras.augment is timed too ((c0), (d0)), in this process")
    p.add_argument("--breakdown", action="store_true", help="time the components of one fused batch alone")
    return p.parse_args(argv)


ARGS = parse_args()
if ARGS.backend:
    os.environ["KERAS_BACKEND"] = ARGS.backend
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

BACKEND = keras.backend.backend()
STD = 0.06  # Gaussian noise std as a fraction of the max value (std_range=(STD, STD); Keras GaussianNoise(STD))


# ---------------------------------------------------------------------------------------------- policies


def albumentations_policy():
    import albumentations as A

    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Rotate(limit=15, p=1.0),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=1.0),
            A.GaussNoise(std_range=(STD, STD), p=1.0),
        ],
        seed=0,
    )


def current_augment():
    import lung_keras.augment as augment

    return augment


def load_baseline(rev):
    """lung_keras.augment as of git revision `rev`, imported next to the current one.

    The revision's `lung_keras/` is extracted to a temporary folder and imported with the current
    modules moved aside; afterwards the current modules (and their Keras registrations) are put back.
    The baseline layers keep working through their own module globals.
    """
    import importlib
    import shutil
    import subprocess
    import tarfile
    import tempfile

    current_augment()  # the current package is imported (and registered) first
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                          check=True, cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    tmp = tempfile.mkdtemp(prefix="lung_keras_baseline_")
    archive = os.path.join(tmp, "src.tar")
    subprocess.run(["git", "archive", "--format=tar", "-o", archive, rev, "lung_keras"], cwd=root, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
    saved = {k: v for k, v in sys.modules.items() if k == "lung_keras" or k.startswith("lung_keras.")}
    registry = keras.saving.get_custom_objects()
    saved_registry = dict(registry)
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, tmp)
    try:
        baseline = importlib.import_module("lung_keras.augment")
    finally:
        sys.path.remove(tmp)
        for k in [k for k in sys.modules if k == "lung_keras" or k.startswith("lung_keras.")]:
            del sys.modules[k]
        sys.modules.update(saved)
        registry.clear()
        registry.update(saved_registry)
        shutil.rmtree(tmp, ignore_errors=True)
    return baseline


def our_layers(augment=None):
    A = augment or current_augment()
    return [
        A.HorizontalFlip(p=0.5, seed=1),
        A.Rotate(limit=15, p=1.0, seed=2),
        A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=1.0, seed=3),
        A.GaussNoise(std_range=(STD, STD), p=1.0, seed=4),
    ]


def our_compose(augment=None):
    A = augment or current_augment()
    return A.Compose(our_layers(A), p=1.0, seed=0)


def keras_core_layers():
    L = keras.layers
    return [
        L.RandomFlip("horizontal", seed=1),
        L.RandomRotation(15.0 / 360.0, fill_mode="constant", seed=2),
        L.RandomBrightness(0.2, value_range=(0.0, 1.0), seed=3),
        L.RandomContrast(0.2, value_range=(0.0, 1.0), seed=4),
    ], L.GaussianNoise(STD, seed=5)


# ---------------------------------------------------------------------------------------------- runners


def _data(size, batch, channels, rng):
    images = rng.random((batch, size, size, channels), dtype=np.float32)
    masks = (rng.random((batch, size, size, 1)) > 0.5).astype(np.float32)
    return images, masks


def make_albumentations(size, batch, channels, dtype):
    policy = albumentations_policy()
    rng = np.random.default_rng(0)
    images, masks = _data(size, batch, channels, rng)
    if dtype == "uint8":
        images = (images * 255).astype(np.uint8)
    masks = masks.astype(np.uint8)
    images = [im[..., 0] if channels == 1 else im for im in images]
    masks = [m[..., 0] for m in masks]

    def run():
        for im, m in zip(images, masks):
            policy(image=im, mask=m)

    return run


def _chain_fn(layers, noise=None):
    def fn(images, masks):
        data = {"images": images, "segmentation_masks": masks}
        for layer in layers:
            data = layer(data, training=True)
        if noise is not None:
            data = dict(data)
            data["images"] = noise(data["images"], training=True)
        return data["images"], data["segmentation_masks"]

    return fn


def _compile(fn, layers, jit):
    """A callable (images, masks) -> outputs, compiled for the backend, advancing the layers' seeds."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=jit)
    if BACKEND == "jax":
        import jax

        variables = []
        for layer in layers:
            variables.extend(layer.non_trainable_variables)
        state = [v.value for v in variables]

        def stateless(state, images, masks):
            with keras.StatelessScope(state_mapping=list(zip(variables, state))) as scope:
                out = fn(images, masks)
            new_state = []
            for v, old in zip(variables, state):
                new = scope.get_current_value(v)
                new_state.append(old if new is None else new)
            return out, new_state

        jitted = jax.jit(stateless)
        holder = {"state": state}

        def run(images, masks):
            out, holder["state"] = jitted(holder["state"], images, masks)
            return out

        return run
    return fn


def make_keras(kind, size, batch, channels, jit, augment=None, dtype="float32"):
    rng = np.random.default_rng(0)
    images, masks = _data(size, batch, channels, rng)
    if dtype == "uint8":
        images = (images * 255).astype(np.uint8)
        masks = masks.astype(np.uint8)
    images = keras.ops.convert_to_tensor(images)
    masks = keras.ops.convert_to_tensor(masks)
    if kind == "b":
        layers, noise = keras_core_layers()
        fn = _compile(_chain_fn(layers, noise), layers + [noise], jit)
    elif kind == "c":
        layers = our_layers(augment)
        fn = _compile(_chain_fn(layers), layers, jit)
    else:
        compose = our_compose(augment)
        fn = _compile(_chain_fn([compose]), [compose], jit)

    def run():
        out = fn(images, masks)
        _block(out)

    return run


def _block(out):
    leaf = out[0] if isinstance(out, (tuple, list)) else out
    if BACKEND == "jax":
        leaf.block_until_ready()
    else:
        keras.ops.convert_to_numpy(keras.ops.sum(leaf))


def measure(run, batch, repeats, min_images):
    n_batches = max(1, -(-min_images // batch))
    run()  # compile / warm up
    run()
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n_batches):
            run()
        dt = time.perf_counter() - t0
        rates.append(n_batches * batch / dt)
    return statistics.median(rates), min(rates), max(rates)


def _compiled_stateless(fn):
    """Compile a pure function of tensors (no layer state): tf.function / jax.jit."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    return fn


def breakdown(size, batch, channels, repeats):
    """Milliseconds per batch of each component of the fused policy, each compiled and timed alone."""
    from keras import ops

    A = current_augment()
    F = A.functional
    rng = np.random.default_rng(0)
    images, masks = _data(size, batch, channels, rng)
    images = ops.convert_to_tensor(images)
    masks8 = ops.convert_to_tensor(masks.astype(np.uint8))
    masks = ops.convert_to_tensor(masks)
    policy = our_compose()
    t = policy.get_random_transformation(images, seed=0)
    leaves = policy.leaves(t)
    geo = []
    for layer, lt in leaves[:2]:
        geo.extend(layer.geometric_ops(lt, size, size))
    matrix = F.compose_affine(geo)
    (rbc, rbc_t), (noise, noise_t) = leaves[2], leaves[3]
    shape = (batch, size, size, channels)

    def photometric(x, n):
        nt = dict(noise_t, noise=n)
        return noise.apply_float(rbc.apply_float(x, rbc_t, "float32"), nt, "float32")

    from lung_keras.augment.gauss_noise import standard_normal

    # TensorFlow constant-folds random ops with a constant seed: draw from a generator there (under
    # jax.jit a generator cannot advance; a constant key is not folded by XLA)
    seed = keras.random.SeedGenerator(1) if BACKEND == "tensorflow" else 1
    components = [
        ("sample all parameters (incl. noise)", lambda x: policy.get_random_transformation(x, seed=seed)["steps"][3]["noise"], (images,)),
        ("keras.random.normal (B,H,W,C)", lambda x: keras.random.normal(shape, seed=seed), (images,)),
        ("GaussNoise standard_normal (B,H,W,C)", lambda x: standard_normal(shape, seed=seed), (images,)),
        ("keras.random.uniform (B,H,W,C)", lambda x: keras.random.uniform(shape, seed=seed), (images,)),
        ("one elementwise op x*a", lambda x: x * 1.5, (images,)),
        ("photometric pass (RBC+noise apply)", photometric, (images, noise_t["noise"])),
        ("warp image bilinear, affine_transform", lambda x, m: F.warp(x, [("affine", m)], method="affine_transform"), (images, matrix)),
        ("warp image bilinear, gather inline", lambda x, m: F.warp(x, [("affine", m)], method="gather"), (images, matrix)),
        ("warp image bilinear, auto (layers)", lambda x, m: F.warp(x, [("affine", m)]), (images, matrix)),
        ("warp mask nearest, affine_transform", lambda x, m: F.warp(x, [("affine", m)], 0, method="affine_transform"), (masks, matrix)),
        ("warp mask nearest, gather inline", lambda x, m: F.warp(x, [("affine", m)], 0, method="gather"), (masks, matrix)),
        ("warp mask nearest, auto (layers)", lambda x, m: F.warp(x, [("affine", m)], 0), (masks, matrix)),
        ("warp uint8 mask nearest, auto (layers)", lambda x, m: F.warp(x, [("affine", m)], 0), (masks8, matrix)),
    ]
    print(f"{size:>4} breakdown, ms per batch of {batch} (median of {repeats}, each part compiled alone):")
    for label, fn, args in components:
        compiled = _compiled_stateless(fn)

        def run():
            _block(compiled(*args))

        try:
            med, _, _ = measure(run, batch, repeats, 4 * batch)
        except Exception as e:  # a component some backend lacks must not hide the others
            print(f"     {label:<40} FAILED: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
            continue
        print(f"     {label:<40} {1000.0 * batch / med:8.2f} ms", flush=True)


def main():
    skip = set(filter(None, ARGS.skip.split(",")))
    baseline = load_baseline(ARGS.baseline) if ARGS.baseline else None
    jit = ARGS.jit
    print(
        f"backend={BACKEND} keras={keras.__version__} batch={ARGS.batch} channels={ARGS.channels} "
        f"repeats={ARGS.repeats} (median [min-max] images/s) cpu_count={os.cpu_count()} tf_xla_variants={jit}"
    )
    try:
        import albumentations

        print(f"albumentations={albumentations.__version__}")
    except ImportError:
        skip.add("a")
    results = {}
    for size in ARGS.sizes:
        row = {}
        runners = []
        if "a" not in skip:
            runners.append(("a_uint8", "(a) Albumentations loop, uint8", lambda: make_albumentations(size, ARGS.batch, ARGS.channels, "uint8")))
            runners.append(("a_float32", "(a) Albumentations loop, float32", lambda: make_albumentations(size, ARGS.batch, ARGS.channels, "float32")))
        if "b" not in skip:
            runners.append(("b", "(b) Keras core chain", lambda: make_keras("b", size, ARGS.batch, ARGS.channels, False)))
        if "c" not in skip:
            runners.append(("c", "(c) lung_keras one by one", lambda: make_keras("c", size, ARGS.batch, ARGS.channels, False)))
        if "d" not in skip:
            runners.append(("d", "(d) lung_keras fused Compose", lambda: make_keras("d", size, ARGS.batch, ARGS.channels, False)))
        if "d_uint8" not in skip:
            runners.append(("d_uint8", "(d) fused Compose, uint8 in", lambda: make_keras("d", size, ARGS.batch, ARGS.channels, False, dtype="uint8")))
        if baseline is not None:
            rev = ARGS.baseline[:12]
            if "c" not in skip:
                runners.append(("c0", f"(c0) one by one @{rev}", lambda: make_keras("c", size, ARGS.batch, ARGS.channels, False, baseline)))
            if "d" not in skip:
                runners.append(("d0", f"(d0) fused Compose @{rev}", lambda: make_keras("d", size, ARGS.batch, ARGS.channels, False, baseline)))
            if "d_uint8" not in skip:
                runners.append(("d0_uint8", f"(d0) fused, uint8 in @{rev}", lambda: make_keras("d", size, ARGS.batch, ARGS.channels, False, baseline, "uint8")))
        if jit and BACKEND == "tensorflow":
            runners.append(("c_xla", "(c) one by one, tf.function+XLA", lambda: make_keras("c", size, ARGS.batch, ARGS.channels, True)))
            runners.append(("d_xla", "(d) fused, tf.function+XLA", lambda: make_keras("d", size, ARGS.batch, ARGS.channels, True)))
        for key, label, factory in runners:
            try:
                med, lo, hi = measure(factory(), ARGS.batch, ARGS.repeats, ARGS.min_images)
            except Exception as e:  # report and go on: one failing runner must not hide the others
                print(f"{size:>4} {label:<36} FAILED: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
                continue
            row[key] = med
            print(f"{size:>4} {label:<36} {med:9.0f} img/s  [{lo:.0f}-{hi:.0f}]", flush=True)
        base = max([row[k] for k in ("a_uint8", "a_float32") if k in row], default=None)
        if base:
            keys = ("b", "c", "d", "d_uint8", "c0", "d0", "d0_uint8", "c_xla", "d_xla")
            ratios = "  ".join(f"{k}={row[k] / base:.2f}x" for k in keys if k in row)
            print(f"{size:>4} ratios to (a) (faster of uint8/float32, {base:.0f} img/s): {ratios}", flush=True)
        for new_key, old_key in (("c", "c0"), ("d", "d0"), ("d_uint8", "d0_uint8")):
            if new_key in row and old_key in row:
                print(f"{size:>4} speed-up {new_key} vs {old_key} (@{ARGS.baseline}): {row[new_key] / row[old_key]:.2f}x")
        if ARGS.breakdown:
            breakdown(size, ARGS.batch, ARGS.channels, ARGS.repeats)
        results[size] = row
    return results


if __name__ == "__main__":
    main()
    sys.exit(0)
