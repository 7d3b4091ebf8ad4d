"""Post-processing of predicted masks: worked masks (speck removed, hole filled, two lungs kept)."""

import numpy as np
import pytest

from lung_keras.postprocess import fill_holes
from lung_keras.postprocess import keep_largest_components
from lung_keras.postprocess import postprocess_masks


def two_lungs(size=20):
    m = np.zeros((size, size), np.uint8)
    m[3:17, 2:8] = 1  # left lung, 14 x 6 = 84 px
    m[3:15, 12:18] = 1  # right lung, 12 x 6 = 72 px
    return m


def test_a_speck_is_removed_and_both_lungs_kept():
    m = two_lungs()
    noisy = m.copy()
    noisy[0, 19] = 1  # a 1-pixel speck outside the chest
    noisy[18:20, 0:2] = 1  # a 4-pixel blob
    out = keep_largest_components(noisy)
    np.testing.assert_array_equal(out, m)


def test_a_hole_is_filled():
    m = two_lungs()
    holed = m.copy()
    holed[8:10, 4:6] = 0  # a dense opacity left unsegmented inside the left lung
    np.testing.assert_array_equal(fill_holes(holed), m)


def test_a_notch_open_to_the_background_is_not_a_hole():
    m = two_lungs()
    m[3:6, 4] = 0  # open to the top edge of the lung
    np.testing.assert_array_equal(fill_holes(m), m)


def test_diagonal_neighbours_are_separate_components_by_default():
    m = np.zeros((6, 6), np.uint8)
    m[0:2, 0:2] = 1
    m[2, 2] = 1  # touches the first region only diagonally
    m[4:6, 4:6] = 1
    assert keep_largest_components(m, 2).sum() == 8
    assert keep_largest_components(m, 2, connectivity=2).sum() == 9


def test_postprocess_masks_thresholds_and_cleans_a_batch():
    probs = np.zeros((2, 20, 20, 1), np.float32)
    probs[0, ..., 0] = two_lungs() * 0.9
    probs[0, 8:10, 4:6, 0] = 0.2  # hole
    probs[0, 0, 19, 0] = 0.8  # speck
    probs[1, ..., 0] = 0.49  # below threshold everywhere
    out = postprocess_masks(probs)
    assert out.shape == probs.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out[0, ..., 0], two_lungs())
    assert out[1].sum() == 0


def test_invalid_input():
    with pytest.raises(ValueError, match="2-D mask"):
        keep_largest_components(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="num_components"):
        keep_largest_components(np.zeros((3, 3)), 0)
    with pytest.raises(ValueError, match="one channel"):
        postprocess_masks(np.zeros((1, 4, 4, 2)))
