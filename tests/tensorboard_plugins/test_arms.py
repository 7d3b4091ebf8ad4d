"""Arms view: grouping runs across seeds, pairing two arms image by image, and its routes."""

import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from lung_keras_tb import arms
from lung_keras_tb import metadata
from lung_keras_tb import plugin as plugin_lib
from lung_keras_tb import summary
from tests.tensorboard_plugins.seg_logs import make_provider
from tests.tensorboard_plugins.test_plugin import CTX
from tests.tensorboard_plugins.test_plugin import _app
from tests.tensorboard_plugins.test_plugin import _get
from tests.tensorboard_plugins.test_plugin import _json

# ---------------------------------------------------------------- grouping rule

SPLIT_CASES = [
    # [run, (arm, seed)]
    ["c/augmented-seed0", ("c/augmented", 0)],
    ["train=all-healthy-only/augmented-flip-seed12/logs/test", ("train=all-healthy-only/augmented-flip/logs/test", 12)],
    ["baseline", ("baseline", None)],
    ["a-seed1/b-seed2", ("a-seed1/b", 2)],  # the last seeded segment counts
    ["a-seed1/logs", ("a/logs", 1)],
    ["seedless-seed", ("seedless-seed", None)],
    ["-seed3", ("-seed3", None)],  # an arm needs a name before -seed
    ["x-seed1e3", ("x-seed1e3", None)],
]


@pytest.mark.parametrize("run, expected", SPLIT_CASES)
def test_split_run(run, expected):
    assert arms.split_run(run) == expected


def test_group_arms_sorts_members_by_seed_and_reports_clashes():
    runs = ["c/b-seed1", "c/b-seed0", "c/a-seed10", "c/a-seed2", "single", "c/b",  # 'c/b' clashes with arm c/b
            "c/a-seed02"]  # seed 2 twice in arm c/a
    grouping = arms.group_arms(runs)
    assert grouping["arms"] == [
        {"arm": "c/a", "members": [{"run": "c/a-seed02", "seed": 2}, {"run": "c/a-seed10", "seed": 10}]},
        {"arm": "c/b", "members": [{"run": "c/b-seed0", "seed": 0}, {"run": "c/b-seed1", "seed": 1}]},
        {"arm": "single", "members": [{"run": "single", "seed": None}]},
    ]
    assert grouping["ungrouped"] == ["c/a-seed2", "c/b"]


def _member(run, seed, dice_by_id):
    samples = [{"index": i, "id": sid, "dice": d} for i, (sid, d) in enumerate(dice_by_id.items())]
    return {"run": run, "seed": seed, "step": 4, "threshold": 0.5, "samples": samples}


# Arm A logs i1..i3 (i2's Dice undefined in seed 1), arm B logs i1, i2, i4.
A = [_member("a-seed0", 0, {"i1": 0.8, "i2": 0.6, "i3": 0.5}),
     _member("a-seed1", 1, {"i3": 0.7, "i1": 0.6, "i2": None})]
B = [_member("b-seed0", 0, {"i1": 0.9, "i2": 0.9, "i4": 0.3}),
     _member("b-seed1", 1, {"i1": 0.7, "i2": 0.5, "i4": 0.5})]

PAIR_CASES = [
    # [seed, {id: (dice_a, dice_b, delta, n_a, n_b, index_a, index_b)}]
    [None, {
        "i1": (0.7, 0.8, 0.1, 2, 2, 0, 0),  # (0.8 + 0.6) / 2 vs (0.9 + 0.7) / 2
        "i2": (0.6, 0.7, 0.1, 1, 2, 1, 1),  # seed 1's undefined Dice is left out of A's mean
        "i3": (0.6, None, None, 2, 0, 2, None),  # only in A
        "i4": (None, 0.4, None, 0, 2, None, 2),  # only in B
    }],
    [1, {
        "i3": (0.7, None, None, 1, 0, 0, None),
        "i1": (0.6, 0.7, 0.1, 1, 1, 1, 0),
        "i2": (None, 0.5, None, 0, 1, 2, 1),  # logged by both, Dice undefined in A
        "i4": (None, 0.5, None, 0, 1, None, 2),
    }],
]


@pytest.mark.parametrize("seed, expected", PAIR_CASES)
def test_pair_arms(seed, expected):
    paired = arms.pair_arms(A, B, seed)
    assert [r["id"] for r in paired["rows"]] == list(expected)  # A's order, then B's own images
    for row in paired["rows"]:
        want = expected[row["id"]]
        got = (row["dice_a"], row["dice_b"], row["delta"], row["n_a"], row["n_b"], row["index_a"], row["index_b"])
        assert got == pytest.approx(want, abs=1e-12), row["id"]
    assert paired["only_a"] == ["i3"] and paired["only_b"] == ["i4"]
    display_seed = 0 if seed is None else seed
    assert paired["a"]["display"] == {"run": f"a-seed{display_seed}", "seed": display_seed, "step": 4,
                                      "threshold": 0.5}
    assert paired["b"]["seeds"] == ([0, 1] if seed is None else [1])


