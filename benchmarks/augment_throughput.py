"""Augmentation throughput: Albumentations vs Keras core layers vs lung_keras layers vs fused Compose.

Policy (issue 3): horizontal flip p=0.5, rotate +-15 deg, brightness/contrast +-0.2, Gaussian noise; batch 32;
image + mask; sizes 128/256/512. Prints images/s (median over repeats) for

  (a) Albumentations 2.0.8, per-image loop (uint8 input, its fast path; float32 also timed),
  (b) a chain of Keras core layers (RandomFlip, RandomRotation, RandomBrightness, RandomContrast, GaussianNoise),
  (c) lung_keras layers applied one by one,
  (d) lung_keras fused `Compose`,

compiled (TensorFlow: `tf.function`, plus `jit_compile=True` variants of (c)/(d) with --jit; JAX: `jax.jit` over
a stateless step) and the ratios of each to (a).

Usage:
    .venv/bin/python benchmarks/augment_throughput.py                  # TensorFlow backend
    .venv/bin/python benchmarks/augment_throughput.py --backend jax    # JAX backend (or KERAS_BACKEND=jax)
    .venv/bin/python benchmarks/augment_throughput.py --sizes 256 --repeats 3
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
    p.add_argument("--skip", default="", help="comma list of runners to skip: a,b,c,d")
    p.add_argument("--channels", type=int, default=1)
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


def our_layers():
    from lung_keras.augment.gauss_noise import GaussNoise
    from lung_keras.augment.horizontal_flip import HorizontalFlip
    from lung_keras.augment.random_brightness_contrast import RandomBrightnessContrast
    from lung_keras.augment.rotate import Rotate

    return [
        HorizontalFlip(p=0.5, seed=1),
        Rotate(limit=15, p=1.0, seed=2),
        RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=1.0, seed=3),
        GaussNoise(std_range=(STD, STD), p=1.0, seed=4),
    ]


def our_compose():
    from lung_keras.augment.compose import Compose

    return Compose(our_layers(), p=1.0, seed=0)


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


def make_keras(kind, size, batch, channels, jit):
    rng = np.random.default_rng(0)
    images, masks = _data(size, batch, channels, rng)
    images = keras.ops.convert_to_tensor(images)
    masks = keras.ops.convert_to_tensor(masks)
    if kind == "b":
        layers, noise = keras_core_layers()
        fn = _compile(_chain_fn(layers, noise), layers + [noise], jit)
    elif kind == "c":
        layers = our_layers()
        fn = _compile(_chain_fn(layers), layers, jit)
    else:
        compose = our_compose()
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


def main():
    skip = set(filter(None, ARGS.skip.split(",")))
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
            ratios = "  ".join(f"{k}={row[k] / base:.2f}x" for k in ("b", "c", "d", "c_xla", "d_xla") if k in row)
            print(f"{size:>4} ratios to (a) (faster of uint8/float32, {base:.0f} img/s): {ratios}", flush=True)
        results[size] = row
    return results


if __name__ == "__main__":
    main()
    sys.exit(0)
