"""Atomic file writes: a file the package writes is either the old one or the complete new one, never a
half-written one (write to a temporary file in the same folder, flush, fsync, `os.replace`)."""

import contextlib
import csv
import io
import os
import pathlib


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path` (same suffix, so writers that check it accept it); on success it
    replaces `path` in one step, on failure it is removed and `path` is left as it was."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base, dot, rest = path.name.partition(".")
    # Keep every suffix (".weights.h5", ".keras"): some writers check the full one.
    tmp = path.with_name(f".{base}.tmp-{os.getpid()}{dot}{rest}")
    try:
        yield tmp
        if tmp.is_file():
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path, text, encoding="utf-8"):
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding=encoding, newline="") as f:
            f.write(text)


def write_csv(path, rows, fieldnames=None, lineterminator="\r\n"):
    """Write dict `rows` as CSV (header from `fieldnames`, else the first row's keys) to `path` atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fieldnames or rows[0]), lineterminator=lineterminator)
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def write_bytes(path, data):
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def json_safe(value):
    """`value` for strict JSON: NaN and infinities become None (JSON null), numpy scalars Python numbers,
    tuples lists (recursively through dicts and lists)."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalar or 0-d array
        value = value.item()
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
