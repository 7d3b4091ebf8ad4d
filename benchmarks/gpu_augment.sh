#!/usr/bin/env bash
# GPU augmentation figures for issue 3, on a lent H100 (JAX backend; TensorFlow is not there).
#
# Prints, in one run:
#   1. images/s of the fused lung_keras Compose policy (flip p=0.5, rotate +-15, brightness/contrast +-0.2,
#      Gaussian noise; image + mask) at 256x256 and 512x512, jitted, several batch sizes;
#   2. the overhead of in-model augmentation on a U-Net training step (AugmentedModel.train_on_batch vs the
#      plain model's, jit_compile=True), as a fraction of the augmented step;
#   3. Albumentations 2.0.8 on the machine's CPU cores (per-image loop in one process per core).
# Goals (issue 3): >= 100k images/s at 256x256; in-model augmentation <= 10% of a training step.
#
# Two steps:
#   here (has pip and the network):   bash benchmarks/gpu_augment.sh fetch     # wheels into ./.whl (git-ignored)
#   there (device tool, carry .whl):  bash benchmarks/gpu_augment.sh           # installs wheels, runs, prints
#   e.g. run(command="bash benchmarks/gpu_augment.sh", carry=[".whl"], timeout_s=480)
#   CPU dry run here:                 GPU_AUGMENT_DRY=1 bash benchmarks/gpu_augment.sh
# The device image has jax (CUDA), numpy, scipy, opencv-python-headless, pyyaml, absl-py, rich, h5py, ml-dtypes;
# keras, albumentations and their missing dependencies travel as cp312 manylinux wheels.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=(
  keras==3.15.1 namex==0.1.0 optree==0.20.0
  albumentations==2.0.8 albucore==0.0.24 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0
  typing-inspection==0.4.5 stringzilla==5.3.2 simsimd==6.5.16
)

if [ "${1:-}" = "fetch" ]; then
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  mkdir -p .whl
  PIP=${PIP:-.venv/bin/python -m pip}
  $PIP download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
  ls -la .whl; du -sh .whl
  exit 0
fi

PY=${PY:-python3}
DRY=${GPU_AUGMENT_DRY:-0}
if [ "$DRY" = "1" ]; then
  PY=${PY_DRY:-.venv/bin/python}
elif ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
export XLA_PYTHON_CLIENT_PREALLOCATE=false
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

"$PY" - "$DRY" <<'PYEOF'
import os
import statistics
import sys
import time

import numpy as np

DRY = sys.argv[1] == "1"
import jax  # noqa: E402
import keras  # noqa: E402

print(f"jax={jax.__version__} devices={jax.devices()} keras={keras.__version__} backend={keras.backend.backend()}")
print(f"cpu cores={os.cpu_count()} dry_run={DRY}")
STD = 0.06
SIZES = (64, 128) if DRY else (256, 512)
BATCHES = (32,) if DRY else (256, 1024)
REPEATS = 3 if DRY else 7


def policy():
    from lung_keras.augment.compose import Compose
    from lung_keras.augment.gauss_noise import GaussNoise
    from lung_keras.augment.horizontal_flip import HorizontalFlip
    from lung_keras.augment.random_brightness_contrast import RandomBrightnessContrast
    from lung_keras.augment.rotate import Rotate

    return Compose(
        [
            HorizontalFlip(p=0.5),
            Rotate(limit=15, p=1.0),
            RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=1.0),
            GaussNoise(std_range=(STD, STD), p=1.0),
        ],
        p=1.0,
        seed=0,
    )


def jitted_policy(layer):
    variables = list(layer.non_trainable_variables)

    def step(state, images, masks):
        with keras.StatelessScope(state_mapping=list(zip(variables, state))) as scope:
            out = layer({"images": images, "segmentation_masks": masks}, training=True)
        new = [scope.get_current_value(v) for v in variables]
        return (out["images"], out["segmentation_masks"]), [o if n is None else n for n, o in zip(new, state)]

    return jax.jit(step), [v.value for v in variables]


def median_rate(fn, n_images, repeats):
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        rates.append(n_images / (time.perf_counter() - t0))
    return statistics.median(rates), min(rates), max(rates)


