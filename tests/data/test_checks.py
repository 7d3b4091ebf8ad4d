import numpy as np
import pytest

from lung_keras import data
from tests.conftest import write_png


@pytest.fixture
def broken_dataset(make_pair_dataset):
    root = make_pair_dataset(n=8)
    (root / "images" / "case_000_0.png").write_bytes(b"not a png")  # unreadable
    (root / "masks" / "case_001_1.png").unlink()  # image without mask
    write_png(root / "masks" / "orphan.png", np.zeros((40, 48), np.uint8))  # mask without image
    write_png(root / "masks" / "case_002_0.png", np.zeros((20, 20), np.uint8))  # size mismatch
    write_png(root / "masks" / "case_003_1.png", np.arange(40 * 48).reshape(40, 48).astype(np.uint8))  # not binary
    write_png(root / "masks" / "case_004_0.png", np.zeros((40, 48), np.uint8))  # empty mask (error: loads empty)
    write_png(root / "images" / "case_005_1.png", np.full((40, 48), 7, np.uint8))  # constant image (warning)
    return root


def test_report_lists_every_problem(broken_dataset):
    report = data.check_dataset(broken_dataset)
    kinds = {(p.kind, p.path.split("/")[-1]) for p in report.problems}
    assert kinds == {
        ("unreadable", "case_000_0.png"),
        ("image without mask", "case_001_1.png"),
        ("mask without image", "orphan.png"),
        ("size mismatch", "case_002_0.png"),
        ("mask not binary", "case_003_1.png"),
        ("empty mask", "case_004_0.png"),
        ("constant image", "case_005_1.png"),
    }
    assert not report.ok
    # Warnings do not drop samples: 8 pairs - 1 without mask = 7 pairs; 4 fatal -> 3 valid.
    assert report.num_samples == 7
    assert sorted(s.id for s in report.valid_samples) == ["case_005_1", "case_006_0", "case_007_1"]


def test_loader_raises_one_error_naming_files(broken_dataset):
    with pytest.raises(data.DatasetError) as info:
        data.load_dataset(broken_dataset)
    message = str(info.value)
    for name in ("case_000_0.png", "case_001_1.png", "orphan.png", "case_002_0.png", "case_003_1.png", "case_004_0.png"):
        assert name in message
    assert "skip_invalid" in message


def test_loader_skip_warns_with_list(broken_dataset):
    with pytest.warns(UserWarning, match="case_000_0.png"):
        ds = data.load_dataset(broken_dataset, skip_invalid=True)
    assert len(ds) == 3


def test_clean_dataset_passes(make_pair_dataset):
    report = data.check_dataset(make_pair_dataset(n=3))
    assert report.ok and report.problems == [] and len(report.valid_samples) == 3


def test_cli_check_exit_codes(broken_dataset, make_pair_dataset, capsys):
    from lung_keras.cli import main

    assert main(["data", "check", str(broken_dataset)]) == 1
    out = capsys.readouterr().out
    assert "unreadable" in out and "6 error(s), 1 warning(s)" in out
    assert main(["data", "check", str(make_pair_dataset(n=2, name="clean"))]) == 0


def _nlm_case(root, stem, left, right):
    image = (np.arange(32 * 32).reshape(32, 32) % 251).astype(np.uint8)
    write_png(root / "CXR_png" / f"{stem}.png", image)
    write_png(root / "ManualMask" / "leftMask" / f"{stem}.png", left)
    write_png(root / "ManualMask" / "rightMask" / f"{stem}.png", right)


def test_nlm_one_empty_lung_mask_is_allowed_but_not_two(tmp_path):
    # One lung absent (pneumonectomy, collapse) is a real case; a pair with no lung pixel at all is not.
    lung = np.zeros((32, 32), np.uint8)
    lung[8:24, 4:12] = 255
    empty = np.zeros((32, 32), np.uint8)
    _nlm_case(tmp_path, "MCUCXR_0001_0", lung, empty)
    _nlm_case(tmp_path, "MCUCXR_0002_1", empty, empty)
    report = data.check_dataset(tmp_path)
    assert [(p.kind, p.path.count("MCUCXR_0002_1")) for p in report.problems] == [("empty mask", 2)]
    _, mask = data.load_sample(report.valid_samples[0], (32, 32))
    assert mask.sum() == 16 * 8
