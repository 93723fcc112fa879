"""Lesson 3: the δ recursion on a deeper network, example by example, equals autograd."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

from . import by_hand
from .common import Batch, PathLike, autograd_batch_gradient, fmt_vec, random_batch, say
from ..nn import MLP


@dataclass
class DeltaRecursion:
    """Demo 3's numbers: per-example δ records for a deeper MLP, and manual vs autograd."""

    model: MLP
    batch: Batch
    loss: str
    records: list[by_hand.ExampleBackprop]
    manual: list[float]
    autograd: list[float]
    max_abs_difference: float



def delta_recursion(
    sizes: Sequence[int] = (3, 4, 4, 2), activation: str = "tanh", n_examples: int = 4,
    loss: str = "mse", seed: int = 0,
) -> DeltaRecursion:
    """Run the δ recursion on MLP(sizes[0], sizes[1:], activation) for a seeded batch and
    compare the averaged gradient with autograd's."""
    model = MLP(sizes[0], list(sizes[1:]), activation=activation, seed=seed)
    batch = random_batch(sizes[0], n_examples, loss, sizes[-1], seed + 1)
    records = [by_hand.backprop_example(model, x, y, loss) for x, y in batch]
    grads = [r.flat() for r in records]
    mean = [math.fsum(col) / len(grads) for col in zip(*grads, strict=True)]
    _, auto = autograd_batch_gradient(model, batch, loss)
    return DeltaRecursion(model, batch, loss, records, mean, auto, by_hand.max_abs_difference(mean, auto))


def demo_delta_recursion(out_dir: PathLike = "out", quick: bool = False) -> list[Path]:
    """Print demo 3: δ per layer per example for a 3-4-4-2 network, tanh with squared error
    and relu with softmax cross-entropy, each matching autograd. Writes nothing; returns []."""
    say("The δ recursion, written with plain lists (micrograd_batch/lessons/by_hand.py), per example:")
    say("  δ^L = ∂L/∂a^L ⊙ g'(z^L),   δ^l = (W^(l+1))ᵀ δ^(l+1) ⊙ g'(z^l),   ∂L/∂W^l = δ^l (a^(l-1))ᵀ")
    for activation, loss in (("tanh", "mse"), ("relu", "softmax_cross_entropy")):
        r = delta_recursion(activation=activation, loss=loss, n_examples=3 if quick else 4)
        say(f"\nMLP 3-4-4-2, {activation} hidden layers, {loss}, {len(r.batch)} examples:")
        for i, rec in enumerate(r.records, start=1):
            say(f"  example {i}:")
            for l in range(len(rec.delta) - 1, 0, -1):
                say(f"    δ{l} = [{fmt_vec(rec.delta[l], 7)} ]")
        say(f"  {len(r.manual)} parameters; max |δ recursion - autograd| = {r.max_abs_difference:.1e}")
    say("\nThe recursion holds unchanged for every example; the batch only averages the results.")
    return []
