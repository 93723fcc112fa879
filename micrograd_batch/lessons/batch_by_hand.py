"""Lesson 1: a 2-2-1 network and a batch of three examples, backpropagated by hand, one
example at a time, then averaged -- the same numbers autograd gives through `batch_mean`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from . import by_hand
from .common import (BY_HAND_BATCH, THE_ANSWER, Batch, PathLike, autograd_batch_gradient, by_hand_model, fmt_vec,
                     render_graph, say)
from ..engine import Value
from ..nn import MLP

@dataclass
class BatchByHand:
    """Demo 1's numbers: each example's δ-recursion record, their gradients, the mean, and
    the gradient autograd gives through batch_mean; `max_abs_difference` compares the two."""

    model: MLP
    batch: Batch
    records: list[by_hand.ExampleBackprop]
    per_example: list[list[float]]
    mean: list[float]
    autograd: list[float]
    max_abs_difference: float
    root: Value


def batch_by_hand(model: MLP | None = None, batch: Batch | None = None, loss: str = "mse") -> BatchByHand:
    """Backpropagate each example of `batch` by the δ recursion, average the gradients, and
    compare with autograd's gradient of batch_mean(losses). Defaults: the 2-2-1 tanh network
    and BY_HAND_BATCH with squared error."""
    model = model or by_hand_model()
    batch = list(batch or BY_HAND_BATCH)
    records = [by_hand.backprop_example(model, x, y, loss) for x, y in batch]
    per_example = [r.flat() for r in records]
    mean = [math.fsum(col) / len(per_example) for col in zip(*per_example, strict=True)]
    root, auto = autograd_batch_gradient(model, batch, loss)
    return BatchByHand(model, batch, records, per_example, mean, auto,
                       by_hand.max_abs_difference(mean, auto), root)


def demo_batch_by_hand(out_dir: PathLike = "out", quick: bool = False) -> list[Path]:
    """Print demo 1 (per-example forward values, δs and gradients; their mean; autograd's
    gradient) and draw the batch graph to out_dir/batch_graph.svg. Returns the files written."""
    r = batch_by_hand()
    names = [p.label for p in r.model.parameters()]
    say(THE_ANSWER + "\n")
    say("A 2-2-1 network (tanh hidden layer, linear output), squared error, a batch of 3.")
    say("Each example goes forward and backward ON ITS OWN, with its own z, a, g'(z) and δ.")
    say("Here δ = ∂L_i/∂z is for example i's OWN loss L_i (unscaled); the batch loss (1/3) Σ L_i")
    say("gets 1/3 of it, and that 1/3-scaled share is what the batch graph's picture shows:")
    for i, ((x, y), rec) in enumerate(zip(r.batch, r.records, strict=True), start=1):
        say(f"\nexample {i}: x = {x}, y = {y}")
        say(f"  z1 = {fmt_vec(rec.z[1])}    a1 = tanh(z1) = {fmt_vec(rec.a[1])}")
        say(f"  output a2 = {rec.a[2][0]:.4f}    loss (a2 - y)² = {rec.loss:.4f}")
        say(f"  δ2 = 2(a2 - y)·1 = {fmt_vec(rec.delta[2])}")
        say(f"  δ1 = W2ᵀ δ2 ⊙ (1 - a1²) = {fmt_vec(rec.delta[1])}")
    say("\nGradients ∂L_i/∂θ, one column per parameter (L1.n2.w1: layer 1, neuron 2, weight 1):")
    say(" " * 11 + " ".join(f"{n:>9}" for n in names))
    for i, g in enumerate(r.per_example, start=1):
        say(f"{'example ' + str(i):<11}{fmt_vec(g, 9)}")
    say(f"{'mean of 3':<11}{fmt_vec(r.mean, 9)}")
    say(f"{'autograd':<11}{fmt_vec(r.autograd, 9)}")
    say(f"\nbatch loss = mean of the 3 losses = {r.root.data:.6f}")
    say(f"max |mean of per-example gradients - autograd through batch_mean| = {r.max_abs_difference:.1e}")
    say("So: nothing is averaged on the way forward. Each example is backpropagated with its")
    say("own activations, and only the resulting GRADIENTS are averaged (the 1/m of the mean).")
    files = render_graph(r.root, Path(out_dir) / "batch_graph.svg")
    if files:
        say(f"The batch graph (one box per example, shared parameters once): {files[0]}")
        say("  In it, each parameter's box lists what each example adds to its grad: 1/3 of that")
        say("  example's gradient in the table above (the mean node's local derivative is 1/3).")
        delta = r.records[0].delta[1][0]
        say(f"  E.g. L1.n1.b: example 1's δ1 = {delta:.4f} in the table, {delta:.4f}/3 = {delta / 3:.4f}"
            " in the picture.")
    return files
