"""Segmentation dashboard backend: routes over logs of a tiny real training run, and logic functions."""

import io
import json
import os
import re

import numpy as np
import pytest
from PIL import Image
from werkzeug import test as werkzeug_test

from tensorboard import context
from tensorboard import errors
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.compat.proto import event_pb2
from tensorboard.plugins import base_plugin

from lung_keras_tb import metadata
from lung_keras_tb import plugin as plugin_lib
from lung_keras_tb import summary
from tests.tensorboard_plugins.seg_logs import make_provider

PREFIX = "/data/plugin/" + metadata.PLUGIN_NAME
CTX = context.RequestContext()


def _app(provider, logdir):
    plugin = plugin_lib.SegmentationPlugin(
        base_plugin.TBContext(logdir=str(logdir), data_provider=provider)
    )
    return werkzeug_test.Client(
        application.TensorBoardWSGI([plugin], data_provider=provider)
    ), plugin


def _get(client, route, **params):
    response = client.get(PREFIX + route, query_string=params)
    return response.status_code, response


def _json(client, route, **params):
    code, response = _get(client, route, **params)
    assert code == 200, (route, params, response.get_data(as_text=True))
    return json.loads(response.get_data())


@pytest.fixture(scope="module")
def trained(segmentation_logs):
    logdir, result = segmentation_logs
    provider = make_provider(logdir)
    client, plugin = _app(provider, logdir)
    return client, plugin, provider, result


def test_plugin_is_listed_as_segmentation_tab(trained):
    client, plugin, _, _ = trained
    listing = json.loads(client.get("/data/plugins_listing").get_data())
    entry = listing[metadata.PLUGIN_NAME]
    assert entry["enabled"] is True
    assert entry["tab_name"] == "Segmentation"
    assert entry["loading_mechanism"] == {
        "type": "IFRAME", "module_path": PREFIX + "/index.js"}
    assert plugin.is_active()


def test_entry_point_registers_plugin():
    from tensorboard import default

    assert plugin_lib.SegmentationPlugin in default.get_dynamic_plugins()


def test_runs_and_steps_of_real_training(trained):
    client, _, _, result = trained
    body = _json(client, "/runs")
    assert [r["run"] for r in body["runs"]] == ["augmented", "baseline"]
    for run in body["runs"]:
        assert run["tags"][0]["tag"] == "segmentation"
        assert run["tags"][0]["max_step"] == 1
    assert _json(client, "/steps", run="baseline", tag="segmentation")["steps"] == [0, 1]


def test_samples_carry_logged_ids_and_dice(trained):
    client, _, _, result = trained
    latest = _json(client, "/samples", run="baseline", tag="segmentation")
    assert latest["step"] == 1
    assert [s["id"] for s in latest["samples"]] == result["ids"]
    np.testing.assert_allclose([s["dice"] for s in latest["samples"]], result["baseline"][1])
    first = _json(client, "/samples", run="baseline", tag="segmentation", step="0")
    np.testing.assert_allclose([s["dice"] for s in first["samples"]], result["baseline"][0])
    # Training improved the model between the two logged epochs.
    assert np.mean(result["baseline"][1]) > np.mean(result["baseline"][0]) + 0.2


def test_trend_gives_each_samples_dice_at_every_step(trained):
    client, _, _, result = trained
    body = _json(client, "/trend", run="baseline", tag="segmentation")
    assert body["steps"] == [0, 1]
    assert [s["id"] for s in body["samples"]] == result["ids"]
    for i, sample in enumerate(body["samples"]):
        np.testing.assert_allclose(sample["dice"], [result["baseline"][0][i], result["baseline"][1][i]])


def test_trend_keeps_samples_that_left_and_marks_gaps(tmp_path):
    """A sample logged only at step 0 still has a line; a non-finite Dice is a gap (null)."""
    rng = np.random.default_rng(0)
    with summary.SegmentationWriter(tmp_path / "r") as w:
        w.write(0, rng.random((2, 4, 4)), np.ones((2, 4, 4)), rng.random((2, 4, 4)), ["a", "gone"], [0.2, 0.4])
        w.write(5, rng.random((1, 4, 4)), np.ones((1, 4, 4)), rng.random((1, 4, 4)), ["a"], [float("nan")])
    client, _ = _app(make_provider(tmp_path), tmp_path)
    body = _json(client, "/trend", run="r", tag="segmentation")
    assert body["steps"] == [0, 5]
    assert body["samples"] == [{"id": "a", "dice": [0.2, None]}, {"id": "gone", "dice": [0.4, None]}]


