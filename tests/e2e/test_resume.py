"""Atomic, resumable runs, tested as a user meets them: a real `lung-keras train` killed with SIGKILL mid-epoch
and mid-save, then `--resume`; existing run folders refused; bad arguments leave nothing behind."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import copy_real_pairs
from tests.e2e.test_saved_models import QUIET_ENV
from tests.e2e.test_saved_models import cli
from tests.e2e.test_saved_models import python

EPOCHS = 6
TRAIN_ARGS = ["--image-size", "32", "--epochs", str(EPOCHS), "--base-filters", "4", "--depth", "2", "--quiet"]


@pytest.fixture(scope="module")
def small_data(montgomery_dir, tmp_path_factory):
    return copy_real_pairs(montgomery_dir, tmp_path_factory.mktemp("resume") / "data")


def _train_command(data, out, name, *extra):
    return ["train", "--data", str(data), "--out", str(out), "--name", name, *TRAIN_ARGS, *extra]


def _wait_for_epoch(run, epoch, process, timeout=300):
    state = run / "backup" / "state.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            pytest.fail(f"training ended before epoch {epoch}: {process.stderr.read()[-2000:]}")
        try:
            if json.loads(state.read_text())["epoch"] >= epoch:
                return
        except (FileNotFoundError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"no epoch {epoch} within {timeout} s")


def _history_epochs(run):
    with open(run / "history.csv", newline="") as f:
        return [int(float(row["epoch"])) for row in csv.DictReader(f)]


def _loads_in_fresh_process(path):
    out = python(f"import lung_keras\nm = lung_keras.load_model({str(path)!r})\nprint('OK', m.name)\n")
    return "OK unet" in out


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_completes_the_run(small_data, tmp_path):
    script = [str(p) for p in [sys.executable, "-m", "lung_keras.cli"]]
    process = subprocess.Popen(script + _train_command(small_data, tmp_path, "killed"), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, **QUIET_ENV})
    run = tmp_path / "killed"
    _wait_for_epoch(run, 2, process)
    time.sleep(0.3)  # into the next epoch
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert _loads_in_fresh_process(run / "best.keras")  # the best model so far survived the kill
    assert not (run / "metrics.json").exists()
    done = json.loads((run / "backup" / "state.json").read_text())["epoch"]
    assert 2 <= done < EPOCHS

    again = cli(*_train_command(small_data, tmp_path, "killed"))
    assert again.returncode == 2 and "already exists: pass --resume" in again.stderr

    resumed = cli(*_train_command(small_data, tmp_path, "killed", "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _history_epochs(run) == list(range(EPOCHS))  # same history length as an uninterrupted run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == EPOCHS and metrics["test"]["n"] > 0
    assert not (run / "backup").exists()
    assert _loads_in_fresh_process(run / "best.keras")


KILL_DURING_SECOND_SAVE = """
import os, signal, sys
import keras
calls = [0]
original = keras.Model.save
def save(self, filepath, *args, **kwargs):
    calls[0] += 1
    if calls[0] == 2:  # the second checkpoint: write half a file where Keras was told to, then die
        with open(filepath, "wb") as f:
            f.write(b"PK\\x03\\x04 half a zip archive")
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, filepath, *args, **kwargs)
keras.Model.save = save
from lung_keras.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_sigkill_mid_save_keeps_the_previous_best(small_data, tmp_path):
    run = tmp_path / "midsave"
    args = _train_command(small_data, tmp_path, "midsave")
    out = subprocess.run([sys.executable, "-c", KILL_DURING_SECOND_SAVE, *args], capture_output=True, text=True,
                         timeout=600, env={**os.environ, **QUIET_ENV})
    if out.returncode == 0:
        pytest.skip("validation Dice improved only once in this run; no second save to interrupt")
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    assert _loads_in_fresh_process(run / "best.keras")  # the first best, complete
    assert [p.name for p in run.glob(".best.tmp-*")], "the half-written file went to a temporary name"
    resumed = cli(*_train_command(small_data, tmp_path, "midsave", "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _history_epochs(run) == list(range(EPOCHS))
    assert _loads_in_fresh_process(run / "best.keras")
    assert not list(run.glob(".*.tmp-*")), "resume clears temporary files a kill left behind"


@pytest.mark.slow
def test_overwrite_replaces_the_old_run(small_data, tmp_path):
    run = tmp_path / "again"
    (run / "logs").mkdir(parents=True)
    (run / "logs" / "old-event-file").write_text("old")
    (run / "metrics.json").write_text("{}")
    out = cli(*_train_command(small_data, tmp_path, "again", "--overwrite"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert not (run / "logs" / "old-event-file").exists()
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == EPOCHS


def test_bad_arguments_leave_no_run_folder(small_data, tmp_path):
    out = cli(*_train_command(small_data, tmp_path, "bad", "--policy", str(tmp_path / "missing.json")))
    assert out.returncode == 2 and "missing.json" in out.stderr
    assert not (tmp_path / "bad").exists()
    out = cli(*_train_command(small_data, tmp_path, "bad", "--resume", "--overwrite"))
    assert out.returncode == 2 and "not both" in out.stderr
    assert not (tmp_path / "bad").exists()


def test_compare_refuses_an_existing_output_folder(small_data, tmp_path):
    (tmp_path / "cmp").mkdir()
    (tmp_path / "cmp" / "metrics.json").write_text("{}")
    out = cli("compare", "--data", str(small_data), "--out", str(tmp_path / "cmp"), "--quick")
    assert out.returncode == 2 and "already exists: pass --resume" in out.stderr
    assert (tmp_path / "cmp" / "metrics.json").read_text() == "{}"
