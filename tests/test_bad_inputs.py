"""Nothing lost, nothing silent: every bad input a user met gives a clear error naming the file or argument,
and nothing is written (no run folder, no output folder left behind).

One test per row of the bad-input table. Rows a user meets on the command line run `lung-keras ...` in a
subprocess and assert exit code 2, the message on stderr and no traceback; the others call the library.
"""

import json
import pathlib
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from lung_keras import data
from tests.conftest import write_png

H, W = 24, 32
# The lung rectangle of every synthetic mask: rows 6..17, columns 4..15 -> 12 * 12 = 144 lung pixels.
LUNG = (slice(6, 18), slice(4, 16))
LUNG_PIXELS = 144


# --------------------------------------------------------------------------------------------------
# Helpers


def _lung(value=255, dtype=np.uint8, background=0):
    mask = np.full((H, W), background, dtype)
    mask[LUNG] = value
    return mask


def _save(path, array, mode=None):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    (Image.fromarray(array, mode=mode) if mode else Image.fromarray(array)).save(path)
    return path


def _dataset(root, n=6, mask=None, image=None):
    """`images/` + `masks/` with `n` pairs `case_00i_<0|1>`; `mask(i)` / `image(i)` override the arrays."""
    rng = np.random.default_rng(0)
    for i in range(n):
        stem = f"case_{i:03d}_{i % 2}"
        write_png(root / "images" / f"{stem}.png", image(i) if image else rng.integers(0, 256, (H, W), np.uint8))
        write_png(root / "masks" / f"{stem}.png", mask(i) if mask else _lung())
    return root


def _cli(*args, cwd):
    """Run `lung-keras ARGS` as a user does (the console script beside this Python, else `-m lung_keras.cli`)."""
    script = pathlib.Path(sys.executable).parent / "lung-keras"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "lung_keras.cli"]
    return subprocess.run(command + [str(a) for a in args], capture_output=True, text=True, timeout=600, cwd=cwd)


def _user_error(result, *needles):
    """Exit code 2, every needle on stderr, no traceback; returns the `error:` line(s) a user sees."""
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-4000:])
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr[-4000:])
    start = result.stderr.index("lung-keras ")
    return result.stderr[start:].strip()


def _files(root):
    return sorted(str(p.relative_to(root)) for p in pathlib.Path(root).rglob("*"))


def _png_declaring(path, width, height):
    """A valid PNG header declaring `width` x `height` 8-bit grey pixels, with one compressed row of data."""

    def chunk(tag, payload):
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = zlib.compress(b"\x00" * (width + 1), 9)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", row) + chunk(b"IEND", b""))
    return path


def _identity_policy():
    from lung_keras.augment import Compose
    from lung_keras.augment import HorizontalFlip

    return Compose([HorizontalFlip(p=0.0)])


def _train_args(ds, tmp_path, *extra):
    return ("train", "--data", ds, "--out", tmp_path / "runs", "--epochs", 1, "--image-size", 16, "--quiet", *extra)


# --------------------------------------------------------------------------------------------------
# Masks that used to load empty now load with the right foreground


def _rgba_alpha_lung():
    rgba = np.zeros((H, W, 4), np.uint8)  # black everywhere; the lung is drawn in alpha only
    rgba[..., 3][LUNG] = 255
    return rgba


def _la_alpha_lung():
    la = np.full((H, W, 2), 255, np.uint8)  # white everywhere, opaque lung
    la[..., 1] = 0
    la[..., 1][LUNG] = 255
    return la


def _red_rgb():
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0][LUNG] = 255
    return rgb


def _palette():
    image = Image.fromarray(_lung(value=1), mode="L").convert("P")
    image.putpalette([0, 0, 0, 0, 128, 0] + [0, 0, 0] * 254)  # index 0 black, index 1 green
    return image