def test_images_decode_and_reproduce_the_logged_dice(trained):
    """Dice recomputed from the served mask and thresholded prediction PNGs matches the manifest."""
    client, _, _, result = trained
    body = _json(client, "/samples", run="augmented", tag="segmentation", step="1")
    for s in body["samples"]:
        pngs = {}
        for kind in metadata.KINDS:
            code, response = _get(client, "/image", run="augmented", tag="segmentation",
                                  step="1", index=str(s["index"]), kind=kind)
            assert code == 200 and response.mimetype == "image/png"
            pngs[kind] = np.asarray(Image.open(io.BytesIO(response.get_data())))
            assert pngs[kind].shape == (64, 64)
        assert set(np.unique(pngs["mask"])) <= {0, 255}
        truth, pred = pngs["mask"] > 127, pngs["prediction"] >= 128
        dice = 2 * (truth & pred).sum() / (truth.sum() + pred.sum())
        assert dice == pytest.approx(s["dice"], abs=1e-9)


def test_compare_joins_runs_on_sample_id(trained):
    client, _, _, result = trained
    body = _json(client, "/compare", run_a="baseline", run_b="augmented", tag="segmentation", step="1")
    assert body["a"] == {"run": "baseline", "step": 1, "threshold": 0.5}
    assert body["b"]["run"] == "augmented"
    assert [r["id"] for r in body["rows"]] == result["ids"]
    expected = np.asarray(result["augmented"][1]) - np.asarray(result["baseline"][1])
    np.testing.assert_allclose([r["delta"] for r in body["rows"]], expected)
    assert body["only_a"] == body["only_b"] == []
    # A step that exists nowhere falls back to each run's closest step.
    far = _json(client, "/compare", run_a="baseline", run_b="augmented", tag="segmentation", step="99")
    assert far["a"]["step"] == far["b"]["step"] == 1


BAD_REQUESTS = [
    ("/steps", {"tag": "segmentation"}),  # missing run
    ("/steps", {"run": "baseline"}),  # missing tag
    ("/steps", {"run": "../baseline", "tag": "segmentation"}),
    ("/steps", {"run": "baseline/../../etc", "tag": "segmentation"}),
    ("/steps", {"run": "/etc/passwd", "tag": "segmentation"}),
    ("/steps", {"run": "..\\baseline", "tag": "segmentation"}),
    ("/steps", {"run": "base\x00line", "tag": "segmentation"}),
    ("/steps", {"run": "x" * 600, "tag": "segmentation"}),
    ("/steps", {"run": "baseline", "tag": "../segmentation"}),
    ("/steps", {"run": "baseline", "tag": "<script>"}),
    ("/samples", {"run": "baseline", "tag": "segmentation", "step": "-1"}),
    ("/samples", {"run": "baseline", "tag": "segmentation", "step": "1e3"}),
    ("/samples", {"run": "baseline", "tag": "segmentation", "step": "one"}),
    ("/samples", {"run": "baseline", "tag": "segmentation", "step": "99999999999999999999"}),
    ("/samples", {"run": ["baseline", "augmented"], "tag": "segmentation"}),  # repeated
    ("/trend", {"run": "../baseline", "tag": "segmentation"}),
    ("/trend", {"run": "baseline", "tag": "a/../../b"}),
    ("/trend", {"run": "baseline"}),
    ("/trend", {"run": ["baseline", "augmented"], "tag": "segmentation"}),
    ("/compare", {"run_a": "baseline", "run_b": "..", "tag": "segmentation"}),
    ("/compare", {"run_a": "baseline", "tag": "segmentation"}),
    ("/image", {"run": "baseline", "tag": "segmentation", "step": "1", "index": "0", "kind": "../../etc/passwd"}),
    ("/image", {"run": "baseline", "tag": "segmentation", "step": "1", "index": "-1", "kind": "mask"}),
    ("/image", {"run": "baseline", "tag": "segmentation", "step": "1", "kind": "mask"}),
    ("/image", {"run": "baseline", "tag": "segmentation", "index": "0", "kind": "mask"}),
]


