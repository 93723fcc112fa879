""""What does the batch size change?" -- mini-batch SGD on two moons.

The same initial 2-8-8-1 network is trained with plain SGD (same learning rate) with batch
size 1, 16 and the full batch (200), for the same number of examples seen. Writes loss and
accuracy curves and the three decision boundaries as SVG to out/ (drawn by
micrograd_batch/plot.py, pure Python).

Run:  python demos/two_moons.py [--out DIR] [--quick]
(the same as `python -m micrograd_batch two-moons`; the code is in micrograd_batch/lessons/)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from micrograd_batch.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["two-moons", *sys.argv[1:]]))
