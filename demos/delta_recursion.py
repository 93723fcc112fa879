""""Does the recursive formula for the error signal δ still hold?"

Yes, per example, unchanged. The δ recursion on plain lists (micrograd_batch/lessons/by_hand.py),

    δ^L = ∂L/∂a^L ⊙ g'(z^L),   δ^l = (W^(l+1))ᵀ δ^(l+1) ⊙ g'(z^l),   ∂L/∂W^l = δ^l (a^(l-1))ᵀ

is run on a 3-4-4-2 network (tanh with squared error, and relu with softmax cross-entropy)
for several examples; δ is printed per layer per example, and the averaged gradient is
checked against autograd (they agree to ~1e-16).

Run:  python demos/delta_recursion.py [--out DIR] [--quick]
(the same as `python -m micrograd_batch delta-recursion`; the code is in micrograd_batch/lessons/)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from micrograd_batch.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["delta-recursion", *sys.argv[1:]]))
