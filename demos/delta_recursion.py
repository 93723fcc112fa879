""""Does the recursive formula for the error signal δ still hold?"

Yes, per example, unchanged. The δ recursion on plain lists (micrograd_batch/manual.py),

    δ^L = ∂L/∂a^L ⊙ g'(z^L),   δ^l = (W^(l+1))ᵀ δ^(l+1) ⊙ g'(z^l),   ∂L/∂W^l = δ^l (a^(l-1))ᵀ

is run on a 3-4-4-2 network (tanh with squared error, and relu with softmax cross-entropy)
for several examples; δ is printed per layer per example, and the averaged gradient is
checked against autograd (they agree to ~1e-16).

Run:  python demos/delta_recursion.py [--out DIR] [--quick]
(the same as `python -m micrograd_batch delta-recursion`; the code is in micrograd_batch/lessons.py)
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, too

from micrograd_batch.lessons import demo_delta_recursion  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out", help="folder for the pictures (default: out)")
    parser.add_argument("--quick", action="store_true", help="a shorter run")
    args = parser.parse_args()
    demo_delta_recursion(Path(args.out), args.quick)
