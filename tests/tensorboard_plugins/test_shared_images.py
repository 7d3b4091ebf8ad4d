"""Shared test images (format version 2): images and masks stored once, predictions per run."""

import io
import json

import numpy as np
import pytest

from lung_keras_tb import links
from lung_keras_tb import metadata
from lung_keras_tb import summary
from tests.tensorboard_plugins.seg_logs import make_provider
from tests.tensorboard_plugins.test_plugin import _app
from tests.tensorboard_plugins.test_plugin import _json


def _arrays(seed=0, n=3, size=10):
    rng = np.random.default_rng(seed)
    return rng.random((n, size, size)), rng.random((n, size, size)) > 0.5, [f"s{i}" for i in range(n)]


def test_source_key_depends_on_tag_ids_order_and_pixels():
    images, masks, ids = _arrays()
    key = summary.source_key("test", ids, images, masks)
    assert metadata.is_source_key(key) and len(key) == 32
    assert summary.source_key("test", ids, images.copy(), masks.copy()) == key
    assert summary.source_key("test/normal", ids, images, masks) != key
    assert summary.source_key("test", ids[::-1], images[::-1], masks[::-1]) != key
    changed = images.copy()
    changed[1, 2, 3] = 1.0 - changed[1, 2, 3]
    assert summary.source_key("test", ids, changed, masks) != key
    # Floats that round to the same 8-bit pixels are the same stored image.
    assert summary.source_key("test", ids, images + 1e-6, masks) == key


def test_source_is_written_once_and_runs_add_only_predictions(tmp_path):
    images, masks, ids = _arrays()
    store = tmp_path / "_test_images"
    for run in ("a-seed0", "a-seed1", "b-seed0"):
        key = summary.write_shared(tmp_path / run, store, 4, images, masks, np.full(masks.shape, 0.9), ids,
                                   [0.5, 0.6, 0.7], tag="test")
    sources = list(store.iterdir())
    assert [p.name for p in sources] == [f"test-{key[:16]}"]
    assert len(list(sources[0].iterdir())) == 1  # one event file, no leftovers
    run_bytes = sum(p.stat().st_size for p in (tmp_path / "a-seed0").iterdir())
    source_bytes = sum(p.stat().st_size for p in sources[0].iterdir())
    assert run_bytes < source_bytes  # a run holds predictions, not images
    client, _ = _app(make_provider(tmp_path), tmp_path)
    body = _json(client, "/samples", run="a-seed1", tag="test")
    assert [s["id"] for s in body["samples"]] == ids and body["step"] == 4


def test_layouts_in_the_plugin_metadata():
    assert metadata.layout_of(metadata.create_summary_metadata().plugin_data.content) == (metadata.LAYOUT_FULL, None)
    key = "0123456789abcdef0123456789abcdef"
    content = metadata.create_summary_metadata(layout=metadata.LAYOUT_PREDICTIONS, source=key).plugin_data.content
    assert metadata.layout_of(content) == (metadata.LAYOUT_PREDICTIONS, key)
    assert metadata.layout_of(b"{not json") == (metadata.LAYOUT_FULL, None)
    with pytest.raises(ValueError, match="source key"):
        metadata.create_summary_metadata(layout=metadata.LAYOUT_SOURCE, source="../x")
    with pytest.raises(ValueError, match="layout"):
        metadata.create_summary_metadata(layout="other")
    assert metadata.num_samples(7, metadata.LAYOUT_PREDICTIONS) == 6
    assert metadata.blob_index(2, "mask", metadata.LAYOUT_SOURCE) == 6


