"""Decode a dataset once, check it on the way, and keep it at the training size: in memory or in a disk cache.

`build_store` is the loader behind `train`, `evaluate` and `compare`. It replaces "check every file, then decode
it again to load it" by one pass:

1. The folder is paired (`find_pairs`: cheap, no pixel decoded).
2. Every pair is decoded once, in parallel threads (Pillow and numpy release the GIL while they decode and
   resize), checked by `data check`'s rules (`check_sample`: same problems, same messages) and resized to the
   training size. Only the resized arrays are kept: at most `workers` full-resolution images are in memory.
3. The result is an `ArrayStore`: every valid pair at one size, held in RAM (`cache="memory"`) or written to a
   cache folder (`cache="disk"`) keyed by the files (paths, sizes, modification times), the size, the channels,
   the mask threshold and the reading rules' version. A second run on the same data reads the cache instead of
   decoding anything; a changed file changes the key.

An `ArrayStore` feeds training as numpy arrays (`arrays`), a `tf.data` pipeline (`tf_dataset`, TensorFlow) or a
`keras.utils.PyDataset` (`py_dataset`, every backend). Disk stores read rows with positioned reads (`os.pread`),
not a memory map, so a large cache never shows up as resident memory of the training process.

One module, a little over 500 lines: decoding, checking, the cache file format and the feeds share the cache
key and the row layout, and splitting them would spread that format over several files.
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import tempfile
import time
import warnings

import numpy as np

from lung_keras.data.checks import DataReport
from lung_keras.data.checks import DatasetError
from lung_keras.data.checks import Problem
from lung_keras.data.checks import check_sample
from lung_keras.data.checks import pairing_problems
from lung_keras.data.preprocess import check_binarize_threshold
from lung_keras.data.preprocess import image_from_array
from lung_keras.data.preprocess import resize_pair
from lung_keras.data.sources import find_pairs

#: Bump when the reading rules (intensity, mask, resizing) change what a file decodes to: old caches are ignored.
CACHE_VERSION = 1
CACHES = ("auto", "memory", "disk")
#: `cache="auto"` keeps a set in memory up to this many bytes at the training size, and uses the disk above it.
AUTO_DISK_BYTES = 1 << 30


def default_cache_dir():
    """`$LUNG_KERAS_CACHE/arrays`, else `~/.cache/lung_keras/arrays`."""
    base = os.environ.get("LUNG_KERAS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "lung_keras")
    return pathlib.Path(base) / "arrays"


def default_workers():
    """Decoding threads: one per CPU core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_HEADER_BYTES = 256  # fixed, so the row count can be rewritten in place once the pass knows it


def _npy_header(shape, dtype):
    """An `.npy` (format 1.0) header padded to `_HEADER_BYTES`, readable by `np.load`."""
    fields = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": tuple(int(v) for v in shape)}
    text = repr(fields).encode("latin1")
    prefix = b"\x93NUMPY\x01\x00"
    length = _HEADER_BYTES - len(prefix) - 2
    if len(text) + 1 > length:
        raise ValueError(f"array header too long for shape {shape}")
    return prefix + length.to_bytes(2, "little") + text + b" " * (length - len(text) - 1) + b"\n"


