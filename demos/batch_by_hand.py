""""In batch training you feed forward all examples and then backpropagate the error --
do you average them or something?"

A 2-2-1 network (tanh hidden layer, linear output) and a batch of 3 examples with squared
error. Each example is pushed forward and backpropagated ON ITS OWN by the δ recursion
(micrograd_batch/lessons/by_hand.py), giving its own gradient. The mean of those 3 gradients is then
compared with what autograd gives through ONE batch-loss node, batch_mean(L_1, L_2, L_3):
the two agree to rounding (~1e-16). The batch graph is drawn to out/batch_graph.svg.

Answer: only the gradients are averaged (the batch_mean node sends 1/m to each example);
the activations are never averaged.

Run:  python demos/batch_by_hand.py [--out DIR] [--quick]
(the same as `python -m micrograd_batch batch-by-hand`; the code is in micrograd_batch/lessons/)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from micrograd_batch.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["batch-by-hand", *sys.argv[1:]]))
