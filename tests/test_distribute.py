"""Multi-device training, run the way users run it: in fresh processes.

- TensorFlow `MirroredStrategy` over two logical CPU devices and JAX `keras.distribution.DataParallel` over two
  host devices: one epoch's training loss matches one device with the same global batch (tolerances below).
- Checkpoints saved under a strategy load (and score) in a fresh process without it; the display callback, metrics
  and losses run under each strategy (every run logs prediction grids of 3 validation images, 2 under JAX's mesh).
- Augmentation under a strategy: an augmented model trains, and each replica draws its own transforms.
- `MultiWorkerMirroredStrategy`: two `lung-keras train --strategy multiworker` processes on 127.0.0.1, sharing one
  disk cache folder, finish and leave exactly one run folder with one checkpoint, and one complete cache.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

from lung_keras.distribute import STRATEGIES
from lung_keras.distribute import check_strategy
from lung_keras.distribute import is_chief_worker

REPO = pathlib.Path(__file__).resolve().parents[1]
LUNG_KERAS = pathlib.Path(sys.executable).with_name("lung-keras")

# One epoch of a small U-Net on 16 training images, batches of 8 (2 steps): the losses of the two ways of running
# must agree to float32 reduction-order noise. Measured: relative difference about 1e-6 (TF), 1e-6 (JAX).
LOSS_RTOL = 1e-4

DRIVER = r"""
import json, sys
from lung_keras.train import TrainConfig, train
args = json.loads(sys.argv[1])
out = {}
for name in args["strategies"]:
    config = TrainConfig(**args["config"], name=name, strategy=name)
    result = train(config, overwrite=True)
    out[name] = result["history"]["loss"]
if args.get("policy"):  # the same strategy, augmenting in the train step
    config = TrainConfig(**{**args["config"], "epochs": 2}, name="augmented", strategy=args["strategies"][0])
    out["augmented"] = train(config, policy=args["policy"], overwrite=True)["history"]["loss"]
