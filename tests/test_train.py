"""Real training on a Montgomery subset: the run folder, learning, evaluation and the CLI."""

import csv
import json

import numpy as np
import pytest

from lung_keras import data
from lung_keras.train import TrainConfig
from lung_keras.train import train


@pytest.fixture(scope="module")
def small_run(montgomery_dir, tmp_path_factory):
    ds = data.load_dataset(montgomery_dir, pixel_checks=False)
    # Every third case: 46 images (27 normal, 19 abnormal), split 70/15/15.
    subset = ds.subset([s.id for s in ds.samples][::3])
    out = tmp_path_factory.mktemp("runs")
    config = TrainConfig(out_dir=str(out), name="small", image_size=64, epochs=8, base_filters=8, depth=3,
                         batch_size=8, learning_rate=3e-3, seed=1, verbose=0)
    return train(config, dataset=subset)


@pytest.mark.slow
def test_loss_falls_and_dice_rises(small_run):
    hist = small_run["history"]
    assert hist["loss"][-1] < 0.6 * hist["loss"][0]
    # Measured here: val Dice ~0.45 after epoch 1, >0.85 by epoch 8 (seed 1, 32 training images at 64x64).
    assert max(hist["val_dice"]) > 0.8
    assert small_run["metrics"]["test"]["mean_dice"] > 0.8


@pytest.mark.slow
def test_run_folder_contents(small_run):
    run = small_run["run_dir"]
    for name in ("config.json", "history.csv", "best.keras", "metrics.json", "curves.png"):
        assert (run / name).is_file(), name
    assert any((run / "logs").rglob("events.out.tfevents*"))
    with open(run / "history.csv") as f:
        header = next(csv.reader(f))
    assert {"loss", "accuracy", "dice", "val_loss", "val_accuracy", "val_dice"} <= set(header)
    config = json.loads((run / "config.json").read_text())
    splits = config["splits"]
    assert not set(splits["train"]) & set(splits["test"]) and not set(splits["val"]) & set(splits["test"])
    metrics = json.loads((run / "metrics.json").read_text())
    per_image = [r["dice"] for r in metrics["test"]["per_image"]]
    assert [r["id"] for r in metrics["test"]["per_image"]] == splits["test"]
    assert metrics["test"]["mean_dice"] == pytest.approx(np.mean(per_image))
    # The saved best model reproduces the reported best validation Dice epoch.
    assert 1 <= metrics["best_epoch"] <= 8
    # TensorBoard's Scalars tab: Keras' TensorBoard tags, one point per epoch, the history's values.
    scalars = _scalars(run / "logs")
    assert set(scalars["train"]) == TRAIN_TAGS and set(scalars["validation"]) == VALIDATION_TAGS
    np.testing.assert_allclose(scalars["train"]["epoch_loss"], small_run["history"]["loss"], rtol=1e-6)
    np.testing.assert_allclose(scalars["validation"]["epoch_dice"], small_run["history"]["val_dice"], rtol=1e-6)
    assert scalars["train"]["epoch_learning_rate"][0] > scalars["train"]["epoch_learning_rate"][-1]  # cosine decay


TRAIN_TAGS = {"epoch_loss", "epoch_accuracy", "epoch_dice", "epoch_time", "epoch_learning_rate"}
VALIDATION_TAGS = {"epoch_loss", "epoch_accuracy", "epoch_dice", "evaluation_loss_vs_iterations",
                   "evaluation_accuracy_vs_iterations", "evaluation_dice_vs_iterations"}