@pytest.mark.parametrize("route, params", BAD_REQUESTS)
def test_malformed_parameters_get_400(trained, route, params):
    client = trained[0]
    code, response = _get(client, route, **params)
    assert code == 400
    assert "error" in json.loads(response.get_data())


NOT_FOUND = [
    ("/steps", {"run": "nosuchrun", "tag": "segmentation"}),
    ("/steps", {"run": "baseline", "tag": "other"}),
    ("/samples", {"run": "baseline", "tag": "segmentation", "step": "5"}),
    ("/trend", {"run": "nosuchrun", "tag": "segmentation"}),
    ("/trend", {"run": "baseline", "tag": "other"}),
    ("/image", {"run": "baseline", "tag": "segmentation", "step": "1", "index": "8", "kind": "mask"}),
    ("/image", {"run": "baseline", "tag": "segmentation", "step": "3", "index": "0", "kind": "mask"}),
]


@pytest.mark.parametrize("route, params", NOT_FOUND)
def test_well_formed_but_absent_gets_404(trained, route, params):
    code, _ = _get(trained[0], route, **params)
    assert code == 404


def test_index_js_is_an_es_module_that_never_injects_html(trained):
    code, response = _get(trained[0], "/index.js")
    assert code == 200 and response.mimetype == "application/javascript"
    source = response.get_data(as_text=True)
    assert "export async function render" in source
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source, sink


@pytest.mark.parametrize("name", ["index.js/../plugin.py", "../metadata.py", "static/index.js", ""])
def test_static_reader_serves_only_its_fixed_files(name):
    with pytest.raises(errors.NotFoundError):
        plugin_lib.read_static(name)


def test_names_are_returned_verbatim_as_json(tmp_path):
    """Odd run/sample names round-trip exactly (JSON-escaped); the page renders them as text."""
    run = 'odd <b>run</b> & "q"'
    sample = '<img src=x onerror="alert(1)">'
    with summary.SegmentationWriter(tmp_path / run) as w:
        w.write(0, np.zeros((1, 4, 4)), np.ones((1, 4, 4)), np.ones((1, 4, 4)), [sample], [1.0])
    client, _ = _app(make_provider(tmp_path), tmp_path)
    assert _json(client, "/runs")["runs"][0]["run"] == run
    code, response = _get(client, "/samples", run=run, tag="segmentation")
    assert code == 200 and response.mimetype == "application/json"
    assert json.loads(response.get_data())["samples"][0]["id"] == sample


# ---------------------------------------------------------------- empty, growing, partial logs


def test_empty_logdir(tmp_path):
    provider = make_provider(tmp_path)
    client, plugin = _app(provider, tmp_path)
    assert _json(client, "/runs") == {"runs": []}
    assert not plugin.is_active()
    assert _get(client, "/samples", run="baseline", tag="segmentation")[0] == 404
    listing = json.loads(client.get("/data/plugins_listing").get_data())
    assert listing[metadata.PLUGIN_NAME]["enabled"] is False


def _step_batch(seed):
    rng = np.random.default_rng(seed)
    return (rng.random((2, 8, 8)), rng.random((2, 8, 8)) > 0.5, rng.random((2, 8, 8)),
            ["a", "b"], rng.random(2))


def test_growing_log_shows_new_steps_after_reload(tmp_path):
    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        size_guidance={event_accumulator.TENSORS: 0})
    multiplexer.AddRunsFromDirectory(str(tmp_path))
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(tmp_path))
    client, _ = _app(provider, tmp_path)
    writer = summary.SegmentationWriter(tmp_path / "live")
    writer.write(0, *_step_batch(0))
    writer.flush()
    multiplexer.AddRunsFromDirectory(str(tmp_path))
    multiplexer.Reload()
    assert _json(client, "/steps", run="live", tag="segmentation")["steps"] == [0]
    writer.write(1, *_step_batch(1))
    writer.flush()
    multiplexer.Reload()
    assert _json(client, "/steps", run="live", tag="segmentation")["steps"] == [0, 1]
    assert _json(client, "/samples", run="live", tag="segmentation")["step"] == 1
    writer.close()


