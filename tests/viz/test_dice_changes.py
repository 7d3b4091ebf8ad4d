"""Figures of the images whose Dice changed most between two arms."""

import numpy as np
import pytest

from lung_keras.viz import dice_change_figure
from lung_keras.viz import dice_change_figures
from lung_keras.viz import largest_changes

CHANGE_CASES = [
    # [dice_a, dice_b, k, (gains, losses)]
    # differences +0.4, -0.3, 0, +0.05: one loss, no tie counted as a change
    [[0.5, 0.9, 0.7, 0.8], [0.9, 0.6, 0.7, 0.85], 3, ([0, 3], [1])],
    # differences +0.1, +0.1, +0.2, -0.1, -0.2: ties keep the input order; k caps each side
    [[0.5, 0.5, 0.5, 0.5, 0.5], [0.6, 0.6, 0.7, 0.4, 0.3], 2, ([2, 0], [4, 3])],
    [[0.5, np.nan], [0.5, 0.9], 3, ([], [])],  # NaN differences are skipped
]


@pytest.mark.parametrize("dice_a, dice_b, k, expected", CHANGE_CASES)
def test_largest_changes(dice_a, dice_b, k, expected):
    assert largest_changes(dice_a, dice_b, k) == expected


def test_largest_changes_validates():
    with pytest.raises(ValueError, match="same length"):
        largest_changes([0.1], [0.1, 0.2])
    with pytest.raises(ValueError, match="k must"):
        largest_changes([0.1], [0.2], k=0)


def _set(n=5, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, size, size, 1)), (rng.random((n, size, size, 1)) > 0.5).astype("float32"),
            [f"img{i}" for i in range(n)])


def test_dice_change_figure_rows_and_titles(tmp_path):
    x, y, ids = _set(2)
    fig = dice_change_figure(x, y, y, 1 - y, ids, [0.5, 0.9], [0.8, 0.1], labels=("baseline", "augmented"),
                             row_labels=["gain", "loss"], path=tmp_path / "f.png")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:4] == ["gain img0", "true mask  \u0394 +0.300", "baseline  Dice 0.500", "augmented  Dice 0.800"]
    assert titles[4] == "loss img1" and (tmp_path / "f.png").is_file()
    with pytest.raises(ValueError, match="preds_b"):
        dice_change_figure(x, y, y, y[:1], ids, [1, 1], [1, 1])


def test_dice_change_figures_caption_links_to_the_dashboard(tmp_path):
    pytest.importorskip("lung_keras_tb")
    x, y, ids = _set(5)
    entry = {"train": "train=all", "test_set": "test (abnormal)", "arms": {
        "baseline": {"per_image": {"ids": ids, "dice": [0.5, 0.5, 0.5, 0.5, 0.5]}},
        "augmented": {"per_image": {"ids": ids, "dice": [0.9, 0.5, 0.4, 0.45, 0.6]}},
    }}
    preds = {("test (abnormal)", "baseline"): (x, y, y, ids), ("test (abnormal)", "augmented"): (x, y, y, ids)}
    figures = dice_change_figures(tmp_path, [entry], preds, ("baseline", "augmented"),
                                  lambda arm: f"train-all/{arm}", lambda s: s.replace(" ", "_"))
    [(caption, path)] = figures.items()
    assert path == "figures/changes_train=all_|_test_(abnormal).png" and (tmp_path / path).is_file()
    assert "top 2 gains and 2 losses of augmented \u2212 baseline" in caption
    assert caption.endswith("http://127.0.0.1:6006/#lung_segmentation&seg_view=arms&seg_tag=test%2Fabnormal"
                            "&seg_a=train-all%2Fbaseline%2Flogs%2Ftest&seg_b=train-all%2Faugmented%2Flogs%2Ftest"
                            "&seg_seed=mean&seg_sort=abs&seg_image=img0")
