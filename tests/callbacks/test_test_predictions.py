"""Final test-set predictions for the Segmentation dashboard: tags, sets by diagnosis, shared images."""

import dataclasses
import json
import pathlib

import numpy as np
import pytest

pytest.importorskip("lung_keras_tb")

from tensorboard import context

from lung_keras.callbacks import dashboard_tag
from lung_keras.callbacks import log_test_predictions
from lung_keras.callbacks import log_test_split
from lung_keras.callbacks import shared_images_dir
from lung_keras_tb import metadata
from lung_keras_tb import plugin as plugin_lib

TAG_CASES = [
    # [set name, tag]
    ["test", "test"],
    ["test (normal)", "test/normal"],
    ["test (abnormal)", "test/abnormal"],
    ["extra: shenzhen_dev", "extra/shenzhen_dev"],
    ["extra: Hospital B (2024)", "extra/Hospital_B_2024"],
    ["extra: ..", "extra/unnamed"],  # no '..' path segment
    ["extra: ../..", "extra/.._.."],  # '/' never splits a folder name into segments
    ["extra: \u00e9t\u00e9", "extra/ete"],
    ["extra: \u4e2d", "extra/unnamed"],
    ["held-out set", "held-out_set"],
]


@pytest.mark.parametrize("set_name, tag", TAG_CASES)
def test_dashboard_tag(set_name, tag):
    assert dashboard_tag(set_name) == tag
    assert metadata.check_tag(tag) is None  # the plugin's tag parser accepts it


@dataclasses.dataclass
class _Sample:
    id: str
    diagnosis: str


def _provider(logdir):
    from tests.tensorboard_plugins.seg_logs import make_provider

    return make_provider(logdir)


def test_log_test_split_writes_one_tag_per_diagnosis_with_shared_images(tmp_path):
    rng = np.random.default_rng(0)
    samples = [_Sample(f"c{i}", "normal" if i % 3 == 0 else "abnormal") for i in range(6)]
    x = rng.random((6, 16, 16, 1)).astype("float32")
    y = (rng.random((6, 16, 16, 1)) > 0.5).astype("float32")
    store = shared_images_dir(tmp_path)
    records = []
    for seed in (0, 1):
        pred = rng.random((6, 16, 16, 1)).astype("float32")
        dice = rng.random(6)
        records.append(log_test_split(tmp_path / f"arm-seed{seed}" / "logs", samples, x, y, pred, dice, step=4,
                                      by_diagnosis=True, shared_dir=store))
    assert records[0] == {"log_dir": str(tmp_path / "arm-seed0" / "logs"), "step": 4, "shared_dir": str(store),
                          "sets": ["test (abnormal)", "test (normal)"]}
    # One shared folder per test set, written once for both runs.
    folders = sorted(p.name.rsplit("-", 1)[0] for p in pathlib.Path(store).iterdir())
    assert folders == ["test-abnormal", "test-normal"]
    provider = _provider(tmp_path)
    body = plugin_lib.read_samples(provider, context.RequestContext(), "", "arm-seed1/logs/test", "test/normal")
    assert body["step"] == 4 and [s["id"] for s in body["samples"]] == ["c0", "c3"]
    np.testing.assert_allclose([s["dice"] for s in body["samples"]], dice[[0, 3]])
    arms = plugin_lib.list_arms(provider, context.RequestContext(), "")
    assert [a["arm"] for a in arms["arms"]] == ["arm/logs/test"]
    assert arms["tags"] == ["test/abnormal", "test/normal"]


def test_log_test_split_without_diagnosis_is_one_set(tmp_path):
    samples = [_Sample(f"c{i}", "normal" if i % 2 else "abnormal") for i in range(4)]
    x = np.zeros((4, 8, 8, 1), "float32")
    record = log_test_split(tmp_path / "logs", samples, x, x, x, np.ones(4), step=0)
    assert record["sets"] == ["test"] and record["shared_dir"] is None
    body = plugin_lib.read_samples(_provider(tmp_path), context.RequestContext(), "", "logs/test", "test")
    assert [s["id"] for s in body["samples"]] == ["c0", "c1", "c2", "c3"]


def test_log_test_predictions_without_sharing_and_bad_step(tmp_path):
    x = np.zeros((2, 8, 8, 1), "float32")
    tag = log_test_predictions(tmp_path / "logs", "extra: site b", x, x, np.ones((2, 8, 8, 2)), ["a", "b"],
                               [0.0, 0.0], step=0)
    assert tag == "extra/site_b"
    body = plugin_lib.read_samples(_provider(tmp_path), context.RequestContext(), "", "logs/test", tag)
    assert [s["id"] for s in body["samples"]] == ["a", "b"]
    with pytest.raises(ValueError, match="step"):
        log_test_predictions(tmp_path / "logs", "test", x, x, x, ["a", "b"], [1, 1], step=-1)
    assert json.dumps(tag)