def test_predictions_need_valid_inputs(tmp_path):
    images, masks, ids = _arrays()
    with summary.SegmentationWriter(tmp_path / "r") as w:
        with pytest.raises(TypeError, match="step"):
            w.write_predictions(1.5, masks, ids, [1, 1, 1], source="0" * 32)
        with pytest.raises(ValueError, match="source key"):
            w.write_predictions(1, masks, ids, [1, 1, 1], source="not-a-key")
        with pytest.raises(ValueError, match="N=3"):
            w.write_predictions(1, masks, ids[:2], [1, 1, 1], source="0" * 32)
    with pytest.raises(ValueError, match="height and width"):
        summary.write_shared(tmp_path / "r", tmp_path / "store", 0, images, masks, np.zeros((3, 4, 4)), ids, [1, 1, 1])
    assert not (tmp_path / "store").exists()  # nothing written for a bad call


LINK_CASES = [
    # [kwargs, expected fragment after '#lung_segmentation&']
    [dict(tag="test/abnormal", arm_a="c/baseline/logs/test", arm_b="c/augmented/logs/test"),
     "seg_view=arms&seg_tag=test%2Fabnormal&seg_a=c%2Fbaseline%2Flogs%2Ftest&seg_b=c%2Faugmented%2Flogs%2Ftest"
     "&seg_seed=mean&seg_sort=abs"],
    [dict(tag="extra/hospital b", arm_a="train=6/a+b", arm_b="x", seed=2, sort="loss", image="id&=#1"),
     "seg_view=arms&seg_tag=extra%2Fhospital%20b&seg_a=train%3D6%2Fa%2Bb&seg_b=x&seg_seed=2&seg_sort=loss"
     "&seg_image=id%26%3D%231"],
]


@pytest.mark.parametrize("kwargs, fragment", LINK_CASES)
def test_arm_view_link_format(kwargs, fragment):
    assert links.arm_view_link(**kwargs, base="") == "#lung_segmentation&" + fragment
    assert links.arm_view_link(**kwargs).startswith("http://127.0.0.1:6006/#lung_segmentation&")


@pytest.mark.parametrize("kwargs", [dict(tag="../x"), dict(arm_a="/etc"), dict(seed=-1), dict(seed="1"),
                                    dict(sort="best")])
def test_arm_view_link_rejects_bad_values(kwargs):
    args = {"tag": "test", "arm_a": "a", "arm_b": "b", **kwargs}
    with pytest.raises(ValueError):
        links.arm_view_link(**args)


QUANTIZE_CASES = [
    # [levels, probabilities, stored pixels]; k = levels - 1, pixel = (255 / k) * floor(k * p + 1/2)
    [16, [0.0, 0.03, 0.04, 0.4999, 0.5, 0.97, 1.0], [0, 0, 17, 119, 136, 255, 255]],  # 15 * 0.5 + 0.5 = 8 -> 136
    [18, [0.4999, 0.5], [120, 135]],  # k = 17: 8.998 -> 8 * 15, 9.0 -> 9 * 15
    [256, [0.4999, 0.5, 0.502], [127, 128, 128]],  # round half to even, as the v1 layout
]


@pytest.mark.parametrize("levels, probs, pixels", QUANTIZE_CASES)
def test_prediction_levels_keep_the_threshold_exact(levels, probs, pixels):
    stored = summary._prob_to_uint8(np.array(probs), levels)
    assert stored.tolist() == pixels
    assert ((stored >= 128) == (np.array(probs) >= 0.5)).all()


def test_shared_predictions_store_16_levels(tmp_path):
    from PIL import Image

    images, masks, ids = _arrays()
    probs = np.random.default_rng(1).random(masks.shape)
    pb = summary.shared_predictions_pb("test", probs, ids, [1, 1, 1], source="0" * 32)
    blobs = pb.value[0].tensor.string_val
    assert json.loads(blobs[0])["levels"] == 16
    stored = np.asarray(Image.open(io.BytesIO(blobs[2])))
    assert set(np.unique(stored)) <= set(range(0, 256, 17))
    assert ((stored >= 128) == (probs[1] >= 0.5)).all()
    with pytest.raises(ValueError, match="levels"):
        summary.shared_predictions_pb("test", probs, ids, [1, 1, 1], source="0" * 32, levels=10)