# name -> writer of a mask file whose lung is the LUNG rectangle
MASK_ENCODINGS = {
    "zero_hundred": lambda p: _save(p, _lung(value=100)),  # {0, 100}: loaded empty before (threshold 127)
    "zero_one": lambda p: _save(p, _lung(value=1)),
    "zero_65535": lambda p: _save(p, _lung(value=65535, dtype=np.uint16)),
    "red_rgb": lambda p: _save(p, _red_rgb()),  # luma of red is 76: loaded empty before
    "alpha_rgba": lambda p: _save(p, _rgba_alpha_lung(), mode="RGBA"),  # alpha was dropped before
    "alpha_la": lambda p: _save(p, _la_alpha_lung(), mode="LA"),
    "palette": lambda p: _palette().save(p),
}


@pytest.mark.parametrize("encoding", sorted(MASK_ENCODINGS))
def test_mask_encodings_load_with_their_lung(tmp_path, encoding):
    ds = _dataset(tmp_path / "ds", n=2)
    for i in range(2):
        MASK_ENCODINGS[encoding](ds / "masks" / f"case_{i:03d}_{i % 2}.png")
    assert data.read_mask(ds / "masks" / "case_000_0.png").sum() == LUNG_PIXELS
    x, y = data.load_arrays(data.load_dataset(ds), (H, W))
    assert y.shape == (2, H, W, 1) and y.sum() == 2 * LUNG_PIXELS


@pytest.mark.parametrize("encoding", ["zero_hundred", "red_rgb", "alpha_rgba"])
def test_mask_encodings_pass_data_check_and_augment_alike(tmp_path, encoding):
    from lung_keras.augment.offline import expand_dataset

    ds = _dataset(tmp_path / "ds", n=2)
    for i in range(2):
        MASK_ENCODINGS[encoding](ds / "masks" / f"case_{i:03d}_{i % 2}.png")
    check = _cli("data", "check", ds, cwd=tmp_path)
    assert check.returncode == 0 and "0 error(s), 0 warning(s)" in check.stdout, check.stdout + check.stderr
    out = tmp_path / "aug"
    expand_dataset(ds, out, copies=1, policy=_identity_policy(), seed=0, progress=False)
    written = np.asarray(Image.open(out / "masks" / "case_000_0_aug000.png"))
    assert (written == 255).sum() == LUNG_PIXELS and set(np.unique(written)) == {0, 255}


def test_zero_one_masks_through_tf_data_are_not_empty(tmp_path):
    pytest.importorskip("tensorflow")
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.data path needs the TensorFlow backend")
    ds = _dataset(tmp_path / "ds", n=3, mask=lambda i: _lung(value=1))
    samples = data.load_dataset(ds).samples
    batches = list(data.make_tf_dataset(samples, (H, W), batch_size=3).as_numpy_iterator())
    x_tf, y_tf = batches[0]
    assert y_tf.sum() == 3 * LUNG_PIXELS  # was 0: {0, 1} masks were thresholded at 0.5 after /65535
    x_np, y_np = data.load_arrays(samples, (H, W))
    np.testing.assert_array_equal(y_tf, y_np)
    np.testing.assert_array_equal(x_tf, x_np)


# --------------------------------------------------------------------------------------------------
# Soft and empty masks


def _soft(i):
    mask = _lung()
    mask[5, 4:16] = 128  # an anti-aliased edge row above the lung: three levels {0, 128, 255}
    return mask


def test_soft_mask_is_rejected_naming_the_file(tmp_path):
    ds = _dataset(tmp_path / "ds", mask=_soft)
    result = _cli(*_train_args(ds, tmp_path), cwd=tmp_path)
    message = _user_error(result, "case_000_0.png", "mask not binary", "3 levels: 0, 128, 255", "--binarize-threshold")
    assert "lung-keras train: error:" in message
    assert not (tmp_path / "runs").exists()
    with pytest.raises(data.MaskError, match=r"case_000_0\.png: mask not binary"):
        data.read_mask(ds / "masks" / "case_000_0.png")