def test_truncated_event_file_serves_complete_steps(tmp_path):
    with summary.SegmentationWriter(tmp_path / "crashed") as w:
        w.write(0, *_step_batch(0))
        w.write(1, *_step_batch(1))
        path = w.path
    os.truncate(path, os.path.getsize(path) - 40)  # a crash mid-write of step 1
    client, _ = _app(make_provider(tmp_path), tmp_path)
    assert _json(client, "/steps", run="crashed", tag="segmentation")["steps"] == [0]
    assert _json(client, "/samples", run="crashed", tag="segmentation")["step"] == 0
    assert _get(client, "/samples", run="crashed", tag="segmentation", step="1")[0] == 404


def test_unreadable_manifest_or_missing_blobs_are_404_not_500(tmp_path):
    good = summary.segmentation_pb("segmentation", *_step_batch(0))
    broken = summary.segmentation_pb("segmentation", *_step_batch(1))
    broken.value[0].tensor.string_val[0] = b"{not json"
    short = summary.segmentation_pb("segmentation", *_step_batch(2))
    del short.value[0].tensor.string_val[4:]  # manifest + 1 complete sample of 2
    short.value[0].tensor.tensor_shape.dim[0].size = 4
    with summary.SegmentationWriter(tmp_path / "r") as w:
        for step, pb in enumerate([good, broken, short]):
            w._add_event(event_pb2.Event(step=step, wall_time=1.0 + step, summary=pb))
    client, _ = _app(make_provider(tmp_path), tmp_path)
    assert len(_json(client, "/samples", run="r", tag="segmentation", step="0")["samples"]) == 2
    code, response = _get(client, "/samples", run="r", tag="segmentation", step="1")
    assert code == 404 and "manifest" in json.loads(response.get_data())["error"]
    assert [s["id"] for s in _json(client, "/samples", run="r", tag="segmentation", step="2")["samples"]] == ["a"]
    assert _get(client, "/image", run="r", tag="segmentation", step="2", index="1", kind="image")[0] == 404


# ---------------------------------------------------------------- logic functions without HTTP


@pytest.mark.parametrize("run", [".", "baseline", "a/b", "2024-01-01T10:00", 'odd <b>run</b> & "q"'])
def test_parse_run_accepts_real_run_names(run):
    assert plugin_lib.parse_run(run) == run


@pytest.mark.parametrize("run", ["", "..", "a/..", "./a", "/a", "a\\b", "a\nb", "a\x7fb", "x" * 513])
def test_parse_run_rejects_traversal_and_control_characters(run):
    with pytest.raises(errors.InvalidArgumentError):
        plugin_lib.parse_run(run)


def test_logic_functions_on_provider(trained):
    _, _, provider, result = trained
    runs = plugin_lib.list_runs(provider, CTX, "")
    assert {r["run"] for r in runs["runs"]} == {"baseline", "augmented"}
    samples = plugin_lib.read_samples(provider, CTX, "", "augmented", "segmentation")
    worst = min(samples["samples"], key=lambda s: s["dice"])
    assert worst["dice"] == pytest.approx(min(result["augmented"][1]))
    png = plugin_lib.read_image(provider, CTX, "", "augmented", "segmentation", 1, worst["index"], "image")
    assert png.startswith(b"\x89PNG")
    with pytest.raises(errors.NotFoundError):
        plugin_lib.read_samples(provider, CTX, "", "augmented", "segmentation", step=7)


def test_unreadable_blob_key_gets_a_hint_not_a_crash(trained):
    """TensorBoard's Rust data server rejects blob keys of runs named with '"'; say what to do."""
    _, _, provider, _ = trained

    class _RustLike:
        def __getattr__(self, name):
            return getattr(provider, name)

        def read_blob(self, ctx=None, *, blob_key):
            raise errors.InvalidArgumentError("failed to parse blob key: BadJson")

    with pytest.raises(errors.NotFoundError, match="--load_fast=false"):
        plugin_lib.read_samples(_RustLike(), CTX, "", "baseline", "segmentation")
