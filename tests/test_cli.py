"""The `lung-keras` command line: every subcommand is listed, building the parser stays light, and the
conventions (--version, defaults in --help, --quiet/--verbose, plain progress in logs, hidden TensorFlow
start-up lines, --json summaries, compare's ETA) hold in a fresh process with piped output."""

import json
import os
import re
import subprocess
import sys

import pytest

from lung_keras.cli import build_parser
from tests.conftest import copy_real_pairs

COMMANDS = {"train", "evaluate", "data", "augment", "preview", "compare"}


def test_parser_lists_every_subcommand():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == COMMANDS
    args = parser.parse_args(["compare", "--seeds", "2", "--train-sizes", "10,all", "--healthy-only"])
    assert args.func.__name__ == "_cmd_compare" and args.seeds == 2 and args.healthy_only
    args = parser.parse_args(["augment", "--data", "d", "--out", "o", "--policy", "p.json", "--copies", "3"])
    assert args.func.__name__ == "_cmd_augment" and args.copies == 3


def test_help_does_not_import_keras_or_tensorflow():
    # `lung-keras --help` and argument errors answer at once: Keras and TensorFlow load only when a command runs.
    code = (
        "import sys\n"
        "from lung_keras.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "compare" in out.stdout and "augment" in out.stdout
    assert "HEAVY []" in out.stdout


# ---------------------------------------------------------------- conventions, as a user meets them

STARTUP_LINE = re.compile(r"absl::InitializeLog|^[IWE]\d{4} [\d:.]+\s+\d+ \S+:\d+\]", re.M)
CONTROL = re.compile(r"\x1b\[|[\r\b]")


def lung_keras(*args, timeout=300):
    """`lung-keras ARGS` in a fresh process with stdout and stderr piped (not a terminal)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-m", "lung_keras.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_version_answers_without_keras():
    out = lung_keras("--version")
    assert out.returncode == 0
    from importlib import metadata

    assert out.stdout.strip() == f"lung-keras {metadata.version('lung-keras')}"


def test_help_shows_every_default_but_not_for_flags():
    train = lung_keras("train", "--help").stdout
    flat = " ".join(train.split())
    for option, default in (("--epochs EPOCHS", "40"), ("--batch-size BATCH_SIZE", "8"), ("--image-size IMAGE_SIZE", "128"),
                            ("--learning-rate LEARNING_RATE", "0.001"), ("--lr-schedule {constant,cosine}", "cosine"),
                            ("--seed SEED", "0"), ("--out OUT", "runs"), ("--loss {bce_dice,dice,bce}", "bce_dice")):
        section = flat.split(option, 2)[-1]
        assert section.split(" --")[0].rstrip().endswith(f"(default: {default})"), (option, section[:200])
    assert "(default: None)" not in flat and "(default: False)" not in flat
    compare = " ".join(lung_keras("compare", "--help").stdout.split())
    assert "--seeds SEEDS training seeds per arm (default: 3)" in compare
    assert "--train-sizes TRAIN_SIZES comma-separated sizes, e.g. 10,20,all (default: all)" in compare


@pytest.mark.parametrize("command", [["train"], ["evaluate"], ["data", "check"], ["data", "download"],
                                     ["augment"], ["preview"], ["compare"]])
def test_every_command_takes_quiet_and_verbose(command):
    usage = lung_keras(*command, "--help").stdout
    assert "-q, --quiet" in usage and "-v, --verbose" in usage
    both = lung_keras(*command, "--quiet", "--verbose")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_data_check_json(make_pair_dataset, tmp_path):
    good = make_pair_dataset(n=4)
    out = lung_keras("data", "check", str(good), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert (report["ok"], report["num_samples"], report["num_valid"], report["errors"]) == (True, 4, 4, 0)
    (good / "masks" / "case_000_0.png").unlink()  # an image without its mask: fatal
    out = lung_keras("data", "check", str(good), "--json")
    assert out.returncode == 1
    report = json.loads(out.stdout)
    assert report["ok"] is False and report["errors"] == 1
    assert report["problems"][0]["fatal"] and "case_000_0" in report["problems"][0]["path"]


@pytest.fixture(scope="module")
def piped_train(montgomery_dir, tmp_path_factory):
    """`lung-keras train` (1 epoch, 12 real pairs at 32x32) with stdout and stderr piped, not --quiet."""
    root = tmp_path_factory.mktemp("cli")
    data = copy_real_pairs(montgomery_dir, root / "data")
    out = lung_keras("train", "--data", str(data), "--out", str(root / "runs"), "--name", "tiny", "--image-size",
                     "32", "--epochs", "2", "--base-filters", "4", "--depth", "2")
    assert out.returncode == 0, out.stderr[-3000:]
    return root, data, out


@pytest.mark.slow
def test_train_progress_in_a_log_file_is_plain_text(piped_train):
    _, _, out = piped_train
    assert not CONTROL.search(out.stdout), repr(out.stdout[:500])
    assert "Epoch 1/2" in out.stdout and "Epoch 2/2" in out.stdout
    assert len(re.findall(r"val_dice: \d\.\d+", out.stdout)) == 2  # one line per epoch
    assert not STARTUP_LINE.search(out.stderr), out.stderr[:2000]


def _tf_prints_startup_lines():
    probe = subprocess.run([sys.executable, "-c", "import tensorflow as tf; tf.constant(1.0) + 1"],
                           capture_output=True, text=True, timeout=120,
                           env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    return bool(STARTUP_LINE.search(probe.stderr))


@pytest.mark.slow
def test_evaluate_json_and_startup_lines_only_with_verbose(piped_train):
    root, data, _ = piped_train
    model = root / "runs" / "tiny" / "best.keras"
    out = lung_keras("evaluate", "--model", str(model), "--data", str(data), "--out", str(root / "eval"), "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)  # stdout is only the JSON
    assert summary == json.loads((root / "eval" / "summary.json").read_text()) | {"out": str(root / "eval")}
    assert summary["n"] == 12 and 0 <= summary["mean_dice"] <= 1
    assert not STARTUP_LINE.search(out.stderr), out.stderr[:2000]
    if _tf_prints_startup_lines():  # this TensorFlow build logs at start-up: --verbose shows it
        loud = lung_keras("evaluate", "--model", str(model), "--data", str(data), "--out", str(root / "eval2"),
                          "--verbose")
        assert loud.returncode == 0 and STARTUP_LINE.search(loud.stderr)
        assert "12 images: mean Dice" in loud.stdout


@pytest.mark.slow
def test_compare_reports_each_run_with_an_eta_and_a_json_summary(piped_train):
    root, data, _ = piped_train
    out_dir = root / "cmp"
    out = lung_keras("compare", "--data", str(data), "--seeds", "1", "--epochs", "1", "--image-size", "32",
                     "--no-flip-ablation", "--no-postprocess", "--out", str(out_dir), "--json", timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [l for l in out.stderr.splitlines() if l.startswith("[")]
    assert len(lines) == 2, out.stderr
    assert re.match(r"\[1/2\] train=all baseline seed 0: test Dice \d\.\d{4}, \d+s; elapsed \d+s, ETA \d+s$",
                    lines[0]), lines[0]
    assert re.match(r"\[2/2\] train=all augmented seed 0: .*, all runs done$", lines[1]), lines[1]
    assert not STARTUP_LINE.search(out.stderr) and not CONTROL.search(out.stderr + out.stdout)
    summary = json.loads(out.stdout)
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert summary["report"] == str(out_dir / "report.md") and summary["notes"] == metrics["notes"]
    (cond,) = summary["conditions"]
    for arm in ("baseline", "augmented"):
        assert cond["arms"][arm]["mean"] == pytest.approx(metrics["conditions"][0]["arms"][arm]["mean"])
        assert cond["arms"][arm]["ci95"] == [None, None]  # one seed: no interval, null rather than NaN
    assert cond["paired"]["mean_diff"] == pytest.approx(
        cond["arms"]["augmented"]["mean"] - cond["arms"]["baseline"]["mean"], abs=1e-9)


def test_eta_is_the_mean_run_time_times_the_runs_left(monkeypatch):
    import io

    from lung_keras import cli

    clock = iter([0.0, 30.0, 50.0, 95.0])
    monkeypatch.setattr(cli.time, "perf_counter", lambda: next(clock))
    stream = io.StringIO()
    progress = cli._RunProgress(stream)
    progress(1, 3, "a", 0.91)
    progress(2, 3, "b", 0.92)
    progress(3, 3, "c", 0.93)
    assert stream.getvalue().splitlines() == [
        "[1/3] a: test Dice 0.9100, 30s; elapsed 30s, ETA 1m00s",
        "[2/3] b: test Dice 0.9200, 20s; elapsed 50s, ETA 25s",
        "[3/3] c: test Dice 0.9300, 45s; elapsed 1m35s, all runs done",
    ]


@pytest.mark.parametrize("quiet, tty, expected", [(True, True, 0), (True, False, 0), (False, True, 1), (False, False, 2)])
def test_keras_progress_bar_only_on_a_terminal(monkeypatch, quiet, tty, expected):
    """Keras writes ANSI codes and carriage returns whenever verbose=1 on Linux, terminal or not; verbose=2
    is one plain line per epoch."""
    import argparse

    from lung_keras import cli

    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty)
    assert cli._progress_verbosity(argparse.Namespace(quiet=quiet)) == expected
