"""The `lung-keras` command line: every subcommand is listed, and building the parser stays light."""

import subprocess
import sys

from lung_keras.cli import build_parser

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
