""""Whenever I see an activation a or g'(a) in my formulas, do I just replace it with its
average over the batch? Or am I oversimplifying?"

Same network and batch as batch_by_hand.py. The shortcut -- average a, g'(z) and the
output error over the batch, then apply the one-example formulas once -- is compared with
the true batch gradient. They differ (by about 100 % here), because the gradient of a
weight is a mean of PRODUCTS δ_i·a_i, and a mean of products is not the product of means.
They coincide only in special cases: a batch of one, or every example with the same input.

Run:  python demos/average_activations.py [--out DIR] [--quick]
(the same as `python -m micrograd_batch average-activations`; the code is in micrograd_batch/lessons/)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from micrograd_batch.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["average-activations", *sys.argv[1:]]))
