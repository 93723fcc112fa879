"""Handwritten digits, one example at a time and as matrices: the same epoch both ways, then 96 %+.

scikit-learn ships 1,797 handwritten digits (8 × 8 pixels, classes 0-9) inside its package: no
download. An MLP 64-32-10 learns them with softmax cross-entropy and SGD with momentum, batch 32:
one epoch with fit's compiled per-example path (every example its own forward and backward pass,
joined by batch_mean), one with fit(..., backend="numpy") (the batch as one matrix, one matmul per
layer: the δ recursion as Δ and Aᵀ), from the same weights. They agree to rounding; then the
matrices train on.

Run:  python3 dev.py demo digits
      (it makes .venv/ with the `digits` and `fast` extras: scikit-learn and numpy; without them this
      script says so in one line)
"""

import importlib.util
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

if importlib.util.find_spec("sklearn") is None or importlib.util.find_spec("numpy") is None:
    print("skipped: this demo needs scikit-learn and numpy: pip install 'micrograd_batch[digits,fast]'")
    sys.exit(0)

from sklearn.datasets import load_digits  # noqa: E402

from micrograd_batch import MLP, SGD, accuracy, fit, softmax_cross_entropy  # noqa: E402

data = load_digits()
pairs = zip(data.data.tolist(), data.target.tolist(), strict=True)            # 64 pixels 0-16, a label 0-9
examples = [([v / 16.0 for v in row], int(label)) for row, label in pairs]
random.Random(4).shuffle(examples)
train, test = examples[:1438], examples[1438:]          # 80 % to learn from, 20 % to test on


def train_from_scratch(backend, epochs):
    """A fresh MLP 64-32-10 (always the same starting weights) trained for `epochs` epochs."""
    model = MLP(64, [32, 10], seed=0)
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
    started = time.perf_counter()
    fit(model, train, softmax_cross_entropy, optimizer, epochs=epochs, batch_size=32,
        backend=backend)
    return model, time.perf_counter() - started


per_example, per_example_seconds = train_from_scratch("python", 1)
matrices, matrix_seconds = train_from_scratch("numpy", 1)
difference = max(abs(a.data - b.data) for a, b in zip(per_example.parameters(), matrices.parameters(), strict=True))
print(f"one epoch per example (compiled): {per_example_seconds:.3f} s (with compiling the model first)")
print(f"one epoch as matrices (numpy):    {matrix_seconds:.3f} s (with converting the examples to arrays first)")
print(f"max |difference| of the {len(matrices.parameters())} weights after one epoch = {difference:.1e}")

trained, seconds = train_from_scratch("numpy", 20)
print(f"20 epochs as matrices: {seconds:.2f} s, test accuracy {accuracy(trained, test):.1%}")
