#!/usr/bin/env python3
"""Where a training step's time goes, per example, as the batch grows (run by hand).

    python3 benchmarks/phases.py

For the benchmark workload (two moons, MLP(2, [16, 16, 1]), mean hinge loss + 1e-4·Σp²) it
times the forward pass (building the batch's graph), the backward pass, and freeing the graph,
separately, at batch 16 to 4,096, and prints the best time per example of each. The work per
example is the same at every size; what changes is how much of the graph fits in the caches.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from micrograd_batch import MLP, batch_mean, hinge, make_moons  # noqa: E402
from micrograd_batch._checks import gc_paused
from micrograd_batch.losses import l2_penalty

BATCH_SIZES = (16, 64, 256, 1024, 4096)


def phase_times(model: MLP, batch: list, repeats: int) -> tuple[float, float, float]:
    """Best-of-`repeats` seconds for forward, backward and freeing one batch's graph."""
    best = [float("inf")] * 3
    for _ in range(repeats):
        with gc_paused():
            t0 = time.perf_counter()
            loss = batch_mean([hinge(model(x), y) for x, y in batch])
            loss = loss + l2_penalty(model.parameters(), 1e-4)
            t1 = time.perf_counter()
            model.zero_grad()
            loss.backward()
            t2 = time.perf_counter()
            del loss
            t3 = time.perf_counter()
        best = [min(b, t) for b, t in zip(best, (t1 - t0, t2 - t1, t3 - t2), strict=True)]
    return best[0], best[1], best[2]


def main() -> None:
    """Print a table of µs per example for each phase and batch size."""
    data = make_moons(max(BATCH_SIZES), noise=0.1, seed=0)
    model = MLP(2, [16, 16, 1], seed=0)
    print("| batch | forward µs/ex | backward µs/ex | free µs/ex | total µs/ex |")
    print("|---:|---:|---:|---:|---:|")
    for m in BATCH_SIZES:
        times = [t / m * 1e6 for t in phase_times(model, data[:m], max(3, 512 // m))]
        cells = " | ".join(f"{t:.1f}" for t in times)
        print(f"| {m} | {cells} | {sum(times):.1f} |")


if __name__ == "__main__":
    main()
