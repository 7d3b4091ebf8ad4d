"""Saved models load anywhere: `lung-keras train` in one process, `lung-keras evaluate` and plain
`keras.saving.load_model` in fresh ones, as a user meets them."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import copy_real_pairs

QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}


def cli(*args, backend=None, timeout=600):
    """Run `lung-keras ARGS` in a fresh process (the installed console script when present)."""
    script = pathlib.Path(sys.executable).with_name("lung-keras")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "lung_keras.cli"]
    env = {**os.environ, **QUIET_ENV}
    if backend:
        env["KERAS_BACKEND"] = backend
    return subprocess.run(command + list(args), capture_output=True, text=True, timeout=timeout, env=env)


def python(code, backend=None, timeout=300):
    env = {**os.environ, **QUIET_ENV}
    if backend:
        env["KERAS_BACKEND"] = backend
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.fixture(scope="module")
def trained_run(montgomery_dir, tmp_path_factory):
    """A 1-epoch `lung-keras train` run on 12 real pairs at 32x32, in its own process."""
    root = tmp_path_factory.mktemp("saved")
    data = copy_real_pairs(montgomery_dir, root / "data")
    out = cli("train", "--data", str(data), "--out", str(root / "runs"), "--name", "tiny", "--image-size", "32",
              "--epochs", "1", "--base-filters", "4", "--depth", "2", "--normalization", "equalize", "--quiet")
    assert out.returncode == 0, out.stderr[-3000:]
    run = root / "runs" / "tiny"
    assert (run / "best.keras").stat().st_size > 0
    return data, run


@pytest.mark.slow
def test_evaluate_loads_a_model_trained_in_another_process(trained_run, tmp_path):
    data, run = trained_run
    out = cli("evaluate", "--model", str(run / "best.keras"), "--data", str(data), "--out", str(tmp_path / "eval"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "12 images: mean Dice" in out.stdout
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["n"] == 12 and 0.0 <= summary["mean_dice"] <= 1.0
    assert 0.0 <= summary["mean_dice_postprocessed"] <= 1.0  # reported beside the raw Dice
    assert "after post-processing mean Dice" in out.stdout
    lines = (tmp_path / "eval" / "per_image.csv").read_text().strip().splitlines()
    assert len(lines) == 13 and lines[0].endswith(",dice_postprocessed")


PREDICT = (
    "import numpy as np\n"
    "x = np.linspace(0, 1, 2 * 32 * 32, dtype='float32').reshape(2, 32, 32, 1)\n"
    "print('SUM', float(np.asarray(model.predict(x, verbose=0)).sum()))\n"
    "print('LAYERS', sorted({type(l).__name__ for l in model.layers}))\n"
)


_FRESH_RUNS = {}


def python_once(code, backend=None):
    """`python(code)`, run once per test session for the same code and backend: tests that read the same fresh
    process's output share it (loading under TensorFlow is one run for both the loading and the JAX tests)."""
    key = (code, backend)
    if key not in _FRESH_RUNS:
        _FRESH_RUNS[key] = python(code, backend=backend)
    return _FRESH_RUNS[key]


def _prediction_sum(stdout):
    return float(next(line for line in stdout.splitlines() if line.startswith("SUM")).split()[1])


@pytest.mark.slow
@pytest.mark.parametrize(
    "prelude",
    [
        "import lung_keras\nimport keras\nmodel = keras.saving.load_model(PATH)\n",
        "import keras\nimport lung_keras\nmodel = keras.saving.load_model(PATH)\n",
        "import lung_keras\nmodel = lung_keras.load_model(PATH)\n",
    ],
    ids=["lung_keras-then-keras", "keras-then-lung_keras", "lung_keras.load_model"],
)
def test_fresh_process_loads_the_saved_model(trained_run, prelude):
    _, run = trained_run
    code = prelude.replace("PATH", repr(str(run / "best.keras"))) + PREDICT
    stdout = python_once(code)
    assert "IntensityNormalization" in stdout and "ConvBlock" in stdout
    assert np.isfinite(_prediction_sum(stdout))


@pytest.mark.slow
def test_the_same_file_predicts_the_same_under_jax(trained_run):
    pytest.importorskip("jax")
    _, run = trained_run
    code = "import lung_keras\nmodel = lung_keras.load_model(PATH)\n".replace("PATH", repr(str(run / "best.keras")))
    tf_sum = _prediction_sum(python_once(code + PREDICT))  # the lung_keras.load_model case above
    jax_out = python(code + PREDICT + "import sys\nprint('TF', 'tensorflow' in sys.modules)\n", backend="jax")
    assert "TF False" in jax_out
    assert _prediction_sum(jax_out) == pytest.approx(tf_sum, rel=1e-3, abs=1e-2)


def test_import_lung_keras_stays_light():
    stdout = python("import sys, lung_keras\nprint('HEAVY', sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))\n")
    assert "HEAVY []" in stdout


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty (0 bytes)"),
        (b"not a zip at all", "not a valid .keras archive"),
    ],
    ids=["zero-bytes", "garbage"],
)
def test_evaluate_names_a_broken_model_file(tmp_path, make_pair_dataset, content, message):
    model = tmp_path / "best.keras"
    model.write_bytes(content)
    data = make_pair_dataset(n=4)
    out = cli("evaluate", "--model", str(model), "--data", str(data), "--out", str(tmp_path / "eval"))
    assert out.returncode == 2
    assert str(model) in out.stderr and message in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "eval").exists()


def test_evaluate_names_a_missing_model_file(tmp_path, make_pair_dataset):
    out = cli("evaluate", "--model", str(tmp_path / "nope.keras"), "--data", str(make_pair_dataset(n=4)),
              "--out", str(tmp_path / "eval"))
    assert out.returncode == 2 and "nope.keras: no such model file" in out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("first_import", [
    "from lung_keras.preprocessing import IntensityNormalization",  # imported by lung_keras.models itself
    "from lung_keras.augment import Rotate",
])
def test_any_first_import_registers_everything(trained_run, first_import):
    # A submodule that imports Keras itself triggers registration mid-import; it must still complete.
    _, run = trained_run
    code = (f"import warnings\nwarnings.simplefilter('error')\n{first_import}\nimport keras\n"
            f"model = keras.saving.load_model({str(run / 'best.keras')!r})\n" + PREDICT)
    assert "ConvBlock" in python(code)
