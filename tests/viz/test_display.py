import numpy as np
import pytest
from PIL import Image

from lung_keras.viz import as_binary_mask
from lung_keras.viz import as_display_image
from lung_keras.viz import dice_np
from lung_keras.viz import display
from lung_keras.viz import grid_to_array
from lung_keras.viz import overlay_contours
from lung_keras.viz import segmentation_grid
from lung_keras.viz import show_predictions


def _sample(h=32, w=32):
    yy, xx = np.mgrid[:h, :w]
    image = (xx / (w - 1)).astype("float32")  # horizontal ramp in [0, 1]
    mask = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (h / 4) ** 2).astype("uint8")
    return image, mask


def _shown(ax):
    return np.asarray(ax.get_images()[0].get_array())


# [mask input, expected binary] -- encodings users feed in
MASK_CASES = [
    [np.array([[0, 255], [255, 0]], "uint8"), [[0, 1], [1, 0]]],  # 0/255 PNG mask
    [np.array([[0, 1], [1, 0]], "int32"), [[0, 1], [1, 0]]],  # 0/1 labels
    # probabilities: foreground where >= 0.5, as lung_keras.metrics counts it
    [np.array([[0.2, 0.7], [0.5, 0.49]], "float32")[..., None], [[0, 1], [1, 0]]],
    [np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.3, 0.7], [0.6, 0.4]]]), [[0, 1], [1, 0]]],  # per-class, argmax
    [np.array([[True, False], [False, False]])[None, ..., None], [[1, 0], [0, 0]]],  # batch of 1
]


@pytest.mark.parametrize("mask, expected", MASK_CASES)
def test_as_binary_mask_encodings(mask, expected):
    np.testing.assert_array_equal(as_binary_mask(mask), np.array(expected, bool))


# [image, expected display values]
IMAGE_CASES = [
    [np.array([[0, 255]], "uint8"), [[0.0, 1.0]]],
    [np.array([[0.0, 0.5]], "float32"), [[0.0, 0.5]]],
    [np.array([[0.0, 127.5]], "float32")[..., None], [[0.0, 0.5]]],  # float 0..255
    [np.array([[-1.0, 1.0]], "float32"), [[0.0, 1.0]]],  # standardized -> min-max
]


@pytest.mark.parametrize("image, expected", IMAGE_CASES)
def test_as_display_image_ranges(image, expected):
    np.testing.assert_allclose(as_display_image(image), expected)


def test_as_display_image_rejects_bad_shape():
    with pytest.raises(ValueError, match="Received: shape"):
        as_display_image(np.zeros((4, 4, 2)))


# [true, pred, expected dice]; 2*|A&B| / (|A|+|B|)
DICE_CASES = [
    [[1, 1, 0, 0], [1, 0, 0, 0], 2 * 1 / (2 + 1)],  # 0.6667
    [[1, 1, 0, 0], [0, 0, 1, 1], 0.0],
    [[0, 0, 0, 0], [0, 0, 0, 0], 1.0],  # both empty -> empty_score
    [[1, 1, 1, 0], [1, 1, 1, 0], 1.0],
]


@pytest.mark.parametrize("true, pred, expected", DICE_CASES)
def test_dice_np(true, pred, expected):
    assert dice_np(true, pred) == pytest.approx(expected)


def test_display_tutorial_style_panels_and_overlay(tmp_path):
    image, mask = _sample()
    pred = np.roll(mask, 2, axis=1).astype("float32")[..., None] * 0.8  # probabilities
    path = tmp_path / "d.png"
    fig = display([image[..., None], mask, pred], path=path)
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes][:3] == ["Input Image", "True Mask", "Predicted Mask"]
    expected_dice = dice_np(mask > 0, pred[..., 0] >= 0.5)
    assert axes[3].get_title() == f"Overlay (Dice {expected_dice:.3f})"
    np.testing.assert_array_equal(_shown(axes[1]), mask > 0)
    np.testing.assert_array_equal(_shown(axes[2]), pred[..., 0] >= 0.5)
    # overlay: image + one fill per mask, an outline per mask, legend true/pred
    assert len(axes[3].get_images()) == 3
    assert [t.get_text() for t in axes[3].get_legend().get_texts()] == ["true", "pred", "overlap"]
    png = np.asarray(Image.open(path).convert("RGB")).astype(int)
    # green and red outlines are visible in the saved file
    assert ((png[..., 1] > 150) & (png[..., 0] < 80)).sum() > 20
    assert ((png[..., 0] > 200) & (png[..., 1] < 80)).sum() > 20