def test_soft_mask_is_accepted_with_a_binarize_threshold(tmp_path):
    ds = _dataset(tmp_path / "ds", mask=_soft)
    # 0.5 of 255 is 127.5: the 128 edge row (12 pixels) is lung too.
    assert data.read_mask(ds / "masks" / "case_000_0.png", binarize_threshold=0.5).sum() == LUNG_PIXELS + 12
    assert data.read_mask(ds / "masks" / "case_000_0.png", binarize_threshold=0.6).sum() == LUNG_PIXELS
    dataset = data.load_dataset(ds, binarize_threshold=0.5)
    _, y = data.load_arrays(dataset.samples, (H, W))  # the threshold travels with the samples
    assert y.sum() == 6 * (LUNG_PIXELS + 12)
    check = _cli("data", "check", ds, "--binarize-threshold", 0.5, cwd=tmp_path)
    assert check.returncode == 0 and "0 error(s)" in check.stdout, check.stdout + check.stderr


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, float("nan"), "0.5", True])
def test_binarize_threshold_out_of_range_names_the_argument(tmp_path, bad):
    ds = _dataset(tmp_path / "ds", n=1)
    with pytest.raises(ValueError, match=r"binarize_threshold.*Received: binarize_threshold="):
        data.load_dataset(ds, binarize_threshold=bad)


def test_empty_mask_is_an_error_naming_the_file(tmp_path):
    ds = _dataset(tmp_path / "ds", mask=lambda i: _lung(value=0) if i == 2 else _lung())
    result = _cli(*_train_args(ds, tmp_path), cwd=tmp_path)
    _user_error(result, "case_002_0.png: empty mask", "--skip-invalid")
    assert not (tmp_path / "runs").exists()
    check = _cli("data", "check", ds, cwd=tmp_path)
    assert check.returncode == 1 and "error: " in check.stdout and "case_002_0.png: empty mask" in check.stdout


# --------------------------------------------------------------------------------------------------
# The image intensity rule

# [stored uint16 maximum, divisor of the rule, warns] -- worked: 200/255, 4000/4095, 60000/65535.
INTENSITY_CASES = [
    [200, 255.0, False],  # 8-bit data in a 16-bit file
    [4000, 4095.0, True],  # 12-bit data in a 16-bit file
    [60000, 65535.0, False],  # real 16-bit data
]


