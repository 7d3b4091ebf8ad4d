"""Original vs augmented training, tested on new data (wiring only: see `lung-keras compare --help`).

Example (the README's main job):
    python recipes/compare_augmentation.py --healthy-only --seeds 3 --epochs 30
"""

import sys

from lung_keras.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