def test_overlap_colour_has_a_legend_entry_only_when_masks_overlap():
    from matplotlib.colors import to_rgb

    from lung_keras.viz.overlay import DEFAULT_COLORS
    from lung_keras.viz.overlay import overlap_color

    image, mask = _sample()
    fig = display([image, mask, np.roll(mask, 2, axis=1)])
    legend = fig.get_axes()[3].get_legend()
    patch = legend.get_patches()[-1]
    # 0.5 grey, then green #00d000 = (0, .816, 0) at 0.25, then red #ff2020 = (1, .125, .125) at 0.25:
    # R (.5*.75 + 0)*.75 + .25 = .531; G (.5*.75 + .25*.816)*.75 + .25*.125 = .466; B .375*.75 + .031 = .313
    expected = overlap_color(DEFAULT_COLORS[0], DEFAULT_COLORS[1], 0.25)
    np.testing.assert_allclose(to_rgb(patch.get_facecolor()), expected, atol=1e-6)
    np.testing.assert_allclose(expected, [0.531, 0.466, 0.313], atol=1e-3)
    disjoint = np.zeros_like(mask)
    disjoint[:3, :3] = 1
    assert mask[:3, :3].sum() == 0
    labels = [t.get_text() for t in display([image, mask, disjoint]).get_axes()[3].get_legend().get_texts()]
    assert labels == ["true", "pred"]


def test_display_without_overlay_and_custom_titles_and_rgb_image():
    image, mask = _sample()
    rgb = np.repeat(image[..., None], 3, -1)
    fig = display([rgb, mask], titles=["x", "y"], overlay=False)
    assert [ax.get_title() for ax in fig.get_axes()] == ["x", "y"]
    assert _shown(fig.get_axes()[0]).shape == (32, 32, 3)


def test_display_accepts_tensors():
    keras = pytest.importorskip("keras")
    image, mask = _sample()
    fig = display([keras.ops.convert_to_tensor(image), keras.ops.convert_to_tensor(mask)])
    np.testing.assert_array_equal(_shown(fig.get_axes()[1]), mask > 0)


def test_display_errors():
    image, mask = _sample()
    with pytest.raises(ValueError, match="title"):
        display([image, mask], titles=["only one"])
    with pytest.raises(ValueError, match="does not match"):
        display([image, mask[:10]])


def test_overlay_contours_empty_mask_no_warning_and_color_check():
    import warnings

    from lung_keras.viz._figure import new_figure

    image, _ = _sample()
    ax = new_figure((2, 2)).subplots()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        overlay_contours(ax, image, [np.zeros((32, 32))], labels=["empty"])
    with pytest.raises(ValueError, match="colour"):
        overlay_contours(ax, image, [image, image], colors=["red"])


def test_segmentation_grid_rows_captions_and_array(tmp_path):
    image, mask = _sample()
    images = np.stack([image, image, image])
    masks = np.stack([mask, mask, np.zeros_like(mask)])
    preds = np.stack([mask, np.roll(mask, 4, 0), np.zeros_like(mask)]).astype("float32")
    fig = segmentation_grid(images, masks, preds, ids=["a", "b", "c"], path=tmp_path / "g.png")
    axes = np.array(fig.get_axes()).reshape(3, 4)
    d_b = dice_np(mask, np.roll(mask, 4, 0))
    assert [ax.get_title() for ax in axes[:, 3]] == ["a  Dice 1.000", f"b  Dice {d_b:.3f}", "c  Dice 1.000"]
    fig2 = segmentation_grid(images[:1], masks[:1], preds[:1], ids=["a"], dice=[0.25])
    assert fig2.get_axes()[3].get_title() == "a  Dice 0.250"
    arr = grid_to_array(fig2)
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
    w, h = fig2.get_size_inches() * fig2.dpi
    assert arr.shape[:2] == (round(h), round(w))
    with pytest.raises(ValueError, match="same length"):
        segmentation_grid(images, masks[:2], preds)


class _ThresholdModel:
    """Predicts `image > 0.5` as probabilities 0.9 / 0.1 (deterministic)."""

    def predict(self, x, verbose=0):
        x = np.asarray(x, "float32")
        return np.where(x > 0.5, 0.9, 0.1)[..., :1] if x.ndim == 4 else np.where(x > 0.5, 0.9, 0.1)[..., None]