class _RowFile:
    """Rows of an `.npy` file read by positioned reads (no memory map, no resident pages)."""

    def __init__(self, path):
        self.path = pathlib.Path(path)
        with open(self.path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else (
                np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
            self.offset = f.tell()
        if fortran:
            raise ValueError(f"{self.path}: cache file is not C-ordered; delete the cache folder")
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        if os.path.getsize(self.path) < self.offset + self.shape[0] * self.row_bytes:
            raise ValueError(f"{self.path}: cache file is truncated; delete the cache folder")
        self._fd = None

    def _descriptor(self):
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        return self._fd

    def read(self, rows):
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((len(rows), *self.shape[1:]), self.dtype)
        flat = out.reshape(len(rows), -1).view(np.uint8)
        fd = self._descriptor()
        for i, row in enumerate(rows):
            data = os.pread(fd, self.row_bytes, self.offset + int(row) * self.row_bytes)
            if len(data) != self.row_bytes:
                raise ValueError(f"{self.path}: cache file is truncated (row {row}); delete the cache folder")
            flat[i] = np.frombuffer(data, np.uint8)
        return out

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __getstate__(self):  # picklable for multiprocessing data loaders: reopened in the child
        state = dict(self.__dict__)
        state["_fd"] = None
        return state

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass


class _RowWriter:
    """Writes an `.npy` file row by row without holding it in memory; `close` sets the final row count."""

    def __init__(self, path, shape, dtype):
        self.path = pathlib.Path(path)
        self.shape, self.dtype = tuple(int(v) for v in shape), np.dtype(dtype)
        self.file = open(self.path, "wb")
        self.file.write(_npy_header(self.shape, self.dtype))
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def write(self, row, array):
        self.file.seek(_HEADER_BYTES + row * self.row_bytes)
        self.file.write(np.ascontiguousarray(array, dtype=self.dtype).tobytes())

    def close(self, rows):
        self.file.truncate(_HEADER_BYTES + rows * self.row_bytes)
        self.file.seek(0)
        self.file.write(_npy_header((rows, *self.shape[1:]), self.dtype))
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()

    def abort(self):
        if not self.file.closed:
            self.file.close()


@dataclasses.dataclass
class ArrayStore:
    """Every valid pair of a dataset folder at one size (see `build_store`).

    Attributes:
        root: the dataset folder.
        samples: the valid `Sample`s, in id order (row `i` holds `samples[i]`).
        report: the `DataReport` of the pass (the problems `lung-keras data check` lists).
        image_size: `(height, width)` of every row.
        channels: image channels.
        location: the cache folder of a disk store, None in memory.
        seconds: time the decoding pass took (0 when read from the cache).
        from_cache: whether the rows were read from an existing cache.
    """

    root: pathlib.Path
    samples: list
    report: object
    image_size: tuple
    channels: int
    images: object  # np.ndarray (memory) or _RowFile (disk)
    masks: object
    location: pathlib.Path = None
    seconds: float = 0.0
    from_cache: bool = False

    def __post_init__(self):
        self._rows = {s.id: i for i, s in enumerate(self.samples)}

    def __len__(self):
        return len(self.samples)

    @property
    def ids(self):
        return [s.id for s in self.samples]

    @property
    def dataset(self):
        """The valid samples as a `lung_keras.data.Dataset` (for `split_dataset` and friends)."""
        from lung_keras.data.dataset import Dataset

        return Dataset(self.root, list(self.samples), self.report)

    @property
    def nbytes(self):
        """Bytes of the arrays as delivered (float32 images and masks)."""
        h, w = self.image_size
        return len(self) * h * w * (self.channels + 1) * 4

    def rows(self, samples):
        """Row numbers of `samples` (or ids) in this store."""
        try:
            return np.array([self._rows[getattr(s, "id", s)] for s in samples], dtype=np.int64)
        except KeyError as error:
            raise KeyError(f"Sample {error.args[0]!r} is not in this store ({self.root}).") from None

    def read_rows(self, rows):
        """`(images float32 NxHxWxC in [0, 1], masks float32 NxHxWx1 in {0, 1})` of row numbers."""
        rows = np.asarray(rows, dtype=np.int64)
        if isinstance(self.images, np.ndarray):
            images, masks = self.images[rows], self.masks[rows]
        else:
            images, masks = self.images.read(rows), self.masks.read(rows)
        return images.astype(np.float32, copy=False), masks.astype(np.float32)

    def arrays(self, samples=None):
        """`(images, masks)` of `samples` (default: all) as numpy arrays: what `load_arrays` returns for them."""
        samples = self.samples if samples is None else list(samples)
        if not samples:
            raise ValueError("No samples to load: the list of samples is empty (an empty split or filter?).")
        return self.read_rows(self.rows(samples))

    def iter_arrays(self, samples=None, chunk=64):
        """`(samples, images, masks)` in chunks of `chunk` pairs, so a large split never sits in memory whole."""
        samples = self.samples if samples is None else list(samples)
        for start in range(0, len(samples), chunk):
            part = samples[start : start + chunk]
            yield (part, *self.read_rows(self.rows(part)))

    def tf_dataset(self, samples=None, batch_size=8, shuffle=False, seed=0, repeat=1, map_fn=None):
        """A `tf.data` pipeline of `(images, masks)` batches of `samples` (TensorFlow backend).

        Rows are read per batch in parallel (`num_parallel_calls=AUTOTUNE`) and prefetched; a seeded shuffle of
        the row order is redrawn every epoch. `repeat` repeats the rows that many times per epoch (small sets);
        `map_fn(images, masks)` runs on every batch, one batch after the other (e.g. augmentation in the pipeline:
        its seeded draws then come in the same order every run).
        """
        import tensorflow as tf

        rows = np.tile(self.rows(self.samples if samples is None else samples), int(repeat))
        h, w = self.image_size

        def read(index):
            return self.read_rows(rows[index])

        def load(index):
            images, masks = tf.numpy_function(read, [index], (tf.float32, tf.float32), stateful=False)
            images.set_shape((None, h, w, self.channels))
            masks.set_shape((None, h, w, 1))
            return images, masks

        ds = tf.data.Dataset.range(len(rows))
        if shuffle:
            ds = ds.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if map_fn is not None:  # one batch at a time: a seeded augmentation draws in a reproducible order
            ds = ds.map(map_fn)
        return ds.prefetch(tf.data.AUTOTUNE)

    def py_dataset(self, samples=None, batch_size=8, shuffle=False, seed=0, repeat=1, drop_remainder=False,
                   multiple=1):
        """A `keras.utils.PyDataset` of `(images, masks)` batches of `samples` (every backend), reshuffled
        (seeded) after every epoch when `shuffle`.

        `multiple`: make every batch size a multiple of this (a data-parallel mesh needs batches that divide
        among its devices): a short last batch is topped up with the first rows of the epoch's order.
        """
        rows = np.tile(self.rows(self.samples if samples is None else samples), int(repeat))
        return _StoreBatches(self, rows, batch_size, shuffle, seed, drop_remainder, multiple)

    def close(self):
        for part in (self.images, self.masks):
            if isinstance(part, _RowFile):
                part.close()


def _py_dataset_class():
    import keras

    class StoreBatches(keras.utils.PyDataset):
        def __init__(self, store, rows, batch_size, shuffle, seed, drop_remainder, multiple=1):
            super().__init__()
            self.multiple = max(1, int(multiple))
            self.store, self.rows, self.batch_size = store, np.asarray(rows), int(batch_size)
            self.shuffle, self.drop_remainder = shuffle, drop_remainder
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(self.rows)) if shuffle else np.arange(len(self.rows))

        def __len__(self):
            n = len(self.rows) / self.batch_size
            return int(n) if self.drop_remainder else int(np.ceil(n))

        def __getitem__(self, index):
            part = self.order[index * self.batch_size : (index + 1) * self.batch_size]
            short = -len(part) % self.multiple
            if short:
                part = np.concatenate([part, np.resize(self.order, short)])
            return self.store.read_rows(self.rows[part])

        def on_epoch_end(self):
            if self.shuffle:
                self.order = self.rng.permutation(len(self.rows))

    return StoreBatches


def _StoreBatches(*args):  # noqa: N802 (a class built lazily so this module imports without Keras)
    return _py_dataset_class()(*args)


def _file_stamp(path):
    stat = os.stat(path)
    return [str(path), stat.st_size, stat.st_mtime_ns]


def cache_key(samples, image_size, channels, binarize_threshold):
    """The cache key: the files (paths, sizes, modification times), size, channels, threshold, rules version."""
    record = {
        "version": CACHE_VERSION,
        "size": [int(v) for v in image_size],
        "channels": int(channels),
        "binarize_threshold": binarize_threshold,
        "samples": [[s.id, s.diagnosis, _file_stamp(s.image_path), [_file_stamp(p) for p in s.mask_paths]]
                    for s in samples],
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:24]


def _decode(sample, image_size, channels):
    raw, mask, problems = check_sample(sample, getattr(sample, "binarize_threshold", None))
    if raw is None:
        return None, None, problems
    image = image_from_array(raw, channels, sample.image_path, warn=False)  # a "12-bit image" problem says it
    image, mask = resize_pair(image, mask, image_size)
    return image, mask.astype(np.uint8), problems


def _decode_all(samples, image_size, channels, workers, sink):
    """Decode `samples` in `workers` threads; `sink(i, image, mask)` gets the valid ones in order.
    Returns the problems per sample."""
    problems = [None] * len(samples)
    window = max(1, int(workers)) * 2  # bounded: at most this many decoded pairs wait to be written

    def job(i):
        return _decode(samples[i], image_size, channels)

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
        pending = {}
        nxt = 0
        for i in range(len(samples)):
            pending[i] = pool.submit(job, i)
            while len(pending) >= window or (i == len(samples) - 1 and pending):
                image, mask, found = pending.pop(nxt).result()
                problems[nxt] = found
                if image is not None:
                    sink(nxt, image, mask)
                nxt += 1
    return problems


def _report(listing, samples, per_sample, valid):
    problems = pairing_problems(listing)
    for found in per_sample:
        problems += found or []
    return DataReport(listing.root, listing.layout, len(samples), problems, valid)


def _raise_or_warn(report, skip_invalid):
    if report.fatal:
        if not skip_invalid:
            raise DatasetError(report)
        warnings.warn(
            f"Skipping {len(report.fatal)} problem(s) in {report.root}:\n" + "\n".join(f"  {p}" for p in report.fatal),
            stacklevel=3,
        )
    if not report.valid_samples:
        raise DatasetError(report) if report.fatal else ValueError(f"No image/mask pairs found in {report.root}")
    twelve = [p.path for p in report.problems if p.kind == "12-bit image"]
    if twelve:
        warnings.warn(
            f"{len(twelve)} 16-bit image(s) with maximum <= 4095 look like 12-bit data and are scaled by 1/4095 "
            f"(first: {twelve[0]}).",
            stacklevel=3,
        )


def resolve_cache(cache, samples, image_size, channels):
    """`"memory"` or `"disk"` for `cache` (`"auto"`: disk when the arrays would pass `AUTO_DISK_BYTES`)."""
    if cache not in CACHES:
        raise ValueError(f"`cache` must be one of {CACHES}. Received: cache={cache!r}")
    if cache != "auto":
        return cache
    h, w = image_size
    return "disk" if len(samples) * h * w * (channels + 1) * 4 > AUTO_DISK_BYTES else "memory"


def build_store(data, image_size, channels=1, cache="memory", cache_dir=None, workers=None, skip_invalid=False,
                binarize_threshold=None, verbose=0):
    """Decode every pair of a dataset once (in parallel, checked on the way) into an `ArrayStore`.

    Args:
        data: a dataset folder (NLM or folder layout), a `Dataset`, or a list of `Sample`s.
        image_size: `(height, width)` (or an int) every pair is resized to.
        channels: 1 or 3.
        cache: `"memory"` (arrays in RAM), `"disk"` (a cache folder under `cache_dir`, reused by later runs on
            the same files), or `"auto"` (disk above `AUTO_DISK_BYTES` of arrays).
        cache_dir: parent folder of disk caches (default `default_cache_dir()`).
        workers: decoding threads (default: the CPU cores available).
        skip_invalid: leave out pairs with fatal problems, with a warning listing them, instead of raising.
        binarize_threshold: how soft masks are binarized (see `read_mask`); ignored for `Sample`s that carry
            their own.
        verbose: 1 prints one line saying what was decoded or read, and how long it took.

    Returns:
        An `ArrayStore`.

    Raises:
        DatasetError: listing every problem (the `lung-keras data check` report) when pairs have fatal problems
            and `skip_invalid` is False. Nothing is written to the cache then.
    """
    from lung_keras.data.dataset import Dataset

    binarize_threshold = check_binarize_threshold(binarize_threshold)
    image_size = (int(image_size), int(image_size)) if np.isscalar(image_size) else tuple(int(v) for v in image_size)
    if channels not in (1, 3):
        raise ValueError(f"`channels` must be 1 or 3. Received: channels={channels!r}")
    if isinstance(data, (str, pathlib.Path)):
        listing = find_pairs(data)
        samples = [dataclasses.replace(s, binarize_threshold=binarize_threshold) for s in listing.samples]
        root = listing.root
    else:
        samples = list(data.samples if isinstance(data, Dataset) else data)
        root = getattr(data, "root", None) or (pathlib.Path(samples[0].image_path).parent if samples else None)
        listing = _EmptyListing(root, getattr(getattr(data, "report", None), "layout", "given"))
        if binarize_threshold is not None:  # samples without their own threshold take the one given
            samples = [s if getattr(s, "binarize_threshold", None) is not None
                       else dataclasses.replace(s, binarize_threshold=binarize_threshold) for s in samples]
    samples = sorted(samples, key=lambda s: s.id)
    thresholds = {getattr(s, "binarize_threshold", None) for s in samples}
    mode = resolve_cache(cache, samples, image_size, channels)
    workers = default_workers() if workers is None else int(workers)
    start = time.perf_counter()

    location = None
    if mode == "disk":
        location = pathlib.Path(cache_dir or default_cache_dir()) / cache_key(
            samples, image_size, channels, sorted(thresholds, key=str))
        store = _read_cache(location, root, samples, listing, image_size, channels)
        if store is not None:
            _raise_or_warn(store.report, skip_invalid)
            if verbose:
                print(f"Read {len(store)} pairs at {image_size[0]}x{image_size[1]} from the cache {location}")
            return store

    h, w = image_size
    shape_images, shape_masks = (len(samples), h, w, channels), (len(samples), h, w, 1)
    valid_rows = []
    if mode == "memory":
        images = np.empty(shape_images, np.float32)
        masks = np.empty(shape_masks, np.uint8)

        def sink(i, image, mask):
            images[len(valid_rows)], masks[len(valid_rows)] = image, mask
            valid_rows.append(i)

        per_sample = _decode_all(samples, image_size, channels, workers, sink)
        report = _report(listing, samples, per_sample, [samples[i] for i in valid_rows])
        _raise_or_warn(report, skip_invalid)
        n = len(valid_rows)
        images, masks = (images[:n], masks[:n]) if n < len(samples) else (images, masks)
    else:
        location.parent.mkdir(parents=True, exist_ok=True)
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{location.name}.tmp-", dir=location.parent))
        try:
            image_writer = _RowWriter(tmp / "images.npy", shape_images, np.float32)
            mask_writer = _RowWriter(tmp / "masks.npy", shape_masks, np.uint8)

            def sink(i, image, mask):
                image_writer.write(len(valid_rows), image)
                mask_writer.write(len(valid_rows), mask)
                valid_rows.append(i)

            per_sample = _decode_all(samples, image_size, channels, workers, sink)
            image_writer.close(len(valid_rows))
            mask_writer.close(len(valid_rows))
            report = _report(listing, samples, per_sample, [samples[i] for i in valid_rows])
            _raise_or_warn(report, skip_invalid)
            index = {"version": CACHE_VERSION, "root": str(root), "image_size": list(image_size), "channels": channels,
                     "rows": [samples[i].id for i in valid_rows],
                     "problems": [dataclasses.asdict(p) for p in report.problems],
                     "num_samples": len(samples), "layout": listing.layout}
            (tmp / "index.json").write_text(json.dumps(index, indent=1))
            _publish(tmp, location)
        except BaseException:
            for writer in ("image_writer", "mask_writer"):
                if writer in locals():
                    locals()[writer].abort()
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        images, masks = _RowFile(location / "images.npy"), _RowFile(location / "masks.npy")
    seconds = time.perf_counter() - start
    if verbose:
        where = f"the cache {location}" if location else "memory"
        print(f"Decoded {len(samples)} pairs at {h}x{w} in {seconds:.1f} s ({workers} threads) into {where}")
    return ArrayStore(root, [samples[i] for i in valid_rows], report, image_size, channels, images, masks,
                      location, seconds, False)


@dataclasses.dataclass
class _EmptyListing:
    """The listing of an already paired set of samples (no pairing problems to report)."""

    root: pathlib.Path
    layout: str
    duplicate_stems: tuple = ()
    images_without_mask: tuple = ()
    masks_without_image: tuple = ()


def _publish(tmp, location):
    """Move a finished cache folder into place atomically. When another process (a second worker of a multi-worker
    run, sharing the cache folder) published the same key first, its folder is kept and ours is dropped: same
    files, same key, same arrays."""
    try:
        os.replace(tmp, location)
    except OSError:
        if not (location / "index.json").is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _read_cache(location, root, samples, listing, image_size, channels):
    """The store of an existing cache folder, or None when there is none (or it is unreadable)."""
    index_path = location / "index.json"
    if not index_path.is_file():
        return None
    try:
        index = json.loads(index_path.read_text())
        by_id = {s.id: s for s in samples}
        valid = [by_id[i] for i in index["rows"]]
        images, masks = _RowFile(location / "images.npy"), _RowFile(location / "masks.npy")
        h, w = image_size
        if images.shape != (len(valid), h, w, channels) or masks.shape != (len(valid), h, w, 1):
            raise ValueError("shape")
    except (ValueError, KeyError, OSError, TypeError) as error:
        warnings.warn(f"Ignoring the unreadable cache {location} ({error}); decoding again.", stacklevel=3)
        shutil.rmtree(location, ignore_errors=True)
        return None
    problems = [Problem(**p) for p in index["problems"]]
    report = DataReport(listing.root, listing.layout, len(samples), problems, valid)
    return ArrayStore(root, valid, report, tuple(image_size), channels, images, masks, location, 0.0, True)
