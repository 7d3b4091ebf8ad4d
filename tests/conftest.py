"""Shared fixtures: the real Montgomery set and small synthetic datasets."""

import os
import pathlib

import numpy as np
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _montgomery_path():
    env = os.environ.get("LUNG_KERAS_DATA")
    candidates = [pathlib.Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data" / "montgomery_cxr")
    for path in candidates:
        if (path / "images").is_dir() and (path / "masks").is_dir():
            return path
    return None


# Under pytest-xdist (`make test` runs `-n 2 --dist loadfile --no-loadscope-reorder`) each test file is one unit
# of work, so a module-scoped fixture (a trained run) is built once; files sharing a session fixture that trains
# are one unit, so it is built once too (each worker process has its own session).
SHARED_SESSION_FIXTURES = {
    "tests/test_compare.py": "tiny_compare",
    "tests/e2e/test_arm_dashboard_browser.py": "tiny_compare",
    "tests/tensorboard_plugins/test_plugin.py": "segmentation_logs",
    "tests/e2e/test_dashboard_browser.py": "segmentation_logs",
}
# The longest units first (serial wall time on the 2-core machine, 2026-12-01), so that neither worker is left
# with a long file at the end while the other idles; everything else follows in collection order.
LONGEST_FIRST = ["tiny_compare", "tests/e2e/test_saved_models.py", "tests/e2e/test_resume.py",
                 "tests/test_distribute.py", "tests/test_cli.py", "segmentation_logs", "tests/test_bad_inputs.py",
                 "tests/test_train.py", "tests/test_ct_recipe.py"]


def _unit(nodeid):
    path = nodeid.split("::", 1)[0]
    return SHARED_SESSION_FIXTURES.get(path, path)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile`, with the files of SHARED_SESSION_FIXTURES merged into one unit each."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LoadUnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return _unit(nodeid)

    return LoadUnitScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    if hasattr(config, "workerinput"):  # an xdist worker: the controller hands out units in this order
        rank = {unit: i for i, unit in enumerate(LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(_unit(item.nodeid), len(rank)))  # stable: files keep their order


@pytest.fixture(scope="session")
def montgomery_dir():
    """The real Montgomery chest X-ray set (128x128), read in place, never copied into the repo."""
    path = _montgomery_path()
    if path is None:
        pytest.skip("Montgomery data not found: set LUNG_KERAS_DATA or place ../shared beside the checkout")
    return path


def copy_real_pairs(montgomery_dir, dest, normal=6, abnormal=6):
    """Copy the first `normal` normal and `abnormal` tuberculosis Montgomery pairs into `dest` (a tmp folder)."""
    import shutil

    images = sorted((montgomery_dir / "images").glob("*.png"))
    picked = [p for p in images if p.stem.endswith("_0")][:normal] + [p for p in images if p.stem.endswith("_1")][:abnormal]
    for p in picked:
        for sub in ("images", "masks"):
            (dest / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(montgomery_dir / sub / p.name, dest / sub / p.name)
    return dest


def write_png(path, array):
    from PIL import Image

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path)
    return path


@pytest.fixture
def make_pair_dataset(tmp_path):
    """Factory writing a small `images/` + `masks/` dataset with known content."""

    def _make(n=6, size=(40, 48), name="ds", mask_suffix=""):
        root = tmp_path / name
        rng = np.random.default_rng(0)
        h, w = size
        for i in range(n):
            image = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
            mask = np.zeros((h, w), np.uint8)
            mask[h // 4 : 3 * h // 4, w // 5 : w // 2] = 255
            diagnosis = i % 2
            stem = f"case_{i:03d}_{diagnosis}"
            write_png(root / "images" / f"{stem}.png", image)
            write_png(root / "masks" / f"{stem}{mask_suffix}.png", mask)
        return root

    return _make


@pytest.fixture(scope="session")
def tiny_compare(montgomery_dir, tmp_path_factory):
    """(out folder, results) of one tiny real comparison, shared by every test that reads a compare run's output
    (tests/test_compare.py: report and metrics.json; tests/e2e/test_arm_dashboard_browser.py: dashboard logs and
    the Arms view). Healthy-only, 2 arms x 2 seeds x train sizes 6 and all, 1 epoch at 32x32, and two extra test
    sets standing in for other hospitals: hospital_b in the NLM layout (CXR_png/ + ManualMask/, 4 images at 40x48)
    and hospital_c in the folder layout (images/ + masks/<stem>_mask.png, 3 images at 72x60)."""
    from PIL import Image

    from lung_keras import data
    from lung_keras.compare import CompareConfig
    from lung_keras.compare import run_comparison

    out = tmp_path_factory.mktemp("compare")
    ds = data.load_dataset(montgomery_dir, pixel_checks=False)
    extra = tmp_path_factory.mktemp("extra") / "hospital_b"
    for sample in ds.samples[-4:]:
        name = f"{sample.id}.png"
        for sub, src, resample in (("CXR_png", sample.image_path, Image.BILINEAR),
                                   ("ManualMask/leftMask", sample.mask_paths[0], Image.NEAREST),
                                   ("ManualMask/rightMask", sample.mask_paths[0], Image.NEAREST)):
            (extra / sub).mkdir(parents=True, exist_ok=True)
            img = Image.open(src).resize((40, 48), resample)
            if sub.endswith("rightMask"):
                img = Image.new("L", img.size)  # left + right merged gives the original mask
            img.save(extra / sub / name)
    folder = tmp_path_factory.mktemp("extra") / "hospital_c"
    for sample in ds.samples[:3]:
        (folder / "images").mkdir(parents=True, exist_ok=True)
        (folder / "masks").mkdir(parents=True, exist_ok=True)
        Image.open(sample.image_path).resize((72, 60), Image.BILINEAR).save(folder / "images" / f"{sample.id}.png")
        Image.open(sample.mask_paths[0]).resize((72, 60), Image.NEAREST).save(folder / "masks" / f"{sample.id}_mask.png")
    config = CompareConfig(out=str(out), seeds=2, epochs=1, image_size=32, base_filters=4, depth=2, subset=30,
                           train_sizes=("6", "all"), healthy_only=True, flip_ablation=False,
                           extra_test=(str(extra), str(folder)), verbose=0)
    return out, run_comparison(config, dataset=ds)
