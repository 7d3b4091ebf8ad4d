"""`preview`'s figure: labelled columns and, under every draw, the parameters sampled for it."""

import numpy as np
import pytest

from lung_keras.augment import offline

# [params as the manifest records them, caption]
DESCRIBE_CASES = [
    # Applied steps only, one line each; arrays (matrix) and bookkeeping keys left out; angle -> rot.
    [{"apply": True, "steps": [
        {"apply": True, "angle": 10.0, "matrix": [[1, 0, 0]], "transform": "Rotate"},
        {"apply": True, "matrix": [[-1, 0, 15]], "transform": "HorizontalFlip"},
        {"apply": False, "gamma": 1.18, "transform": "RandomGamma"},
    ]}, "Rotate rot=10\nHFlip"],
    # Affine: rotation, scale, shear, translation in that order, two per line; 3 significant digits.
    [{"apply": True, "steps": [
        {"translate_x": -3.0, "translate_y": 2.0, "shear_x": -4.259474, "shear_y": 3.805467, "scale_x": 0.989914,
         "scale_y": 1.045128, "rotate": 3.481798, "apply": True, "transform": "Affine"},
        {"std": 0.03842, "mean": 0.0, "noise": {"omitted_array_shape": [32, 32, 1]}, "apply": True,
         "transform": "GaussNoise"},
    ]}, "Affine rot=3.48 sx=0.99\n  sy=1.05 shx=-4.26\n  shy=3.81 tx=-3\n  ty=2\nNoise std=0.0384"],
    # The whole policy skipped, or every step skipped: identity.
    [{"apply": False, "steps": [{"apply": True, "angle": 5.0, "transform": "Rotate"}]}, "identity"],
    [{"apply": True, "steps": [{"apply": False, "alpha": 1.2, "beta": 0.1, "transform": "RandomBrightnessContrast"}]},
     "identity"],
    # A single layer (no steps) and a nested OneOf-like container.
    [{"apply": True, "gamma": 0.8, "transform": "RandomGamma"}, "Gamma g=0.8"],
    [{"apply": True, "steps": [{"apply": True, "transform": "OneOf", "steps": [
        {"apply": True, "sigma": 0.5, "transform": "GaussianBlur"}]}]}, "Blur s=0.5"],
]


@pytest.mark.parametrize("params, caption", DESCRIBE_CASES)
def test_describe_draw(params, caption):
    assert offline.describe_draw(params) == caption


def test_preview_titles_columns_and_captions_each_draw(make_pair_dataset, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from lung_keras import augment

    data = make_pair_dataset(n=3, size=(24, 24))
    policy = augment.Compose([augment.Rotate(limit=(10, 10), p=1.0), augment.RandomGamma(p=0.0)], seed=0)
    figures = []
    save = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (figures.append(self), save(self, *a, **k))[1])
    out = offline.preview(policy, data, tmp_path / "grid.png", num_samples=2, num_draws=3, seed=1)
    assert out.is_file()
    (fig,) = figures
    axes = np.asarray(fig.axes).reshape(2, 4)
    for row in axes:
        title = row[0].get_title()
        assert title.startswith("original\ncase_") and row[0].title.get_fontsize() >= 9
        assert [ax.get_title() for ax in row[1:]] == ["draw 1", "draw 2", "draw 3"]
        for ax in row[1:]:
            (text,) = ax.texts
            assert text.get_text() == "Rotate rot=10" and text.get_fontsize() >= 7
        assert len(row[0].texts) == 0  # the original has no parameters
