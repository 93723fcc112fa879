"""Examples and mini-batches: small seeded data sets made in code (nothing is downloaded), and a
batch iterator. An example is a pair (x, y): x a list of numbers, y a label or target."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping, Sequence, Set
from typing import TypeVar

from ._checks import as_float, as_seed, is_whole_number

Example = TypeVar("Example")


def minibatches(examples: Sequence[Example], batch_size: int, shuffle: bool = True, seed: int | None = None,
                drop_last: bool = False) -> Iterator[list[Example]]:
    """One epoch as mini-batches (lists) of `batch_size` examples, shuffled by `random.Random(seed)`;
    the last may be smaller unless `drop_last`. Arguments are checked at the call, not the first batch."""
    if not is_whole_number(batch_size):
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    if isinstance(examples, (str, bytes, Mapping, Set)) or not hasattr(examples, "__len__"):
        raise TypeError(f"examples must be a list of examples, got {type(examples).__name__}")
    if len(examples) == 0:
        raise ValueError("no examples to make mini-batches from")
    order = list(range(len(examples)))
    if shuffle:
        random.Random(as_seed(seed)).shuffle(order)
    return _batches(examples, order, int(batch_size), drop_last)


def _batches(examples: Sequence[Example], order: list[int], size: int, drop_last: bool) -> Iterator[list[Example]]:
    """The examples in `order`, `size` at a time."""
    for start in range(0, len(order), size):
        indices = order[start:start + size]
        if drop_last and len(indices) < size:
            return
        yield [examples[i] for i in indices]


def _check_scale(value: object, name: str) -> None:
    """A noise level or spread: a finite real number >= 0 (NaN or inf would poison every point)."""
    if not 0.0 <= as_float(value, name) < math.inf:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def make_moons(n_samples: int = 100, noise: float = 0.1, seed: int | None = 0,
               signed: bool = True) -> list[tuple[list[float], int]]:
    """Two interleaving half circles (as scikit-learn's `make_moons`), seeded: n_samples examples
    ([x1, x2], y), the first half (upper moon) of class -1 (0 unless `signed`), the rest 1, with
    Gaussian noise of standard deviation `noise` on each coordinate."""
    if not is_whole_number(n_samples, 2):
        raise ValueError(f"n_samples must be a whole number >= 2, got {n_samples!r}")
    _check_scale(noise, "noise")
    rng = random.Random(as_seed(seed))
    n_upper = int(n_samples) // 2
    n_lower = int(n_samples) - n_upper
    negative = -1 if signed else 0
    examples = []
    for i in range(n_upper):
        t = math.pi * i / max(n_upper - 1, 1)
        examples.append(([math.cos(t), math.sin(t)], negative))
    for i in range(n_lower):
        t = math.pi * i / max(n_lower - 1, 1)
        examples.append(([1.0 - math.cos(t), 0.5 - math.sin(t)], 1))
    return [([a + rng.gauss(0.0, noise), b + rng.gauss(0.0, noise)], y) for (a, b), y in examples]
