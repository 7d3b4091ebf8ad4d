"""Input pipeline: the old two-pass loader vs the one-pass store, on chest X-rays at native Montgomery size.

Issue 11's benchmark. It writes a temporary dataset of `--n` image/mask pairs at 4020x4892 (the NLM size of a
Montgomery radiograph) made by upsampling the 138 shared 128x128 pairs (bicubic image plus +-2 grey levels of
noise, so the PNGs compress like radiographs, ~9 MB each; nearest-neighbour masks, 0/255). Only the 138 distinct
pairs are encoded; the other pairs are hard links to them under their own names, so every pair is still a file
the loaders open and decode on its own (the page cache holds the 138 files, as it would hold a set this size on a
24 GiB machine).

Then, per training size (`--sizes`, default 256 and 512), each in a fresh process (peak RSS is the process's
`VmHWM`):

- **old**: the loader before issue 11 (the code of `--old-rev`, checked out into the work folder and imported
  from there): `load_dataset` (every file decoded to check it) then `load_arrays` (decoded again, one thread, list
  then `np.stack`). "First pass" is both; a "cached epoch" then indexes the
  numpy arrays in shuffled batches of 8.
- **new**: `build_store(cache="auto")`: each file decoded once in `--workers` threads, checked on the way, kept at
  the training size (disk cache above 1 GiB of arrays); a cached epoch is `store.tf_dataset(shuffle=True)` read
  to the end (what `model.fit` consumes).
- **base**: a process that imports TensorFlow and lung_keras.data and builds the default U-Net at that size: the
  RSS every training process pays before any data; "above base" is a loader's peak minus it.
- **step**: images/s one CPU training step of the default U-Net (16 filters, depth 4, batch 8, Adam, BCE+Dice)
  consumes, median of `--steps` steps after warm-up: the rate a cached epoch must beat 5x.

Figures are medians where repeated and ratios from the same run. Usage:

    .venv/bin/python benchmarks/input_pipeline.py                        # 2,000 pairs, 512 and 256
    .venv/bin/python benchmarks/input_pipeline.py --n 200 --sizes 256    # a quick look
    .venv/bin/python benchmarks/input_pipeline.py --old-n 400            # old loader on the first 400 pairs only

The old loader takes about 1 s per native-size pair on 2 cores; `--old-n` runs it on the first K pairs (its time
per pair does not depend on how many there are; its memory grows with them, and the table says K).
"""

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

NATIVE = (4892, 4020)  # (height, width) of a Montgomery radiograph (NLM)
REPO = pathlib.Path(__file__).resolve().parents[1]


def _peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dataset_folder(work, source, n):
    """`work/data-<n>`: generated once, or hard links to the first `n` pairs of a larger one already there."""
    dest = work / f"data-{n}"
    if (dest / "images").is_dir() and len(list((dest / "images").glob("*.png"))) == n:
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    bigger = sorted((int(d.name.split("-")[1]), d) for d in work.glob("data-*") if int(d.name.split("-")[1]) > n)
    if bigger:
        for sub in ("images", "masks"):
            (dest / sub).mkdir(parents=True)
            for i in range(n):
                os.link(bigger[0][1] / sub / f"case_{i:04d}_0.png", dest / sub / f"case_{i:04d}_0.png")
        return dest
    seconds = generate(source, dest, n)
    print(f"generated {n} pairs at {NATIVE[1]}x{NATIVE[0]} in {seconds:.0f} s -> {dest}", flush=True)
    return dest