def test_pair_arms_needs_the_seed_in_both_arms():
    with pytest.raises(KeyError):
        arms.pair_arms(A, B[:1], seed=1)
    with pytest.raises(ValueError):
        arms.pair_arms(A, [], seed=None)


# ---------------------------------------------------------------- routes over real event files

SIZE = 12
IDS = ["case_a", "case_b", "case_c", "case_d"]


def _dice(mask, prob):
    t, p = mask > 0.5, prob >= 0.5
    denom = t.sum() + p.sum()
    return 1.0 if denom == 0 else 2.0 * (t & p).sum() / denom


@pytest.fixture(scope="module")
def arm_logs(tmp_path_factory):
    """cond/{baseline,augmented}-seed{0,1}/logs/test with shared images; baseline lacks case_d,
    augmented lacks case_c; plus a seedless run in the version-1 (full) layout."""
    root = tmp_path_factory.mktemp("arm_logs")
    rng = np.random.default_rng(3)
    images = {sid: rng.random((SIZE, SIZE)) for sid in IDS}
    masks = {sid: rng.random((SIZE, SIZE)) > 0.5 for sid in IDS}
    logged = {}
    for arm_name, ids in (("baseline", IDS[:3]), ("augmented", [IDS[0], IDS[1], IDS[3]])):
        for seed in (0, 1):
            probs = rng.random((len(ids), SIZE, SIZE))
            dice = [_dice(masks[s], p) for s, p in zip(ids, probs)]
            summary.write_shared(root / "cond" / f"{arm_name}-seed{seed}" / "logs" / "test", root / "_test_images",
                                 7, np.stack([images[s] for s in ids]), np.stack([masks[s] for s in ids]),
                                 probs, ids, dice, tag="test/abnormal")
            logged[(arm_name, seed)] = dict(zip(ids, dice))
    with summary.SegmentationWriter(root / "single") as w:
        w.write(2, np.stack([images[s] for s in IDS]), np.stack([masks[s] for s in IDS]),
                rng.random((4, SIZE, SIZE)), IDS, [0.5, 0.6, 0.7, 0.8], tag="test/abnormal")
    provider = make_provider(root)
    client, _ = _app(provider, root)
    return root, client, provider, logged, images


BASE = "cond/baseline/logs/test"
AUG = "cond/augmented/logs/test"


def test_arms_route_groups_seeds_and_hides_shared_sources(arm_logs):
    _, client, _, _, _ = arm_logs
    body = _json(client, "/arms")
    assert body["tags"] == ["test/abnormal"]
    assert [a["arm"] for a in body["arms"]] == [AUG, BASE, "single"]
    assert [m["seed"] for m in body["arms"][0]["members"]] == [0, 1]
    assert body["arms"][0]["members"][1] == {"run": "cond/augmented-seed1/logs/test", "seed": 1,
                                             "tags": ["test/abnormal"]}
    assert body["ungrouped"] == []
    runs = [r["run"] for r in _json(client, "/runs")["runs"]]
    assert not any(r.startswith("_test_images") for r in runs) and len(runs) == 5


def test_arm_compare_seed_averaged(arm_logs):
    _, client, _, logged, _ = arm_logs
    body = _json(client, "/arm_compare", tag="test/abnormal", arm_a=BASE, arm_b=AUG)
    assert body["seed"] == "mean"
    assert body["a"]["display"]["run"] == "cond/baseline-seed0/logs/test" and body["a"]["display"]["step"] == 7
    assert body["a"]["seeds"] == [0, 1]
    rows = {r["id"]: r for r in body["rows"]}
    assert list(rows) == ["case_a", "case_b", "case_c", "case_d"]
    for sid in ("case_a", "case_b"):
        mean_a = (logged[("baseline", 0)][sid] + logged[("baseline", 1)][sid]) / 2
        mean_b = (logged[("augmented", 0)][sid] + logged[("augmented", 1)][sid]) / 2
        assert rows[sid]["dice_a"] == pytest.approx(mean_a)
        assert rows[sid]["delta"] == pytest.approx(mean_b - mean_a)
    assert rows["case_c"]["dice_b"] is None and rows["case_c"]["delta"] is None
    assert rows["case_d"]["dice_a"] is None and rows["case_d"]["index_b"] == 2
    assert body["only_a"] == ["case_c"] and body["only_b"] == ["case_d"]


