"""Plugin name, summary metadata and the on-disk layout of a segmentation summary.

One summary value per (tag, step) holds every logged sample of that step as a
TensorBoard *blob sequence* (a rank-1 string tensor):

    [manifest_json, image_0, mask_0, prediction_0, image_1, mask_1, prediction_1, ...]

* ``manifest_json`` (UTF-8 JSON)::

      {"version": 1, "threshold": 0.5, "height": H, "width": W,
       "samples": [{"id": "<sample id>", "dice": 0.93}, ...]}

  ``dice`` is ``null`` when the logged value was not finite.
* ``image_i``: 8-bit PNG, grayscale (``L``) or ``RGB``, as logged.
* ``mask_i``: 8-bit grayscale PNG, 0 (background) or 255 (lung).
* ``prediction_i``: 8-bit grayscale PNG of the *probability map*,
  ``round(255 * p)``. Thresholding happens in the dashboard: a pixel is
  predicted foreground iff its value is >= 128, which is exactly ``p >= 0.5``.

The value is stamped with ``SummaryMetadata(plugin_data.plugin_name=PLUGIN_NAME,
plugin_data.content=<plugin JSON>, data_class=DATA_CLASS_BLOB_SEQUENCE)`` so both
TensorBoard data providers (the Python multiplexer and the Rust data server)
index it as a blob sequence: listing runs, tags and steps never reads a PNG.

Shared images (format version 2)
--------------------------------
Many runs predicting the same test set would each store the same image and mask
PNGs. Version 2 stores them once, in a *source* series, and per run only the
predictions:

* layout ``"manifest+images+masks"`` (``LAYOUT_SOURCE``):
  ``[manifest_json, image_0, mask_0, image_1, mask_1, ...]``, written once per
  test set by `lung_keras_tb.summary.write_shared_source` into a folder named
  after its key (e.g. ``<logdir>/_test_images/test-normal-<key>``);
* layout ``"manifest+predictions"`` (``LAYOUT_PREDICTIONS``):
  ``[manifest_json, prediction_0, prediction_1, ...]``, in each run. The
  probability map has ``levels`` grey levels (manifest, default 16: pixel
  ``17 * floor(15 p + 1/2)``), so ``>= 128`` is still exactly ``p >= 0.5``.

Both carry the same ``source`` key in their plugin content and manifest
(``{"version": 2, "layout": ..., "source": "<key>", ...}``): a SHA-256 over the
tag, the ordered sample ids and the 8-bit image and mask pixels, so equal keys
mean the same samples in the same order and sample ``i`` of a prediction series
is sample ``i`` of its source. The dashboard finds the source by key among the
series of the same tag that TensorBoard serves (any run under the logdir), and
lists only series holding predictions as runs. A source outside the logdir
leaves the predictions listed, with their images reported missing.
"""

import json
import re

from tensorboard.compat.proto import summary_pb2

PLUGIN_NAME = "lung_segmentation"

# Version of the layout above; stored in both the plugin content and manifest.
FORMAT_VERSION = 1
# Version of the shared-image layouts (see "Shared images" above).
SHARED_FORMAT_VERSION = 2

# Blob kinds of a sample, in their order within the blob sequence.
KINDS = ("image", "mask", "prediction")

LAYOUT_FULL = "manifest+3n"
LAYOUT_SOURCE = "manifest+images+masks"
LAYOUT_PREDICTIONS = "manifest+predictions"
# The kinds each layout stores per sample, in blob order.
LAYOUT_KINDS = {
    LAYOUT_FULL: KINDS,
    LAYOUT_SOURCE: ("image", "mask"),
    LAYOUT_PREDICTIONS: ("prediction",),
}
_KEY_RE = re.compile(r"^[0-9a-f]{16,64}$")

# Longest run / tag name the writer produces or the server accepts.
MAX_NAME_LENGTH = 512

_TAG_RE = re.compile(r"^[A-Za-z0-9_.\-/ ]+$")