def test_show_predictions_arrays_and_paths(tmp_path):
    image, mask = _sample()
    images = np.stack([image] * 4)[..., None]
    masks = np.stack([mask] * 4)[..., None]
    figs = show_predictions(_ThresholdModel(), (images, masks), num=2, path=tmp_path / "p.png")
    assert len(figs) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p_0.png", "p_1.png"]
    np.testing.assert_array_equal(_shown(figs[0].get_axes()[2]), image > 0.5)


def test_show_predictions_from_tf_dataset():
    tf = pytest.importorskip("tensorflow")
    image, mask = _sample()
    ds = tf.data.Dataset.from_tensor_slices((np.stack([image] * 5)[..., None], np.stack([mask] * 5)[..., None]))
    figs = show_predictions(_ThresholdModel(), ds.batch(2), num=3)
    assert len(figs) == 3
    assert [ax.get_title() for ax in figs[0].get_axes()][:3] == ["Input Image", "True Mask", "Predicted Mask"]


def test_segmentation_grid_array_layout_and_colours():
    from lung_keras.viz import overlay_array
    from lung_keras.viz import segmentation_grid_array

    image, mask = _sample()  # 32 x 32 -> scale 4 -> 128 px panels
    pred = np.zeros_like(mask)
    arr = segmentation_grid_array(image[None], mask[None], pred[None].astype("float32"), ids=["a"])
    assert arr.dtype == np.uint8
    # 524 px wide -> 17 px captions (1/30 of the width) in 26 px strips: a column header, then the row's caption.
    assert arr.shape == (26 + 26 + 128, 4 * 128 + 3 * 4, 3)
    assert (arr[:52] < 128).any()  # caption text drawn
    panel = lambda c: arr[52:, c * 132 : c * 132 + 128]  # noqa: E731
    np.testing.assert_array_equal(panel(1)[::4, ::4, 0] > 0, mask > 0)  # true mask panel, upscaled
    assert panel(2).max() == 0  # empty prediction
    ov = overlay_array(image, mask > 0, None)
    outline = (mask > 0) & ~np.roll(mask > 0, 1, 0)  # top edge pixels are on the outline
    np.testing.assert_array_equal(ov[outline][0], [0, 208, 0])
    inside = (mask > 0) & ~_outline_pixels(mask > 0)
    assert (ov[inside][:, 1] > ov[inside][:, 0]).all()  # green tint inside the true mask
    outside = mask == 0
    np.testing.assert_array_equal(ov[outside][:, 0], (image * 255).astype(np.uint8)[outside])  # untouched


def _text_height(strip):
    """Height in pixels of the dark text in a caption strip."""
    rows = np.flatnonzero((strip.min(axis=-1) < 160).any(axis=1))
    return 0 if rows.size == 0 else rows[-1] - rows[0] + 1


@pytest.mark.parametrize("size", [32, 128, 256])
def test_grid_captions_scale_with_the_image(size):
    """Caption text stays a fixed fraction of the grid width, so it is legible when TensorBoard fits the grid
    to its card (at 400 px wide a Dice caption is still >= 9 px tall)."""
    from lung_keras.viz import segmentation_grid_array

    rng = np.random.default_rng(0)
    mask = np.zeros((2, size, size), "float32")
    mask[:, size // 4 : size // 2, size // 4 : size // 2] = 1
    arr = segmentation_grid_array(rng.random((2, size, size)), mask, mask, ids=["MCUCXR_0001_0", "b"], dice=[0.9, 0.8])
    width = arr.shape[1]
    scale = max(1, -(-128 // size))
    strip = (arr.shape[0] - 2 * size * scale) // 3  # header + two captions
    header, caption = arr[:strip], arr[strip : 2 * strip]
    for part in (header, caption):
        assert _text_height(part) >= width / 55, (_text_height(part), width)  # digits/capitals ~ 0.7 em
    assert _text_height(caption) * 400 / width >= 9


def test_long_ids_shrink_to_fit_the_caption():
    from lung_keras.viz import segmentation_grid_array

    sid = "x" * 200
    mask = np.zeros((1, 32, 32), "float32")
    arr = segmentation_grid_array(np.zeros((1, 32, 32)), mask, mask, ids=[sid], dice=[1.0])
    caption = arr[26:52]
    assert (caption[:, -2:] > 200).all()  # the text stops before the right edge
    assert _text_height(caption) >= 6  # shortened in the middle rather than shrunk to nothing


def _outline_pixels(m):
    p = np.pad(m, 1)
    return m & ~(p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:])
