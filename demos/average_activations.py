""""Whenever I see an activation a or g'(a) in my formulas, do I just replace it with its
average over the batch? Or am I oversimplifying?"

Same network and batch as batch_by_hand.py. The shortcut -- average a, g'(z) and the
output error over the batch, then apply the one-example formulas once -- is compared with
the true batch gradient. They differ (by about 100 % here), because the gradient of a
weight is a mean of PRODUCTS δ_i·a_i, and a mean of products is not the product of means.
They coincide only in special cases: a batch of one, or every example with the same input.

Run:  python demos/average_activations.py [--out DIR] [--quick]
(the same as `python -m micrograd_batch average-activations`; the code is in micrograd_batch/lessons.py)
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from micrograd_batch.lessons import demo_average_activations  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out", help="folder for the pictures (default: out)")
    parser.add_argument("--quick", action="store_true", help="a shorter run")
    args = parser.parse_args()
    demo_average_activations(Path(args.out), args.quick)