@pytest.mark.parametrize("peak, divisor, warns", INTENSITY_CASES)
def test_16_bit_images_are_scaled_by_their_range(tmp_path, peak, divisor, warns):
    image = np.zeros((H, W), np.uint16)
    image[0, 0] = peak
    image[1, 1] = peak // 2
    ds = _dataset(tmp_path / "ds", n=1, image=lambda i: image)
    dataset = data.load_dataset(ds)
    if warns:
        with pytest.warns(data.IntensityWarning, match=r"case_000_0\.png: .*12-bit data in a 16-bit container"):
            x, _ = data.load_arrays(dataset, (H, W))
    else:
        x, _ = data.load_arrays(dataset, (H, W))
    assert x[0, 0, 0, 0] == pytest.approx(peak / divisor)
    assert x[0, 1, 1, 0] == pytest.approx((peak // 2) / divisor)
    check = data.check_dataset(ds)
    assert [p.kind for p in check.problems] == (["12-bit image"] if warns else [])


def test_16_bit_image_in_augment_is_not_clipped_to_white(tmp_path):
    from lung_keras.augment.offline import expand_dataset

    image = np.linspace(0, 65535, H * W).reshape(H, W).astype(np.uint16)
    ds = _dataset(tmp_path / "ds", n=1, image=lambda i: image)
    expand_dataset(ds, tmp_path / "aug", copies=1, policy=_identity_policy(), seed=0, progress=False)
    written = np.asarray(Image.open(tmp_path / "aug" / "images" / "case_000_0_aug000.png"))
    # Was all 255 (PIL's I;16 -> L conversion clips). Now 65535 -> 255, 0 -> 0, the ramp in between.
    np.testing.assert_array_equal(written, np.round(image / 65535.0 * 255.0).astype(np.uint8))
    assert (written == 255).mean() < 0.01


# --------------------------------------------------------------------------------------------------
# Dataset folders


def test_duplicate_manifest_ids_name_the_manifest_and_the_id(tmp_path):
    ds = _dataset(tmp_path / "ds", n=3)
    (ds / "manifest.csv").write_text("id,diagnosis\ncase_000_0,normal\ncase_001_1,abnormal\ncase_000_0,abnormal\n")
    result = _cli("data", "check", ds, cwd=tmp_path)
    _user_error(result, "manifest.csv: duplicate ids: id 'case_000_0' on lines 2, 4")


def test_diagnosis_values_are_normalised(tmp_path):
    ds = _dataset(tmp_path / "ds", n=4)
    (ds / "manifest.csv").write_text(
        "id,diagnosis\ncase_000_0,Normal \ncase_001_1, ABNORMAL\ncase_002_0,unknown\ncase_003_1,\n"
    )
    diagnoses = [s.diagnosis for s in data.find_pairs(ds).samples]
    # An empty cell falls back to the file name's _0/_1 suffix.
    assert diagnoses == ["normal", "abnormal", "unknown", "abnormal"]


def test_unknown_diagnosis_lists_the_allowed_values(tmp_path):
    ds = _dataset(tmp_path / "ds", n=3)
    (ds / "manifest.csv").write_text("id,diagnosis\ncase_000_0,TB\ncase_001_1,healthy\ncase_002_0,normal\n")
    result = _cli("data", "check", ds, cwd=tmp_path)
    _user_error(
        result,
        "manifest.csv: unknown diagnosis values: line 2 (id 'case_000_0'): 'TB'; line 3 (id 'case_001_1'): 'healthy'",
        "Allowed values: normal, abnormal, unknown",
    )


def test_two_files_with_one_stem_name_both_files(tmp_path):
    ds = _dataset(tmp_path / "ds", n=6)
    Image.open(ds / "images" / "case_001_1.png").convert("RGB").save(ds / "images" / "case_001_1.jpg")
    _save(ds / "masks" / "case_002_0_mask.png", _lung())  # masks/case_002_0.png and masks/case_002_0_mask.png
    result = _cli(*_train_args(ds, tmp_path), cwd=tmp_path)
    message = _user_error(result, "case_001_1.jpg, ", "case_001_1.png: duplicate stem", "case_002_0_mask.png")
    assert "files share the id 'case_001_1'" in message and "files share the id 'case_002_0'" in message
    assert not (tmp_path / "runs").exists()
    listing = data.find_pairs(ds)
    assert sorted(s.id for s in listing.samples) == ["case_000_0", "case_003_1", "case_004_0", "case_005_1"]
    result = _cli("augment", "--data", ds, "--out", tmp_path / "aug", "--policy", _policy_file(tmp_path), cwd=tmp_path)
    _user_error(result, "case_001_1.jpg and ", "case_001_1.png")
    assert not (tmp_path / "aug").exists()


def test_too_few_pairs_say_how_many_a_split_needs(tmp_path):
    ds = _dataset(tmp_path / "ds", n=3)
    result = _cli(*_train_args(ds, tmp_path), cwd=tmp_path)
    _user_error(result, "Found 3 image/mask pair(s) in ", "needs at least 4 (one in each of train, val, test)")
    assert not (tmp_path / "runs").exists()
    assert data.min_split_size((0.7, 0.15, 0.15)) == 4  # round(4 * 0.15) = 1 each for val and test, 2 train


# --------------------------------------------------------------------------------------------------
# Settings and policy files


@pytest.mark.parametrize("learning_rate", [-1e-3, 0.0, float("nan"), float("inf")])
def test_learning_rate_must_be_positive(learning_rate):
    from lung_keras.train import TrainConfig

    with pytest.raises(ValueError, match=r"`learning_rate` must be a positive number\. Received: learning_rate="):
        TrainConfig(learning_rate=learning_rate)


def test_negative_learning_rate_on_the_command_line(tmp_path):
    ds = _dataset(tmp_path / "ds")
    result = _cli(*_train_args(ds, tmp_path, "--learning-rate=-0.001"), cwd=tmp_path)
    _user_error(result, "`learning_rate` must be a positive number. Received: learning_rate=-0.001")
    assert not (tmp_path / "runs").exists()


def _policy_file(tmp_path, text=None, name="policy.json"):
    path = tmp_path / name
    if text is None:
        text = json.dumps(
            {"__version__": "2.0.8", "transform": {"__class_fullname__": "Compose", "p": 1.0, "transforms": [
                {"__class_fullname__": "HorizontalFlip", "p": 0.5}]}}
        )
    path.write_text(text)
    return path


BAD_POLICIES = {
    "invalid.json": ('{"transform": {"__class_fullname__": "Compose", "p": 1.0,\n "transforms": [}\n',
                     "invalid.json: not a valid JSON policy file: Expecting value at line 2, column 17"),
    "invalid.yaml": ("transform:\n  __class_fullname__: Compose\n   p: 1.0\n",
                     "invalid.yaml: not a valid YAML policy file: mapping values are not allowed here at line 3"),
    "high.yaml": ("__version__: 2.0.8\ntransform:\n  __class_fullname__: Compose\n  p: 1.0\n  transforms:\n"
                  "  - __class_fullname__: HorizontalFlip\n    p: 0.5\n  - __class_fullname__: Rotate\n"
                  "    limit: 10\n    p: high\n",
                  "high.yaml: Compose.transforms[1]: Rotate: `p` must be a number in [0, 1]. Received: p='high'"),
}


@pytest.mark.parametrize("name", sorted(BAD_POLICIES))
def test_bad_policy_names_the_file_and_the_transform(tmp_path, name):
    from lung_keras.augment.bridge import load_policy

    text, expected = BAD_POLICIES[name]
    path = _policy_file(tmp_path, text, name)
    with pytest.raises(ValueError) as info:
        load_policy(path)
    assert str(info.value).startswith(str(tmp_path / expected.split(":")[0]))
    assert expected in str(info.value)
    assert "Traceback" not in str(info.value)


def test_bad_policy_on_the_command_line_writes_nothing(tmp_path):
    ds = _dataset(tmp_path / "ds", n=2)
    text, expected = BAD_POLICIES["high.yaml"]
    policy = _policy_file(tmp_path, text, "high.yaml")
    result = _cli("augment", "--data", ds, "--out", tmp_path / "aug", "--policy", policy, cwd=tmp_path)
    _user_error(result, expected)
    assert not (tmp_path / "aug").exists()


# --------------------------------------------------------------------------------------------------
# Corrupt and hostile files


def test_corrupt_png_in_augment_names_the_file_and_a_retry_works(tmp_path):
    ds = _dataset(tmp_path / "ds", n=3)
    good = (ds / "images" / "case_001_1.png").read_bytes()
    (ds / "images" / "case_001_1.png").write_bytes(good[: len(good) // 2])  # truncated mid-stream
    out = tmp_path / "aug"
    args = ("augment", "--data", ds, "--out", out, "--policy", _policy_file(tmp_path), "--quiet")
    _user_error(_cli(*args, cwd=tmp_path), "case_001_1.png: cannot read image")
    assert not out.exists()
    png = tmp_path / "previews" / "grid.png"
    preview_args = ("preview", "--data", ds, "--out", png, "--policy", _policy_file(tmp_path), "--samples", 3)
    before = _files(tmp_path)
    _user_error(_cli(*preview_args, cwd=tmp_path), "case_001_1.png: cannot read image")
    assert _files(tmp_path) == before  # no PNG, no previews/ folder
    (ds / "images" / "case_001_1.png").write_bytes(good)  # fixed: the same command now succeeds
    retry = _cli(*args, cwd=tmp_path)
    assert retry.returncode == 0, retry.stderr[-3000:]
    assert len(list((out / "images").iterdir())) == 3


def test_failed_expansion_removes_what_it_wrote(tmp_path, monkeypatch):
    from lung_keras.augment import offline

    ds = _dataset(tmp_path / "ds", n=3)
    calls = []

    def fail_on_third(path, array):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(f"{path}: No space left on device")
        Image.fromarray(np.asarray(array)[..., 0] if np.ndim(array) == 3 else np.asarray(array)).save(path)

    monkeypatch.setattr(offline, "_write_png", fail_on_third)
    with pytest.raises(OSError, match="No space left"):
        offline.expand_dataset(ds, tmp_path / "aug", copies=1, policy=_identity_policy(), seed=0, progress=False)
    assert not (tmp_path / "aug").exists()


@pytest.mark.parametrize("width, height", [(30000, 30000), (10000, 10000)])
def test_decompression_bomb_is_refused_naming_the_file(tmp_path, width, height):
    # 30000 x 30000 is above twice Image.MAX_IMAGE_PIXELS (Pillow raises); 10000 x 10000 is between once and
    # twice (Pillow only warns and would decode 100 M pixels): both are refused before decoding.
    ds = _dataset(tmp_path / "ds", n=6)
    bomb = _png_declaring(ds / "images" / "case_003_1.png", width, height)
    assert bomb.stat().st_size < 1000
    with pytest.raises(ValueError, match=r"case_003_1\.png: cannot read image: .*decompression bomb"):
        data.read_image(bomb)
    check = _cli("data", "check", ds, cwd=tmp_path)
    assert check.returncode == 1 and "case_003_1.png: unreadable (cannot read image: Image size" in check.stdout
    result = _cli(*_train_args(ds, tmp_path), cwd=tmp_path)
    _user_error(result, "case_003_1.png: unreadable", "MAX_IMAGE_PIXELS")
    assert not (tmp_path / "runs").exists()


# --------------------------------------------------------------------------------------------------
# Arrays into metrics, losses and augmentation layers


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("which", ["y_true", "y_pred"])
def test_non_finite_arrays_into_dice_and_dice_loss(bad, which):
    from lung_keras.losses import BceDiceLoss
    from lung_keras.losses import DiceLoss
    from lung_keras.metrics import Dice
    from lung_keras.metrics import dice_per_image

    y = np.ones((2, 4, 4, 1), "float32")
    broken = y.copy()
    broken[1, 2, 3, 0] = bad
    args = (broken, y) if which == "y_true" else (y, broken)
    for owner, call in (
        ("Dice", lambda: Dice().update_state(*args)),
        ("DiceLoss", lambda: DiceLoss()(*args)),
        ("BceDiceLoss", lambda: BceDiceLoss()(*args)),
        ("dice_per_image", lambda: dice_per_image(*args)),
    ):
        with pytest.raises(ValueError, match=rf"{owner}: `{which}` must be finite; it holds .* out of 32"):
            call()


@pytest.mark.parametrize("training", [True, None])
@pytest.mark.parametrize(
    "x, match",
    [
        (np.zeros((8, 8), "float32"), r"Images must be rank 3 \(H, W, C\) or rank 4 .*Received: shape=\(8, 8\)"),
        (np.zeros((1, 1, 8, 8, 1), "float32"), r"Images must be rank 3 .*Received: shape=\(1, 1, 8, 8, 1\)"),
        (np.zeros((1, 8, 8, 1), "int64"), r"Images must be uint8, uint16 or floating point .*Received: dtype=int64"),
        (np.zeros((1, 8, 8, 1), "bool"), r"Images must be uint8, uint16 or floating point .*Received: dtype=bool"),
        (
            {"images": np.zeros((1, 8, 8, 1), "float32"), "segmentation_masks": np.zeros((1, 8, 8, 1), "complex64")},
            r"segmentation_masks must be bool, integer or floating point\. Received: dtype=complex64",
        ),
    ],
)
def test_wrong_rank_or_dtype_into_an_augmentation_layer(x, match, training):
    # At inference (training=None) too: a wrong input no longer passes through unnoticed.
    from lung_keras.augment import Rotate

    with pytest.raises(ValueError, match=match):
        Rotate(limit=10, p=1.0, seed=0)(x, training=training)