def create_summary_metadata(description="", layout=LAYOUT_FULL, source=None):
    """Returns the `SummaryMetadata` proto stamped on every segmentation summary.

    `layout` is one of `LAYOUT_KINDS`; the shared-image layouts need the `source` key.
    """
    if layout not in LAYOUT_KINDS:
        raise ValueError(f"Unknown layout. Received: layout={layout!r}")
    if layout == LAYOUT_FULL:
        plugin = {"version": FORMAT_VERSION, "layout": layout}
    else:
        if not is_source_key(source):
            raise ValueError(f"The {layout!r} layout needs a hex source key. Received: source={source!r}")
        plugin = {"version": SHARED_FORMAT_VERSION, "layout": layout, "source": source}
    content = json.dumps(plugin, sort_keys=True).encode("utf-8")
    return summary_pb2.SummaryMetadata(
        summary_description=description,
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=PLUGIN_NAME, content=content
        ),
        data_class=summary_pb2.DATA_CLASS_BLOB_SEQUENCE,
    )


def parse_plugin_metadata(content):
    """Parses the plugin content bytes; returns a dict (``{}`` when unreadable)."""
    try:
        result = json.loads(bytes(content).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, TypeError):
        return {}
    return result if isinstance(result, dict) else {}


def is_source_key(key):
    """Whether `key` looks like a shared-source key (lowercase hex, 16 to 64 digits)."""
    return isinstance(key, str) and bool(_KEY_RE.match(key))


def layout_of(plugin_content):
    """`(layout, source_key)` of a series from its plugin content bytes or parsed dict.

    Content without a (known) layout is the version-1 full layout; a shared layout
    without a valid key reads as `(layout, None)`.
    """
    info = plugin_content if isinstance(plugin_content, dict) else parse_plugin_metadata(plugin_content)
    layout = info.get("layout", LAYOUT_FULL)
    if layout not in LAYOUT_KINDS:
        layout = LAYOUT_FULL
    source = info.get("source")
    return layout, (source if layout != LAYOUT_FULL and is_source_key(source) else None)


def blob_index(sample_index, kind, layout=LAYOUT_FULL):
    """Position of a sample's `kind` PNG in a blob sequence of `layout`."""
    kinds = LAYOUT_KINDS[layout]
    return 1 + len(kinds) * sample_index + kinds.index(kind)


def num_samples(sequence_length, layout=LAYOUT_FULL):
    """Number of complete samples a blob sequence of this length and `layout` holds."""
    return max(0, (sequence_length - 1) // len(LAYOUT_KINDS[layout]))


def _has_bad_chars(name):
    return any(ord(c) < 32 or ord(c) == 127 for c in name) or "\\" in name


def check_tag(tag):
    """Returns the reason `tag` is not acceptable, or None.

    Tags are letters, digits, ``_ . - /`` and space; no empty, ``.`` or ``..``
    path segment, no leading ``/``.
    """
    if not isinstance(tag, str) or not tag:
        return "tag must be a non-empty string"
    if len(tag) > MAX_NAME_LENGTH:
        return "tag is longer than %d characters" % MAX_NAME_LENGTH
    if not _TAG_RE.match(tag):
        return "tag may only contain letters, digits, '_', '.', '-', '/' and space"
    if any(part in ("", ".", "..") for part in tag.split("/")):
        return "tag has an empty, '.' or '..' path segment"
    return None


def check_run(run):
    """Returns the reason `run` is not an acceptable run name, or None.

    Run names come from directory names, so almost anything printable goes,
    except control characters, backslashes, a leading ``/`` and ``.``/``..``
    segments. The bare name ``.`` (TensorBoard's name for the logdir root) is
    accepted.
    """
    if not isinstance(run, str) or not run:
        return "run must be a non-empty string"
    if len(run) > MAX_NAME_LENGTH:
        return "run is longer than %d characters" % MAX_NAME_LENGTH
    if _has_bad_chars(run):
        return "run contains a control character or a backslash"
    if run == ".":
        return None
    if run.startswith("/"):
        return "run must not start with '/'"
    if any(part in (".", "..") for part in run.split("/")):
        return "run has a '.' or '..' path segment"
    return None