def generate(source, dest, n, seed=0):
    """Write `n` native-size pairs into `dest` (`images/` + `masks/`); returns seconds."""
    from PIL import Image

    start = time.perf_counter()
    names = sorted(p.name for p in (source / "images").glob("*.png"))
    rng = np.random.default_rng(seed)
    for sub in ("images", "masks"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    h, w = NATIVE
    distinct = min(n, len(names))
    for i in range(distinct):
        image = Image.open(source / "images" / names[i]).convert("L").resize((w, h), Image.BICUBIC)
        noisy = np.asarray(image, np.int16) + rng.integers(-2, 3, size=(h, w), dtype=np.int16)
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(dest / "images" / f"case_{i:04d}_0.png",
                                                                       compress_level=1)
        mask = Image.open(source / "masks" / names[i]).convert("L").resize((w, h), Image.NEAREST)
        Image.fromarray(np.where(np.asarray(mask) > 0, 255, 0).astype(np.uint8)).save(
            dest / "masks" / f"case_{i:04d}_0.png", compress_level=1)
    for i in range(distinct, n):
        for sub in ("images", "masks"):
            os.link(dest / sub / f"case_{i % distinct:04d}_0.png", dest / sub / f"case_{i:04d}_0.png")
    return time.perf_counter() - start


# ------------------------------------------------------------------------------------------------ children


def child_old(data, size, epochs, **_):
    import tensorflow  # noqa: F401 (training imports it anyway: the same base as the other children)

    from lung_keras import data as lk_data

    start = time.perf_counter()
    dataset = lk_data.load_dataset(data)
    x, y = lk_data.load_arrays(dataset.samples, (size, size))
    first = time.perf_counter() - start
    rng = np.random.default_rng(0)
    rates = []
    for _ in range(epochs):
        t = time.perf_counter()
        order = rng.permutation(len(x))
        for i in range(0, len(order), 8):
            idx = np.sort(order[i : i + 8])
            xb, yb = x[idx], y[idx]
        rates.append(len(x) / (time.perf_counter() - t))
    return {"n": len(x), "first_pass_s": first, "cached_epoch_images_per_s": statistics.median(rates),
            "source": lk_data.__file__}


def child_new(data, size, epochs, workers, cache_dir, **_):
    from lung_keras import data as lk_data

    start = time.perf_counter()
    store = lk_data.build_store(data, (size, size), cache="auto", cache_dir=cache_dir, workers=workers)
    decoded = time.perf_counter() - start
    ds = store.tf_dataset(batch_size=8, shuffle=True, seed=0)
    times = []
    for _ in range(epochs + 1):
        t = time.perf_counter()
        n = sum(int(b[0].shape[0]) for b in ds)
        times.append(time.perf_counter() - t)
    return {"n": n, "mode": "disk" if store.location else "memory", "decode_pass_s": decoded,
            "first_pass_s": decoded, "first_epoch_s": decoded + times[0],
            "cached_epoch_images_per_s": statistics.median(n / t for t in times[1:]), "workers": workers}


def child_base(size, **_):
    import tensorflow  # noqa: F401

    import lung_keras.data  # noqa: F401
    from lung_keras.models import unet

    unet((size, size, 1))
    return {}


def child_step(size, steps, **_):
    import keras

    from lung_keras.losses import BceDiceLoss
    from lung_keras.models import unet

    model = unet((size, size, 1))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=BceDiceLoss())
    rng = np.random.default_rng(0)
    x = rng.random((8, size, size, 1), dtype=np.float32)
    y = (x > 0.5).astype(np.float32)
    model.train_on_batch(x, y)  # trace and warm up
    model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - t)
    return {"step_s": statistics.median(times), "images_per_s": 8 / statistics.median(times)}


CHILDREN = {"old": child_old, "new": child_new, "base": child_base, "step": child_step}


