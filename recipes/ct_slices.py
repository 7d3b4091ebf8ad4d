"""CT slices, original vs augmented (issue 14): train a U-Net on the ACRIN patient's axial slices, test on the
CIP volume, volume Dice per arm beside the threshold baseline (wiring only: see `lung_keras.ct_compare`).

Example (the measured run in the README):
    .venv/bin/python recipes/ct_slices.py --out runs/ct_slices --seeds 3 --epochs 20 --repeats 4
"""

import argparse
import sys

from lung_keras.ct_compare import ARMS
from lung_keras.ct_compare import CTSlicesConfig


def main(argv=None):
    defaults = CTSlicesConfig.__dataclass_fields__
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=defaults["out"].default, help="output folder")
    p.add_argument("--train-image", help="training CT: DICOM folder or volume (default: the shared ACRIN series)")
    p.add_argument("--train-mask", help="its reference: RTSTRUCT or label map (default: the ACRIN RTSTRUCT)")
    p.add_argument("--test-image", help="test CT (default: the shared CIP ct-64.nrrd)")
    p.add_argument("--test-mask", help="its label map (default: lm-64.nrrd, low byte 9-11 left, 12-14 right)")
    for name in ("spacing_mm", "size", "val_slices", "gap", "seeds", "epochs", "repeats", "batch_size",
                 "learning_rate", "base_filters", "depth", "threshold_hu"):
        default = defaults[name].default
        p.add_argument("--" + name.replace("_", "-"), type=type(default), default=default,
                       help=f"(default: {default})")
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS, help="arms to train")
    p.add_argument("--quiet", action="store_true", help="print only errors")
    args = p.parse_args(argv)
    options = {k: v for k, v in vars(args).items() if k not in ("quiet", "arms")}
    from lung_keras.ct_compare import run_ct_slices

    run_ct_slices(CTSlicesConfig(**options, arms=tuple(args.arms), verbose=0 if args.quiet else 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
