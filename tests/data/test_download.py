"""The downloader against a local HTTP server serving an NLM-layout zip built from the shared data."""

import functools
import http.server
import threading
import zipfile

import numpy as np
import pytest
from PIL import Image

from lung_keras import data


def _nlm_zip(montgomery_dir, path, ids, drop_right_mask_of=None):
    """Rebuild the NLM archive layout: CXR_png/ + ManualMask/{left,right}Mask/ (mask split at the midline)."""
    with zipfile.ZipFile(path, "w") as zf:
        for i in ids:
            zf.write(montgomery_dir / "images" / f"{i}.png", f"MontgomerySet/CXR_png/{i}.png")
            mask = np.asarray(Image.open(montgomery_dir / "masks" / f"{i}.png"))
            half = mask.shape[1] // 2
            left, right = mask.copy(), mask.copy()
            left[:, half:] = 0
            right[:, :half] = 0
            for name, part in (("leftMask", left), ("rightMask", right)):
                if name == "rightMask" and i == drop_right_mask_of:
                    continue
                buf = path.parent / f"{name}_{i}.png"
                Image.fromarray(part).save(buf)
                zf.write(buf, f"MontgomerySet/ManualMask/{name}/{i}.png")
    return path


@pytest.fixture
def http_root(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_download_verify_convert(montgomery_dir, http_root, tmp_path, capfd):
    served, base = http_root
    ids = sorted(p.stem for p in (montgomery_dir / "images").glob("*.png"))
    _nlm_zip(montgomery_dir, served / "NLM-MontgomeryCXRSet.zip", ids)
    dest = tmp_path / "cache" / "montgomery"
    out = data.download_montgomery(dest, url=f"{base}/NLM-MontgomeryCXRSet.zip")
    assert out == dest
    assert "MB" in capfd.readouterr().err  # progress bar
    ds = data.load_dataset(dest)
    assert len(ds) == 138
    assert sum(s.diagnosis == "normal" for s in ds.samples) == 80
    # Left + right merged back equals the original union mask.
    for i in ("MCUCXR_0001_0", ids[-1]):
        got = np.asarray(Image.open(dest / "masks" / f"{i}.png"))
        want = np.asarray(Image.open(montgomery_dir / "masks" / f"{i}.png"))
        np.testing.assert_array_equal(got, want)


def test_resolve_prefers_env_then_cache(montgomery_dir, http_root, tmp_path, monkeypatch):
    served, base = http_root
    monkeypatch.setenv("LUNG_KERAS_DATA", str(montgomery_dir))
    assert data.resolve_data_dir() == montgomery_dir
    assert data.resolve_data_dir(str(tmp_path)) == tmp_path
    monkeypatch.delenv("LUNG_KERAS_DATA")
    monkeypatch.setenv("LUNG_KERAS_CACHE", str(tmp_path / "cache"))
    ids = sorted(p.stem for p in (montgomery_dir / "images").glob("*.png"))
    _nlm_zip(montgomery_dir, served / "set.zip", ids)
    monkeypatch.setenv("LUNG_KERAS_MONTGOMERY_URL", f"{base}/set.zip")
    path = data.resolve_data_dir(progress=False)
    assert path == tmp_path / "cache" / "lung_keras" / "montgomery"
    assert len(list((path / "images").glob("*.png"))) == 138
    # Second call uses the cache (the server no longer has the file).
    (served / "set.zip").unlink()
    assert data.resolve_data_dir(progress=False) == path


def test_incomplete_archive_is_rejected_and_nothing_written(montgomery_dir, http_root, tmp_path):
    served, base = http_root
    ids = sorted(p.stem for p in (montgomery_dir / "images").glob("*.png"))[:5]
    _nlm_zip(montgomery_dir, served / "bad.zip", ids, drop_right_mask_of=ids[2])
    dest = tmp_path / "dest"
    with pytest.raises(ValueError) as info:
        data.download_montgomery(dest, url=f"{base}/bad.zip", expected_count=5, progress=False)
    assert f"{ids[2]}.png: image without left and right mask" in str(info.value)
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".download")] == []


def test_missing_url_and_bad_zip(http_root, tmp_path):
    served, base = http_root
    (served / "junk.zip").write_bytes(b"this is not a zip")
    with pytest.raises(ValueError, match="not a valid zip"):
        data.download_montgomery(tmp_path / "a", url=f"{base}/junk.zip", progress=False)
    with pytest.raises(OSError):
        data.download_montgomery(tmp_path / "b", url=f"{base}/absent.zip", progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
