"""Default data: find it, or download the Montgomery set from NLM on first use and convert it.

Resolution order for the data folder: an explicit argument (`--data DIR`), else the `LUNG_KERAS_DATA`
environment variable, else `<cache>/lung_keras/montgomery` (cache = `LUNG_KERAS_CACHE`, `XDG_CACHE_HOME` or
`~/.cache`), downloaded there on first use. Offline users download the archive elsewhere, unzip it and set
`LUNG_KERAS_DATA` to the folder (NLM layout or `images/` + `masks/`).
"""

import csv
import os
import pathlib
import shutil
import sys
import tempfile
import urllib.request
import zipfile

import numpy as np
from PIL import Image

from lung_keras.data.preprocess import read_masks
from lung_keras.data.sources import find_pairs

MONTGOMERY_URL = "http://openi.nlm.nih.gov/imgs/collections/NLM-MontgomeryCXRSet.zip"
MONTGOMERY_COUNT = 138


def cache_dir():
    base = os.environ.get("LUNG_KERAS_CACHE") or os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return pathlib.Path(base).expanduser() / "lung_keras"


def resolve_data_dir(data=None, download=True, progress=True):
    """Return the dataset folder to use: `data`, else `$LUNG_KERAS_DATA`, else the cached Montgomery set.

    Downloads the Montgomery set into the cache when nothing else is given and it is not there yet.
    """
    if data:
        return pathlib.Path(data)
    env = os.environ.get("LUNG_KERAS_DATA")
    if env:
        return pathlib.Path(env)
    target = cache_dir() / "montgomery"
    if (target / "images").is_dir():
        return target
    if not download:
        raise FileNotFoundError(
            f"No data given and {target} does not exist. Pass --data DIR or set LUNG_KERAS_DATA=/path/to/folder."
        )
    return download_montgomery(target, progress=progress)


def _progress(done, total, stream):
    if total:
        width = 30
        filled = int(width * done / total)
        stream.write(f"\r[{'=' * filled}{'.' * (width - filled)}] {done / 1e6:6.1f}/{total / 1e6:.1f} MB")
    else:
        stream.write(f"\r{done / 1e6:6.1f} MB")
    stream.flush()


def fetch(url, dest, progress=True, chunk_size=1 << 20):
    """Download `url` to `dest` through a `.part` file (renamed only when complete), with a progress bar."""
    dest = pathlib.Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    stream = sys.stderr
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while True:
                chunk = response.read(chunk_size)
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                if progress:
                    _progress(done, total, stream)
        if progress:
            stream.write("\n")
        if total and done != total:
            raise OSError(f"Download of {url} stopped at {done} of {total} bytes")
    except Exception:
        part.unlink(missing_ok=True)
        raise
    part.replace(dest)
    return dest


def verify_nlm_layout(root, expected_count=MONTGOMERY_COUNT):
    """Check an unpacked NLM archive: `expected_count` images, each with a left and a right mask."""
    listing = find_pairs(root)
    problems = []
    if listing.layout != "nlm":
        problems.append(f"{root}: not in the NLM layout (CXR_png/, ManualMask/leftMask/, ManualMask/rightMask/)")
    problems += [f"{p}: image without left and right mask" for p in listing.images_without_mask]
    problems += [f"{p}: mask without image" for p in listing.masks_without_image]
    if expected_count is not None and len(listing.samples) != expected_count:
        problems.append(f"{root}: expected {expected_count} image/mask sets, found {len(listing.samples)}")
    if problems:
        raise ValueError("Downloaded archive failed verification:\n  " + "\n  ".join(problems))
    return listing


def convert_nlm(root, out_dir):
    """Convert an NLM-layout folder to `images/` + `masks/` (left and right merged, 0/255) + `manifest.csv`."""
    listing = find_pairs(root)
    out_dir = pathlib.Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    rows = []
    for sample in listing.samples:
        shutil.copyfile(sample.image_path, out_dir / "images" / f"{sample.id}.png")
        merged = read_masks(sample.mask_paths)
        Image.fromarray((merged * 255).astype(np.uint8)).save(out_dir / "masks" / f"{sample.id}.png")
        h, w = merged.shape
        rows.append({"id": sample.id, "diagnosis": sample.diagnosis, "source_width": w, "source_height": h})
    with open(out_dir / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "diagnosis", "source_width", "source_height"])
        writer.writeheader()
        writer.writerows(rows)
    return out_dir


def download_montgomery(dest=None, url=None, expected_count=MONTGOMERY_COUNT, progress=True):
    """Download the NLM Montgomery archive, verify its structure and convert it into `dest`.

    Nothing is written to `dest` unless every step succeeds (work happens in a temporary folder beside it).

    Args:
        dest: target folder (default `<cache>/lung_keras/montgomery`); must not exist yet.
        url: archive URL (default `$LUNG_KERAS_MONTGOMERY_URL` or NLM's public archive).
        expected_count: number of image sets the archive must hold (138 for Montgomery).
    """
    dest = pathlib.Path(dest) if dest else cache_dir() / "montgomery"
    url = url or os.environ.get("LUNG_KERAS_MONTGOMERY_URL") or MONTGOMERY_URL
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} already exists and is not empty; remove it or point LUNG_KERAS_DATA at it.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".download-") as tmp:
        tmp = pathlib.Path(tmp)
        if progress:
            print(f"Downloading the Montgomery chest X-ray set from {url}", file=sys.stderr)
        archive = fetch(url, tmp / "archive.zip", progress=progress)
        try:
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    target = (tmp / "unpacked" / name).resolve()
                    if not str(target).startswith(str((tmp / "unpacked").resolve())):
                        raise ValueError(f"{url}: archive entry escapes the folder: {name}")
                zf.extractall(tmp / "unpacked")
        except zipfile.BadZipFile as error:
            raise ValueError(f"{url}: not a valid zip archive ({error})") from error
        verify_nlm_layout(tmp / "unpacked", expected_count)
        convert_nlm(tmp / "unpacked", tmp / "converted")
        if dest.exists():
            dest.rmdir()
        (tmp / "converted").rename(dest)
    return dest
