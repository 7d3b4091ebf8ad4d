"""The run folder of `lung_keras.train`: created for a new run, refused, replaced, or resumed.

`prepare_run_dir` creates or checks `<out_dir>/<name>`; `RunState` is what `--resume` continues from, saved
at the end of every epoch in `<run>/backup/`; `open_run_dir` does both for the chief of a multi-worker run or
a single process, and gives a non-chief worker a temporary folder of its own.
"""

import json
import pathlib
import shutil
import tempfile

import numpy as np

from lung_keras._io import atomic_path
from lung_keras._io import write_csv
from lung_keras._io import write_text

STATE_FILE = "state.json"  # inside <run>/backup/, present while a run is unfinished or was killed
# Settings a resumed run may change (they do not change what is trained).
_RESUMABLE_CHANGES = {"verbose", "versions", "display_samples", "data_cache", "cache_dir", "workers", "strategy",
                      "distribution"}


class RunState:
    """What `train --resume` needs to continue a killed run: the last complete epoch, its weights (model,
    optimizer and augmentation seed state), the best validation Dice so far, the history rows, the time.

    Written at the end of every epoch: weights to `backup/epoch-<k>.weights.h5`, then `backup/state.json`
    pointing at them (both atomically), then the older weights file is removed, so a kill at any moment
    leaves a consistent pair.
    """

    def __init__(self, run_dir):
        self.run_dir = pathlib.Path(run_dir)
        self.backup = self.run_dir / "backup"
        self.epoch, self.best, self.best_epoch, self.seconds, self.weights, self.rows = 0, -np.inf, None, 0.0, None, []

    @classmethod
    def read(cls, run_dir):
        state = cls(run_dir)
        path = state.backup / STATE_FILE
        if not path.is_file():
            return state
        try:
            record = json.loads(path.read_text())
            state.epoch, state.seconds, state.rows = int(record["epoch"]), float(record["seconds"]), record["history"]
            state.best = float(record["best"]) if record["best"] is not None else -np.inf
            state.best_epoch, state.weights = record["best_epoch"], record["weights"]
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}: cannot resume, the run state is unreadable ({error})") from error
        if state.weights and not (state.backup / state.weights).is_file():
            raise ValueError(f"{path}: cannot resume, its weights file {state.weights} is missing")
        return state

    def history(self):
        keys = [k for k in self.rows[0] if k != "epoch"] if self.rows else []
        return {k: [row[k] for row in self.rows] for k in keys}

    def callback(self, checkpoint):
        import keras

        state = self

        class SaveRunState(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                row = {"epoch": epoch, **{k: float(v) for k, v in sorted((logs or {}).items())}}
                state.rows = [r for r in state.rows if r["epoch"] < epoch] + [row]
                previous = state.weights
                state.epoch, state.seconds = epoch + 1, row.get("time", state.seconds)
                state.best, state.best_epoch = checkpoint.best, checkpoint.best_epoch
                state.weights = f"epoch-{epoch + 1}.weights.h5"
                with atomic_path(state.backup / state.weights) as tmp:
                    self.model.save_weights(str(tmp))
                state.write()
                if previous and previous != state.weights:
                    (state.backup / previous).unlink(missing_ok=True)

        return SaveRunState()

    def write(self):
        record = {"epoch": self.epoch, "seconds": self.seconds, "weights": self.weights,
                  "best": None if not np.isfinite(self.best) else self.best, "best_epoch": self.best_epoch,
                  "history": self.rows}
        write_text(self.backup / STATE_FILE, json.dumps(record, indent=1))
        if self.rows:
            write_csv(self.run_dir / "history.csv", self.rows, lineterminator="\n")

    def restore(self, model):
        """Load the saved weights (and optimizer and seed state) into a compiled, built `model`."""
        if not self.weights:
            return
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(str(self.backup / self.weights))


def prepare_run_dir(run_dir, record, resume=False, overwrite=False):
    """Create `run_dir` for a new run, or check it for `resume`; return the `RunState` to start from.

    An existing, non-empty run folder is refused unless `resume` (continue it: same settings required) or
    `overwrite` (delete it first). Call it only after every input has been validated, so a bad argument
    leaves nothing behind.
    """
    run_dir = pathlib.Path(run_dir)
    exists = run_dir.is_dir() and any(run_dir.iterdir())
    if exists and overwrite:
        shutil.rmtree(run_dir)
    elif exists and resume:
        previous_path = run_dir / "config.json"
        if not previous_path.is_file():
            raise ValueError(f"{run_dir}: cannot resume, it holds no config.json (not a lung_keras run folder?)")
        previous = json.loads(previous_path.read_text())
        changed = sorted(k for k in set(previous) | set(record) if k not in _RESUMABLE_CHANGES
                         and json.dumps(previous.get(k), default=str) != json.dumps(record.get(k), default=str))
        if changed:
            shown = ", ".join(f"{k}: {previous.get(k)!r} -> {record.get(k)!r}" for k in changed[:6])
            raise ValueError(f"{run_dir}: cannot resume with different settings ({shown}); "
                             "use the original settings, or --overwrite to start again")
        for stale in run_dir.glob(".*.tmp-*"):  # what a kill mid-write left behind
            stale.unlink()
        return RunState.read(run_dir)
    elif exists:
        raise FileExistsError(f"{run_dir} already exists: pass --resume to continue that run or --overwrite to "
                              "replace it (or choose another --name)")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(run_dir / "config.json", json.dumps(record, indent=2, default=str))
    return RunState(run_dir)



def open_run_dir(run_dir, record, distribution, resume, overwrite):
    """`(run_dir, state)`: the run folder prepared (or checked for `resume`) and the state to start from.

    A multi-worker non-chief goes through the same steps in a temporary folder, removed at the end, starting
    from the chief's state.
    """
    if distribution.is_chief:
        return run_dir, prepare_run_dir(run_dir, record, resume=resume, overwrite=overwrite)
    chief_state = RunState.read(run_dir) if resume else RunState(run_dir)
    run_dir = pathlib.Path(tempfile.mkdtemp(prefix=f"{run_dir.name}-worker-")) / run_dir.name
    state = prepare_run_dir(run_dir, record)
    state.epoch, state.best, state.best_epoch, state.seconds = (
        chief_state.epoch, chief_state.best, chief_state.best_epoch, chief_state.seconds)
    state.restore_from = chief_state
    return run_dir, state
