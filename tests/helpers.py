"""Shared test helpers: a small deterministic batch, and the plain batch_mean path that every fast
path (parallel workers, compiled losses) is compared with.

tests/parallel_scenarios.py imports this module in its own interpreter (and its worker processes),
with tests/ on PYTHONPATH: keep it light, with no test-framework imports.
"""

from __future__ import annotations

import random
from typing import Any
from collections.abc import Callable, Sequence

from micrograd_batch import MLP, Value, batch_mean


def make_blobs(n_samples: int, seed: int = 0,
               centers: Sequence[Sequence[float]] = ((-2.0, 0.0), (2.0, 0.0), (0.0, 2.5)),
               spread: float = 0.6) -> list[tuple[list[float], int]]:
    """Gaussian clusters around `centers`, one class per centre (labels 0, 1, ...), seeded: several-class
    data for the tests (it left the library in 0.3: no lesson uses it)."""
    rng, k = random.Random(seed), len(centers)
    return [([c + rng.gauss(0.0, spread) for c in centers[i % k]], i % k) for i in range(n_samples)]


def moons_like(m: int, shift: float = 0.0) -> list[tuple[list[float], int]]:
    """A small deterministic two-class batch (no dependency on data.py)."""
    return [([((i * 7) % 13) / 6.5 - 1.0 + shift, ((i * 5) % 11) / 5.5 - 1.0], 1 if i % 2 else -1)
            for i in range(m)]


def graph_path(
    model: MLP, loss_fn: Callable[[Any, Any], Value], examples: Sequence[tuple[Any, Any]],
    start: Sequence[float] | None = None,
) -> tuple[float, list[float]]:
    """The plain path: batch_mean of the per-example losses, one backward pass on the real graph.

    Every parameter's .grad is first set to `start` (zero when None; backward accumulates onto it).
    Returns the mean loss and the parameters' grads.
    """
    params = model.parameters()
    for p, g in zip(params, start or [0.0] * len(params), strict=True):
        p.grad = g
    loss = batch_mean([loss_fn(model(x), y) for x, y in examples])
    loss.backward()
    return loss.data, [p.grad for p in params]
