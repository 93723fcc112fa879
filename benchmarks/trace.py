#!/usr/bin/env python3
"""Issue 22, item 2: one trace per model. What `fit` costs beyond its epochs on a first and a second call.

    python3 benchmarks/trace.py          # digits (scikit-learn's bundled copy), MLP(64, [32, 10]), batch 32

The compiled code is generated and compiled once per structure and process (compile.py's cache);
a second `fit` on the same model, or on a new model of the same structure, only reads the structure
again. Measured in a fresh interpreter: `compile_loss` cold and warm, then three one-epoch fits:
the first (which compiles), a second on the same model, a third on a new model of the same
structure. The overhead of a call is its time minus the median epoch of a 3-epoch fit.
Wall-clock seconds; the load average is printed with them.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout

from micrograd_batch import MLP, SGD, compile_loss, fit, softmax_cross_entropy  # noqa: E402


def digits() -> list[tuple[list[float], int]]:
    """scikit-learn's bundled digits (1,797 images of 8x8 pixels, 0..16), pixels scaled to 0..1."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("needs scikit-learn (pip install scikit-learn): its bundled digits, no network")
    bunch = load_digits()
    pairs = zip(bunch.data, bunch.target, strict=True)
    return [([float(v) / 16.0 for v in image], int(label)) for image, label in pairs]


def one_fit(model: MLP, examples: list, epochs: int = 1) -> float:
    """Seconds of one fit call (SGD lr 0.1, batch 32) on `model`."""
    started = time.perf_counter()
    fit(model, examples, softmax_cross_entropy, SGD(model.parameters(), lr=0.1), epochs=epochs, batch_size=32)
    return time.perf_counter() - started


def main() -> None:
    examples = digits()
    print(f"digits: {len(examples):,} examples, MLP(64, [32, 10]) ReLU, softmax cross-entropy, batch 32, SGD; "
          f"load before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    model = MLP(64, [32, 10], seed=0)
    first = one_fit(model, examples)  # generates and compiles the code (nothing cached yet)
    second = one_fit(model, examples)
    third = one_fit(MLP(64, [32, 10], seed=2), examples)
    started = time.perf_counter()
    compiled = compile_loss(model, softmax_cross_entropy)
    warm = time.perf_counter() - started
    epoch = statistics.median(one_fit(MLP(64, [32, 10], seed=3 + k), examples, epochs=3) / 3 for k in range(2))
    print(f"generated source: {len(compiled.source):,} characters\n")
    print("| what | seconds | beyond an epoch |")
    print("|---|---:|---:|")
    print(f"| an epoch (median of two 3-epoch fits) | {epoch:.3f} | |")
    print(f"| first fit call, 1 epoch (generates and compiles the code) | {first:.3f} | {first - epoch:+.3f} |")
    print(f"| second fit call, same model, 1 epoch | {second:.3f} | {second - epoch:+.3f} |")
    print(f"| fit on a new model, same structure, 1 epoch | {third:.3f} | {third - epoch:+.3f} |")
    print(f"| compile_loss on a structure in the cache (reads the model) | {warm:.3f} | |")
    print(f"\n(load after: {', '.join(f'{x:.2f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