def test_arm_compare_single_seed(arm_logs):
    _, client, _, logged, _ = arm_logs
    body = _json(client, "/arm_compare", tag="test/abnormal", arm_a=BASE, arm_b=AUG, seed="1")
    assert body["seed"] == 1 and body["b"]["display"]["run"] == "cond/augmented-seed1/logs/test"
    rows = {r["id"]: r for r in body["rows"]}
    assert rows["case_b"]["delta"] == pytest.approx(logged[("augmented", 1)]["case_b"] - logged[("baseline", 1)]["case_b"])


def test_images_of_the_display_runs_come_from_the_shared_source(arm_logs):
    _, client, _, _, images = arm_logs
    body = _json(client, "/arm_compare", tag="test/abnormal", arm_a=BASE, arm_b=AUG, seed="1")
    row = next(r for r in body["rows"] if r["id"] == "case_d")
    display = body["b"]["display"]
    pngs = {}
    for kind in metadata.KINDS:
        code, response = _get(client, "/image", run=display["run"], tag="test/abnormal", step=str(display["step"]),
                              index=str(row["index_b"]), kind=kind)
        assert code == 200, response.get_data(as_text=True)
        pngs[kind] = np.asarray(Image.open(io.BytesIO(response.get_data())))
    np.testing.assert_array_equal(pngs["image"], np.round(images["case_d"] * 255).astype(np.uint8))
    assert pngs["prediction"].shape == (SIZE, SIZE)


ARM_BAD_REQUESTS = [
    {"arm_a": BASE, "arm_b": AUG},  # missing tag
    {"tag": "test/abnormal", "arm_b": AUG},  # missing arm_a
    {"tag": "test/abnormal", "arm_a": "../cond", "arm_b": AUG},
    {"tag": "test/abnormal", "arm_a": BASE, "arm_b": "/etc"},
    {"tag": "<script>", "arm_a": BASE, "arm_b": AUG},
    {"tag": "test/abnormal", "arm_a": BASE, "arm_b": AUG, "seed": "-1"},
    {"tag": "test/abnormal", "arm_a": BASE, "arm_b": AUG, "seed": "1.5"},
    {"tag": "test/abnormal", "arm_a": BASE, "arm_b": AUG, "seed": "all"},
    {"tag": "test/abnormal", "arm_a": BASE, "arm_b": AUG, "seed": ["0", "1"]},
    {"tag": "test/abnormal", "arm_a": [BASE, AUG], "arm_b": AUG},
]


@pytest.mark.parametrize("params", ARM_BAD_REQUESTS)
def test_arm_compare_rejects_malformed_parameters(arm_logs, params):
    code, response = _get(arm_logs[1], "/arm_compare", **params)
    assert code == 400
    assert "error" in json.loads(response.get_data())


ARM_NOT_FOUND = [
    {"tag": "test/abnormal", "arm_a": "cond/nosuch/logs/test", "arm_b": AUG},
    {"tag": "test/normal", "arm_a": BASE, "arm_b": AUG},
    {"tag": "test/abnormal", "arm_a": BASE, "arm_b": AUG, "seed": "7"},
    {"tag": "test/abnormal", "arm_a": BASE, "arm_b": "single", "seed": "0"},  # a seedless arm has no seed 0
    {"tag": "test/abnormal", "arm_a": "cond/baseline-seed0/logs/test", "arm_b": AUG},  # a run, not an arm
]


@pytest.mark.parametrize("params", ARM_NOT_FOUND)
def test_arm_compare_absent_arms_or_seeds_get_404(arm_logs, params):
    code, _ = _get(arm_logs[1], "/arm_compare", **params)
    assert code == 404


def test_seedless_run_pairs_with_an_arm_in_mean_mode(arm_logs):
    _, _, provider, _, _ = arm_logs
    body = plugin_lib.compare_arms(provider, CTX, "", "test/abnormal", "single", BASE)
    assert body["a"]["display"]["seed"] is None
    assert [r["dice_a"] for r in body["rows"]][:3] == pytest.approx([0.5, 0.6, 0.7])


def test_missing_shared_source_is_a_404_with_a_hint(arm_logs, tmp_path):
    root = arm_logs[0]
    shutil.copytree(root / "cond", tmp_path / "cond")  # the runs without their _test_images folder
    client, _ = _app(make_provider(tmp_path), tmp_path)
    params = {"run": "cond/baseline-seed0/logs/test", "tag": "test/abnormal", "step": "7", "index": "0"}
    assert _get(client, "/image", **params, kind="prediction")[0] == 200
    code, response = _get(client, "/image", **params, kind="image")
    assert code == 404 and "_test_images" in json.loads(response.get_data())["error"]