def run_child(kind, pythonpath=None, **kwargs):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    proc = subprocess.run([sys.executable, __file__, "--child", kind, "--child-args", json.dumps(kwargs)],
                          capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="pairs at native size")
    p.add_argument("--old-n", type=int, help="pairs the old loader runs on (default: --n)")
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 256])
    p.add_argument("--source", default=str(REPO.parent / "shared" / "data" / "montgomery_cxr"))
    p.add_argument("--workdir", help="where the dataset and caches go (default: a temporary folder, removed)")
    p.add_argument("--workers", type=int, default=None, help="decoding threads of the new loader (default: cores)")
    p.add_argument("--epochs", type=int, default=3, help="cached epochs timed (median)")
    p.add_argument("--steps", type=int, default=10, help="training steps timed (median)")
    p.add_argument("--old-rev", default="9327801",
                   help="git revision whose loader is 'old' (default: the last commit before issue 11); "
                        "'current' runs this checkout's load_dataset + load_arrays instead")
    p.add_argument("--child")
    p.add_argument("--child-args")
    args = p.parse_args(argv)
    if args.child:
        result = CHILDREN[args.child](**json.loads(args.child_args))
        result["peak_rss_mb"] = _peak_rss_mb()
        print(json.dumps(result))
        return 0

    from lung_keras.data.store import default_workers

    workers = args.workers or default_workers()
    work = pathlib.Path(args.workdir) if args.workdir else pathlib.Path(tempfile.mkdtemp(prefix="lk-input-"))
    old_n = args.old_n or args.n
    try:
        work.mkdir(parents=True, exist_ok=True)
        data = dataset_folder(work, pathlib.Path(args.source), args.n)
        old_data = dataset_folder(work, pathlib.Path(args.source), old_n) if old_n != args.n else data
        old_src = None
        if args.old_rev != "current":
            old_src = work / "old-src"
            if not old_src.is_dir():
                subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(old_src), args.old_rev],
                               check=True, capture_output=True)
        rows = []
        for size in args.sizes:
            cache_dir = work / f"cache-{size}"
            shutil.rmtree(cache_dir, ignore_errors=True)
            common = {"data": str(data), "size": size, "epochs": args.epochs, "workers": workers,
                      "cache_dir": str(cache_dir), "steps": args.steps}
            row = {"size": size, "n": args.n, "old_n": old_n}
            for kind in ("base", "step", "new", "old"):
                kwargs = {**common, "data": str(old_data)} if kind == "old" else common
                row[kind] = run_child(kind, pythonpath=old_src if kind == "old" else None, **kwargs)
                print(json.dumps({"size": size, kind: row[kind]}), flush=True)
            rows.append(row)
        print()
        print(f"{args.n} pairs at {NATIVE[1]}x{NATIVE[0]}, {workers} decoding threads, {os.cpu_count()} CPUs; "
              f"old loader: {args.old_rev}")
        print("| size | loader | first pass (s) | pairs/s | first epoch (s) | cached epoch (images/s) | "
              "x CPU step | peak RSS (MB) | above base (MB) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for row in rows:
            base_mb, step_rate = row["base"]["peak_rss_mb"], row["step"]["images_per_s"]
            for kind in ("old", "new"):
                r = row[kind]
                first_epoch = r.get("first_epoch_s", r["first_pass_s"] + r["n"] / r["cached_epoch_images_per_s"])
                label = f"old (n={r['n']})" if kind == "old" else f"new ({r['mode']}, n={r['n']})"
                print(f"| {row['size']} | {label} | {r['first_pass_s']:.1f} | {r['n'] / r['first_pass_s']:.2f} | "
                      f"{first_epoch:.1f} | {r['cached_epoch_images_per_s']:.0f} | "
                      f"{r['cached_epoch_images_per_s'] / step_rate:.0f}x | {r['peak_rss_mb']:.0f} | "
                      f"{r['peak_rss_mb'] - base_mb:.0f} |")
            per_pair = (row["old"]["first_pass_s"] / row["old"]["n"]) / (row["new"]["first_pass_s"] / row["new"]["n"])
            print(f"| {row['size']} | first pass per pair, new vs old | {per_pair:.2f}x faster | | | CPU step: "
                  f"{step_rate:.1f} images/s | | base: {base_mb:.0f} MB | |")
    finally:
        if (work / "old-src").is_dir() and not args.workdir:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(work / "old-src")],
                           capture_output=True)
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
