"""lung_keras_tb.summary: what a SegmentationWriter puts on disk, read back through TensorBoard."""

import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image
from tensorboard import context
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.compat.proto import summary_pb2
from tensorboard.data import provider as provider_lib

from lung_keras_tb import metadata
from lung_keras_tb import summary
from tests.tensorboard_plugins.seg_logs import make_provider

CTX = context.RequestContext()


def _batch(n=3, h=6, w=5, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.random((n, h, w, 1)).astype(np.float32)
    masks = (rng.random((n, h, w)) > 0.5).astype(np.float32)
    preds = rng.random((n, h, w)).astype(np.float32)
    return images, masks, preds, [f"s{i}" for i in range(n)], rng.random(n)


def _read_all(logdir, run=".", tag="segmentation"):
    """[(step, [blob bytes])] of one run/tag through the data provider."""
    provider = make_provider(logdir)
    seqs = provider.read_blob_sequences(
        CTX, experiment_id="", plugin_name=metadata.PLUGIN_NAME, downsample=1000,
        run_tag_filter=provider_lib.RunTagFilter(runs=[run], tags=[tag]),
    )[run][tag]
    return [
        (d.step, [provider.read_blob(CTX, blob_key=v.blob_key) for v in d.values]) for d in seqs
    ]


def _png(data):
    return np.asarray(Image.open(io.BytesIO(data)))


def test_round_trip_manifest_and_pngs(tmp_path):
    images, masks, preds, ids, dice = _batch()
    # Threshold edge cases: exactly 0.5 is foreground, just below is not.
    preds[0, 0, 0], preds[0, 0, 1], preds[0, 0, 2] = 0.5, 0.4999, 0.5001
    with summary.SegmentationWriter(tmp_path) as w:
        w.write(7, images, masks, preds, ids, dice)
    [(step, blobs)] = _read_all(tmp_path)
    assert step == 7
    assert len(blobs) == 1 + 3 * 3
    manifest = json.loads(blobs[0])
    assert [s["id"] for s in manifest["samples"]] == ids
    np.testing.assert_allclose([s["dice"] for s in manifest["samples"]], dice)
    assert (manifest["height"], manifest["width"], manifest["threshold"]) == (6, 5, 0.5)
    for i in range(3):
        img, msk, prd = (_png(b) for b in blobs[1 + 3 * i: 4 + 3 * i])
        np.testing.assert_array_equal(img, np.round(images[i, ..., 0] * 255).astype(np.uint8))
        np.testing.assert_array_equal(msk, masks[i].astype(np.uint8) * 255)
        np.testing.assert_array_equal(prd, np.round(preds[i] * 255).astype(np.uint8))
        # The dashboard's rule "pixel >= 128" is exactly "p >= 0.5".
        np.testing.assert_array_equal(prd >= 128, preds[i] >= 0.5)
    assert list(_png(blobs[3])[0, :3] >= 128) == [True, False, True]


def test_input_conventions_give_identical_blobs():
    images, masks, preds, ids, dice = _batch()
    reference = summary.segmentation_blobs(images, masks, preds, ids, dice)
    # (N,H,W) vs (N,H,W,1); uint8 images; bool and 0/255 masks; trailing channel on predictions.
    images_u8 = np.round(images * 255).astype(np.uint8)
    assert summary.segmentation_blobs(images[..., 0], masks[..., None], preds[..., None], ids, dice) == reference
    assert summary.segmentation_blobs(images_u8, masks > 0.5, preds, ids, list(dice)) == reference
    assert summary.segmentation_blobs(images, (masks * 255).astype(np.uint8), preds, ids, dice) == reference


def test_rgb_images_and_non_finite_values():
    images, masks, preds, ids, dice = _batch(n=2)
    rgb = np.repeat(images, 3, axis=-1)
    rgb[..., 0] = 0.0
    preds[1] = np.nan  # a diverged model: stored as 0, not a crash
    blobs = summary.segmentation_blobs(rgb, masks, preds, ids, [float("nan"), 0.25])
    assert _png(blobs[1]).shape == (6, 5, 3)
    assert _png(blobs[1])[..., 0].max() == 0
    assert _png(blobs[6]).max() == 0
    assert [s["dice"] for s in json.loads(blobs[0])["samples"]] == [None, 0.25]


BAD_INPUTS = [
    # (override, error, message fragment)
    ({"sample_ids": ["a", "b"]}, ValueError, "N=3"),
    ({"sample_ids": ["a", "a", "b"]}, ValueError, "distinct"),
    ({"sample_ids": ["a", "", "b"]}, ValueError, "non-empty"),
    ({"sample_ids": "abc"}, TypeError, "sequence of strings"),
    ({"dice": [0.1, 0.2]}, ValueError, "N=3"),
    ({"masks": np.zeros((3, 6, 4))}, ValueError, "height and width"),
    ({"predictions": np.zeros((2, 6, 5))}, ValueError, "N=3"),
    ({"images": np.zeros((3, 6, 5, 2))}, ValueError, "(N, H, W, 3)"),
    ({"images": np.full((3, 6, 5), 300)}, ValueError, "[0, 255]"),
]


@pytest.mark.parametrize("override, error, fragment", BAD_INPUTS)
def test_bad_inputs_raise_clear_errors(override, error, fragment):
    images, masks, preds, ids, dice = _batch()
    kwargs = dict(images=images, masks=masks, predictions=preds, sample_ids=ids, dice=dice)
    kwargs.update(override)
    with pytest.raises(error, match="Received") as info:
        summary.segmentation_blobs(**kwargs)
    assert fragment in str(info.value)


@pytest.mark.parametrize("tag", ["", "../x", "a//b", "/abs", "a/./b", "x\ny", "<b>", "a\\b"])
def test_bad_tags_rejected(tag, tmp_path):
    images, masks, preds, ids, dice = _batch()
    with summary.SegmentationWriter(tmp_path) as w:
        with pytest.raises(ValueError, match="Invalid tag"):
            w.write(0, images, masks, preds, ids, dice, tag=tag)


def test_writer_step_type_and_closed_state(tmp_path):
    images, masks, preds, ids, dice = _batch()
    w = summary.SegmentationWriter(tmp_path)
    with pytest.raises(TypeError, match="step"):
        w.write(1.5, images, masks, preds, ids, dice)
    w.write(np.int64(2), images, masks, preds, ids, dice, tag="val/segmentation")
    w.close()
    w.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        w.write(3, images, masks, preds, ids, dice)
    assert [s for s, _ in _read_all(tmp_path, tag="val/segmentation")] == [2]


def test_segmentation_pb_is_stamped_with_plugin_metadata():
    images, masks, preds, ids, dice = _batch()
    pb = summary.segmentation_pb("segmentation", images, masks, preds, ids, dice)
    assert isinstance(pb, summary_pb2.Summary)
    [value] = pb.value
    assert value.tag == "segmentation"
    assert value.metadata.plugin_data.plugin_name == metadata.PLUGIN_NAME
    assert value.metadata.data_class == summary_pb2.DATA_CLASS_BLOB_SEQUENCE
    assert metadata.parse_plugin_metadata(value.metadata.plugin_data.content)["version"] == 1
    assert list(value.tensor.tensor_shape.dim)[0].size == 1 + 3 * 3


def test_summary_never_imports_tensorflow_and_takes_jax_arrays(tmp_path):
    """A JAX user can log: importing and writing does not pull in TensorFlow."""
    script = textwrap.dedent(f"""
        import sys
        import jax.numpy as jnp
        from lung_keras_tb import summary
        with summary.SegmentationWriter({str(tmp_path)!r}) as w:
            w.write(0, jnp.zeros((2, 4, 4, 1)), jnp.ones((2, 4, 4)), jnp.full((2, 4, 4), 0.7),
                    ["a", "b"], jnp.array([1.0, 0.5]))
        bad = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow."))
        assert not bad, bad
        print("ok")
    """)
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    [(step, blobs)] = _read_all(tmp_path)
    assert [s["dice"] for s in json.loads(blobs[0])["samples"]] == [1.0, 0.5]


def _values(logdir):
    files = [os.path.join(logdir, f) for f in os.listdir(logdir) if "tfevents" in f]
    [path] = files
    events = list(event_file_loader.LegacyEventFileLoader(path).Load())
    return [(e.step, v) for e in events if e.HasField("summary") for v in e.summary.value]


def test_tf_summary_path_writes_the_same_value(tmp_path):
    tf = pytest.importorskip("tensorflow")
    images, masks, preds, ids, dice = _batch()
    tf_dir, native_dir = str(tmp_path / "tf"), str(tmp_path / "native")
    writer = tf.summary.create_file_writer(tf_dir)
    with writer.as_default():
        assert summary.segmentation("segmentation", images, masks, preds, ids, dice, step=4)
    writer.close()
    with summary.SegmentationWriter(native_dir) as w:
        w.write(4, images, masks, preds, ids, dice)
    [(tf_step, tf_value)] = _values(tf_dir)
    [(native_step, native_value)] = _values(native_dir)
    assert tf_step == native_step == 4
    assert tf_value.tag == native_value.tag
    assert tf_value.tensor.string_val == native_value.tensor.string_val
    assert tf_value.metadata.plugin_data == native_value.metadata.plugin_data
    assert tf_value.metadata.data_class == native_value.metadata.data_class
    # And TensorBoard reads both back identically.
    assert _read_all(tf_dir) == _read_all(native_dir)