print("RESULT " + json.dumps(out))
"""


def _config(montgomery_dir, tmp_path, **overrides):
    config = dict(data=str(montgomery_dir), out_dir=str(tmp_path / "runs"), image_size=32, epochs=1, batch_size=8,
                  base_filters=4, depth=2, train_size=16, lr_schedule="constant", display_samples=3, verbose=0,
                  data_cache="memory")
    config.update(overrides)
    return config


def _policy_file(tmp_path):
    from lung_keras.augment import bridge
    from lung_keras.compare import default_policy

    path = tmp_path / "policy.json"
    bridge.save_policy(default_policy(), path)
    return str(path)


def _run(args, env, timeout=400):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env}
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(args)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def test_strategy_names_are_checked_against_the_backend():
    assert check_strategy(None, "tensorflow") == "none"
    for name in STRATEGIES:
        if name in ("none", "mirrored", "multiworker"):
            assert check_strategy(name, "tensorflow") == name
    with pytest.raises(ValueError, match="needs KERAS_BACKEND=jax"):
        check_strategy("data-parallel", "tensorflow")
    with pytest.raises(ValueError, match="needs KERAS_BACKEND=tensorflow"):
        check_strategy("mirrored", "jax")
    with pytest.raises(ValueError, match="Received: strategy='gpus'"):
        check_strategy("gpus", "tensorflow")


def test_chief_is_the_chief_task_or_worker_zero():
    two = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    assert is_chief_worker({"cluster": two, "task": {"type": "worker", "index": 0}})
    assert not is_chief_worker({"cluster": two, "task": {"type": "worker", "index": 1}})
    with_chief = {"chief": ["127.0.0.1:3"], **two}
    assert is_chief_worker({"cluster": with_chief, "task": {"type": "chief", "index": 0}})
    assert not is_chief_worker({"cluster": with_chief, "task": {"type": "worker", "index": 0}})


@pytest.mark.slow
def test_mirrored_matches_one_device_and_its_checkpoint_loads_without_it(montgomery_dir, tmp_path):
    pytest.importorskip("tensorflow")
    losses = _run({"strategies": ["mirrored", "none"], "config": _config(montgomery_dir, tmp_path),
                   "policy": _policy_file(tmp_path)}, {"LUNG_KERAS_CPU_DEVICES": "2", "KERAS_BACKEND": "tensorflow"})
    np.testing.assert_allclose(losses["mirrored"], losses["none"], rtol=LOSS_RTOL)
    record = json.loads((tmp_path / "runs" / "mirrored" / "config.json").read_text())
    assert record["distribution"]["replicas"] == 2
    assert record["distribution"]["global_batch_size"] == 8 and record["distribution"]["per_replica_batch_size"] == 4
    assert any((tmp_path / "runs" / "mirrored" / "logs" / "display").glob("events.*"))  # prediction grids logged
    # An augmented model trains under the strategy too.
    assert len(losses["augmented"]) == 2 and all(np.isfinite(losses["augmented"]))
    assert json.loads((tmp_path / "runs" / "augmented" / "config.json").read_text())["distribution"]["replicas"] == 2
    # The checkpoint written under the strategy scores in a fresh process with no strategy (and no second device).
    proc = subprocess.run([str(LUNG_KERAS), "evaluate", "--model", str(tmp_path / "runs" / "mirrored" / "best.keras"),
                           "--data", str(montgomery_dir), "--out", str(tmp_path / "eval")],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "eval" / "summary.json").read_text())["n"] == 138


AUGMENT_PER_REPLICA = r"""
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
from lung_keras.augment import Compose, RandomBrightnessContrast, Rotate
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    policy = Compose([Rotate(limit=40, p=1.0), RandomBrightnessContrast(p=1.0)], seed=0)
x = np.tile(np.random.default_rng(0).random((1, 16, 16, 1), dtype=np.float32), (4, 1, 1, 1))
batches = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(x).batch(4))
step = tf.function(lambda b: strategy.run(lambda t: policy(t, training=True), args=(b,)))
a, b = [v.numpy() for v in strategy.experimental_local_results(step(next(iter(batches))))]
print("RESULT", int(np.allclose(a, b)), int(np.allclose(a[0], a[1])))
"""


@pytest.mark.slow
def test_each_replica_draws_its_own_transforms():
    pytest.importorskip("tensorflow")
    proc = subprocess.run([sys.executable, "-c", AUGMENT_PER_REPLICA], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    same_across_replicas, same_within = proc.stdout.split("RESULT")[-1].split()
    # The same image four times, two per replica: every copy must get a different transform.
    assert same_across_replicas == "0" and same_within == "0"


@pytest.mark.slow
def test_jax_data_parallel_matches_one_device(montgomery_dir, tmp_path):
    pytest.importorskip("jax")
    # Both read batches from the same disk store in the same seeded order (a PyDataset), 16 images = 2 full batches.
    config = _config(montgomery_dir, tmp_path, data_cache="disk", cache_dir=str(tmp_path / "cache"))
    losses = _run({"strategies": ["data-parallel", "none"], "config": config, "policy": _policy_file(tmp_path)},
                  {"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    np.testing.assert_allclose(losses["data-parallel"], losses["none"], rtol=LOSS_RTOL)
    assert len(losses["augmented"]) == 2 and all(np.isfinite(losses["augmented"]))  # AugmentedModel on the mesh
    record = json.loads((tmp_path / "runs" / "data-parallel" / "config.json").read_text())
    assert record["distribution"]["replicas"] == 2
    assert any((tmp_path / "runs" / "data-parallel" / "logs" / "display").glob("events.*"))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_multiworker_run_writes_one_checkpoint(montgomery_dir, tmp_path):
    pytest.importorskip("tensorflow")
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    out = tmp_path / "runs"
    policy = _policy_file(tmp_path)  # augmenting in the train step, each worker its own draws
    procs = []
    for index in range(2):
        scratch = tmp_path / f"tmp{index}"
        scratch.mkdir()
        env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", "TMPDIR": str(scratch),
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen(
            [str(LUNG_KERAS), "train", "--strategy", "multiworker", "--data", str(montgomery_dir), "--out", str(out),
             "--name", "mw", "--image-size", "32", "--epochs", "2", "--batch-size", "8", "--base-filters", "4",
             "--depth", "2", "--train-size", "16", "--data-cache", "disk", "--cache-dir", str(tmp_path / "cache"),
             "--policy", policy, "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    try:
        results = [p.communicate(timeout=400) for p in procs]
    finally:
        for p in procs:  # bounded: never leave a worker waiting for its peer
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    assert sorted(d.name for d in out.iterdir()) == ["_test_images", "mw"]  # the dashboard's shared test images
    assert sorted(p.name for p in (out / "mw").glob("*.keras")) == ["best.keras"]
    record = json.loads((out / "mw" / "config.json").read_text())
    assert record["distribution"]["strategy"] == "multiworker" and record["distribution"]["replicas"] == 2
    assert record["policy_config"] is not None
    assert json.loads((out / "mw" / "metrics.json").read_text())["epochs_run"] == 2
    # The non-chief worker wrote to a temporary folder and removed it.
    assert not any((tmp_path / "tmp1").iterdir())
    # Both workers decoded into the same disk cache folder at once: one cache, complete, no temporaries left.
    caches = list((tmp_path / "cache").iterdir())
    assert len(caches) == 1 and (caches[0] / "index.json").is_file()
