import numpy as np
import pytest

from lung_keras import data
from tests.conftest import write_png


def test_folder_layout_matches_by_stem(make_pair_dataset):
    root = make_pair_dataset(n=4)
    listing = data.find_pairs(root)
    assert listing.layout == "folder"
    assert [s.id for s in listing.samples] == ["case_000_0", "case_001_1", "case_002_0", "case_003_1"]
    # NLM-style `_0`/`_1` suffix gives the diagnosis when no manifest says otherwise.
    assert [s.diagnosis for s in listing.samples] == ["normal", "abnormal", "normal", "abnormal"]


def test_mask_suffix_convention(make_pair_dataset):
    root = make_pair_dataset(n=3, mask_suffix="_mask")
    listing = data.find_pairs(root)
    assert len(listing.samples) == 3
    assert listing.samples[0].mask_paths[0].name == "case_000_0_mask.png"


def test_manifest_overrides_diagnosis(make_pair_dataset):
    root = make_pair_dataset(n=2)
    (root / "manifest.csv").write_text("id,diagnosis\ncase_000_0,abnormal\ncase_001_1,normal\n")
    assert [s.diagnosis for s in data.find_pairs(root).samples] == ["abnormal", "normal"]


def test_nlm_layout_merges_left_and_right(tmp_path):
    root = tmp_path / "MontgomerySet"
    image = np.full((30, 40), 100, np.uint8)
    left = np.zeros((30, 40), np.uint8)
    left[5:25, 2:15] = 255
    right = np.zeros((30, 40), np.uint8)
    right[5:25, 25:38] = 255
    write_png(root / "CXR_png" / "MCUCXR_0001_0.png", image)
    write_png(root / "ManualMask" / "leftMask" / "MCUCXR_0001_0.png", left)
    write_png(root / "ManualMask" / "rightMask" / "MCUCXR_0001_0.png", right)
    # The archive unpacks into one sub-folder: the parent works too.
    listing = data.find_pairs(tmp_path)
    assert listing.layout == "nlm" and len(listing.samples) == 1
    _, mask = data.load_sample(listing.samples[0])
    assert mask.shape == (30, 40, 1)
    np.testing.assert_array_equal(mask[..., 0], ((left > 0) | (right > 0)).astype(np.float32))


def test_missing_layout_names_the_folder(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(FileNotFoundError, match="images/"):
        data.find_pairs(tmp_path)


def test_montgomery_real_set(montgomery_dir):
    listing = data.find_pairs(montgomery_dir)
    assert len(listing.samples) == 138
    counts = {d: sum(s.diagnosis == d for s in listing.samples) for d in ("normal", "abnormal")}
    assert counts == {"normal": 80, "abnormal": 58}
