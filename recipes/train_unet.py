"""Train the baseline U-Net and write a run folder (wiring only: see `lung-keras train --help`)."""

import sys

from lung_keras.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
