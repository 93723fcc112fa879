""""Why is a mini-batch gradient good enough?" -- the mini-batch gradient as an estimator.

For a fixed network and 2000 examples, many random mini-batches of size m = 1, 2, 4, ..., 64
are drawn. The mean of their gradients matches the full-batch gradient (unbiased), and
their variance -- the mean squared distance to the full gradient -- falls like 1/m: the
fitted log-log slope is close to -1. Writes out/variance.svg.

Run:  python demos/estimator_variance.py [--out DIR] [--quick]
(the same as `python -m micrograd_batch estimator-variance`; the code is in micrograd_batch/lessons/)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from micrograd_batch.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["estimator-variance", *sys.argv[1:]]))