# 1. fused policy throughput on the accelerator -------------------------------------------------------------
print("\n== 1. fused Compose policy on", jax.devices()[0].platform, "(images/s, median [min-max]) ==")
for size in SIZES:
    for batch in BATCHES:
        layer = policy()
        step, state = jitted_policy(layer)
        key = jax.random.PRNGKey(0)
        images = jax.random.uniform(key, (batch, size, size, 1), dtype="float32")
        masks = (jax.random.uniform(jax.random.PRNGKey(1), (batch, size, size, 1)) > 0.5).astype("float32")
        holder = {"state": state}
        iters = 5 if DRY else 20

        def run():
            out = None
            for _ in range(iters):
                out, holder["state"] = step(holder["state"], images, masks)
            jax.block_until_ready(out)

        run()  # compile
        med, lo, hi = median_rate(run, iters * batch, REPEATS)
        print(f"size {size:>4} batch {batch:>5}: {med:12.0f} img/s [{lo:.0f}-{hi:.0f}]")

# 2. in-model augmentation overhead on a U-Net training step ------------------------------------------------
print("\n== 2. U-Net train step with and without in-model augmentation (jit_compile=True) ==")
try:
    from lung_keras.augment import AugmentedModel
except ImportError:
    from lung_keras.augment.augmented_model import AugmentedModel
from lung_keras.models import unet

size = SIZES[0]
batch = 8 if DRY else 32
x = np.random.default_rng(0).random((batch, size, size, 1), dtype=np.float32)
y = (np.random.default_rng(1).random((batch, size, size, 1)) > 0.5).astype(np.float32)
steps = 3 if DRY else 30
times = {}
for name in ("plain", "augmented"):
    keras.utils.set_random_seed(0)
    base = unet(input_shape=(size, size, 1), base_filters=8 if DRY else 32, depth=3 if DRY else 4)
    model = base if name == "plain" else AugmentedModel(base, policy())
    model.compile(optimizer="adam", loss="binary_crossentropy", jit_compile=True)
    model.train_on_batch(x, y)  # compile
    model.train_on_batch(x, y)
    per_step = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = model.train_on_batch(x, y)
        float(np.asarray(loss if np.ndim(loss) == 0 else loss[0]))
        per_step.append((time.perf_counter() - t0) / steps)
    times[name] = statistics.median(per_step)
    print(f"{name:>9}: {times[name] * 1e3:8.2f} ms/step  (batch {batch}, {size}x{size})")
overhead = (times["augmented"] - times["plain"]) / times["augmented"]
print(f"augmentation share of the augmented step: {100 * overhead:.1f}%  (goal <= 10%)")

PYEOF

"$PY" - "$DRY" <<'PYEOF'
# 3. Albumentations on all CPU cores (own process: no JAX here, so forking workers is safe) ---------------------
import multiprocessing as mp
import os
import statistics
import sys
import time

import numpy as np

DRY = sys.argv[1] == "1"
STD = 0.06
SIZES = (64, 128) if DRY else (256, 512)
print("\n== 3. Albumentations 2.0.8 per-image loop, one process per CPU core (uint8, grey, image+mask) ==")


def _albu_worker(args):
    size, n = args
    import albumentations as A

    pipe = A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Rotate(limit=15, p=1.0),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=1.0),
            A.GaussNoise(std_range=(STD, STD), p=1.0),
        ],
        seed=os.getpid(),
    )
    rng = np.random.default_rng(0)
    im = rng.integers(0, 256, (size, size), dtype=np.uint8)
    m = (rng.random((size, size)) > 0.5).astype(np.uint8)
    for _ in range(5):
        pipe(image=im, mask=m)
    t0 = time.perf_counter()
    for _ in range(n):
        pipe(image=im, mask=m)
    return n, time.perf_counter() - t0


cores = os.cpu_count() or 1
ctx = mp.get_context("fork")
with ctx.Pool(cores) as pool:
    for size in SIZES:
        n = 50 if DRY else 400
        t0 = time.perf_counter()
        results = pool.map(_albu_worker, [(size, n)] * cores)
        wall = time.perf_counter() - t0
        per_core = statistics.median(k / t for k, t in results)
        total = sum(k / t for k, t in results)
        print(f"size {size:>4}: {total:10.0f} img/s on {cores} cores (sum of workers; {per_core:.0f} per core; "
              f"wall incl. start {cores * n / wall:.0f})")
PYEOF