def _scalars(log_dir):
    """`{split: {tag: [value per step]}}` as TensorBoard's scalars plugin reads them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    out = {}
    for split in ("train", "validation"):
        acc = EventAccumulator(str(log_dir / split), size_guidance={"tensors": 0})
        acc.Reload()
        out[split] = {tag: [float(tensor_util.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)]
                      for tag in acc.Tags()["tensors"]
                      if acc.SummaryMetadata(tag).plugin_data.plugin_name == "scalars"}
    return out


@pytest.mark.slow
def test_evaluate_cli_on_any_folder(small_run, montgomery_dir, tmp_path, capsys):
    from lung_keras.cli import main

    # A folder in the other layout at another size: NLM names, 96x80 PNGs with `_mask` suffix.
    from PIL import Image

    ids = small_run["metrics"]["test"]["per_image"][:3]
    for row in ids:
        img = Image.open(montgomery_dir / "images" / f"{row['id']}.png").resize((80, 96))
        mask = Image.open(montgomery_dir / "masks" / f"{row['id']}.png").resize((80, 96), Image.NEAREST)
        (tmp_path / "ds" / "images").mkdir(parents=True, exist_ok=True)
        (tmp_path / "ds" / "masks").mkdir(parents=True, exist_ok=True)
        img.save(tmp_path / "ds" / "images" / f"{row['id']}.png")
        mask.save(tmp_path / "ds" / "masks" / f"{row['id']}_mask.png")
    code = main(["evaluate", "--model", str(small_run["run_dir"] / "best.keras"), "--data", str(tmp_path / "ds"),
                 "--out", str(tmp_path / "eval")])
    assert code == 0
    assert "3 images: mean Dice" in capsys.readouterr().out
    rows = list(csv.DictReader(open(tmp_path / "eval" / "per_image.csv")))
    assert [r["id"] for r in rows] == sorted(r["id"] for r in ids)
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["mean_dice"] == pytest.approx(np.mean([float(r["dice"]) for r in rows]))
    assert summary["mean_dice"] > 0.7


def test_cli_reports_bad_input_cleanly(tmp_path, capsys):
    from lung_keras.cli import main

    assert main(["train", "--data", str(tmp_path / "nope"), "--epochs", "1"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_train_config_validation():
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(loss="focal")
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)


def test_healthy_only_and_train_size(montgomery_dir):
    from lung_keras.train import make_splits

    ds = data.load_dataset(montgomery_dir, pixel_checks=False)
    full = make_splits(ds, TrainConfig())
    splits = make_splits(ds, TrainConfig(healthy_only=True))
    assert splits.train and all(s.diagnosis == "normal" for s in splits.train + splits.val)
    # Every abnormal case is unseen, so all 58 are test data, with the 12 normal test cases of the split.
    test = [s for s in splits.test]
    assert sum(s.diagnosis == "abnormal" for s in test) == 58
    assert {s.id for s in test if s.diagnosis == "normal"} == {s.id for s in full.test if s.diagnosis == "normal"}
    assert not {s.id for s in test} & {s.id for s in splits.train + splits.val}
    small = make_splits(ds, TrainConfig(train_size=10))
    assert len(small.train) == 10
    assert {s.diagnosis for s in small.train} == {"normal", "abnormal"}
    assert [s.id for s in small.test] == [s.id for s in full.test]  # same test set whatever the train size


def test_same_seed_same_run(montgomery_dir, tmp_path):
    ds = data.load_dataset(montgomery_dir, pixel_checks=False)
    subset = ds.subset([s.id for s in ds.samples][::6])

    def run(seed, name):
        config = TrainConfig(out_dir=str(tmp_path), name=name, image_size=32, epochs=2, base_filters=4, depth=2,
                             seed=seed, verbose=0, display_samples=0)
        return train(config, dataset=subset)

    a, b, c = run(5, "a"), run(5, "b"), run(6, "c")
    assert a["history"]["loss"] == b["history"]["loss"]
    assert a["metrics"]["test"]["mean_dice"] == b["metrics"]["test"]["mean_dice"]
    assert a["history"]["loss"] != c["history"]["loss"]


def test_augmentation_in_the_pipeline_is_seeded_and_saves_a_plain_model(montgomery_dir, tmp_path):
    from lung_keras.augment import Compose
    from lung_keras.augment import RandomBrightnessContrast
    from lung_keras.augment import Rotate

    ds = data.load_dataset(montgomery_dir, pixel_checks=False)
    subset = ds.subset([s.id for s in ds.samples][::6])
    policies = [Compose([Rotate(limit=30, p=1.0), RandomBrightnessContrast(p=1.0)], seed=1) for _ in range(2)]

    def run(name, policy):
        config = TrainConfig(out_dir=str(tmp_path), name=name, image_size=32, epochs=2, base_filters=4, depth=2,
                             verbose=0, display_samples=0, augment_in="pipeline", data_cache="disk",
                             cache_dir=str(tmp_path / "cache"))
        return train(config, dataset=subset, policy=policy)

    a, b = run("a", policies[0]), run("b", policies[1])
    assert a["history"]["loss"] == b["history"]["loss"]  # seeded: the same draws in the same order
    # The pipeline drew transforms (the policy's seed stream advanced), and the saved model is the plain U-Net.
    assert int(policies[0].generator.state.numpy()[1]) > 0
    assert type(a["model"]).__name__ == "Functional"
    with pytest.raises(ValueError, match="augment_in"):
        TrainConfig(augment_in="loader")


def test_a_missing_dashboard_package_is_said_not_silent(monkeypatch, tmp_path):
    from lung_keras.callbacks import test_predictions
    from lung_keras.train import DashboardMissingWarning
    from lung_keras.train import _log_test_predictions

    monkeypatch.setattr(test_predictions, "dashboard_available", lambda: False)
    with pytest.warns(DashboardMissingWarning, match=r"lung_keras\[tensorboard\]"):
        assert _log_test_predictions(tmp_path, ["a sample"], None, None, None, None, {}, TrainConfig()) is None
    assert not any(tmp_path.iterdir())
