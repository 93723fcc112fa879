"""Lesson 2: the shortcut "average the activations first" -- and when it happens to work."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import by_hand
from .batch_by_hand import batch_by_hand
from .common import BY_HAND_BATCH, Batch, PathLike, by_hand_model, fmt_vec, say
from ..nn import MLP



@dataclass
class ShortcutComparison:
    """The true batch gradient next to the averaged-activation shortcut, for one case."""

    case: str
    true: list[float]
    shortcut: list[float]
    relative_difference: float
    max_abs_difference: float


def compare_shortcut(model: MLP, batch: Batch, case: str = "", loss: str = "mse") -> ShortcutComparison:
    """The true mean-of-per-example-gradients vs `by_hand.averaged_activation_gradient`."""
    true = by_hand.batch_gradient(model, batch, loss)
    shortcut = by_hand.averaged_activation_gradient(model, batch, loss)
    return ShortcutComparison(case, true, shortcut, by_hand.relative_difference(shortcut, true),
                              by_hand.max_abs_difference(shortcut, true))


def average_activations() -> list[ShortcutComparison]:
    """Four cases: the shortcut is wrong for the tanh network on BY_HAND_BATCH, wrong for a
    purely linear network too (it is about products, not only the nonlinearity), and exact
    for a batch of one example and for a batch whose examples share the same input."""
    tanh_net = by_hand_model()
    linear_net = by_hand_model(activation="linear")
    same_input = [([0.5, -1.0], 1.0), ([0.5, -1.0], -0.5), ([0.5, -1.0], 0.2)]
    return [
        compare_shortcut(tanh_net, BY_HAND_BATCH, "tanh net, 3 different examples"),
        compare_shortcut(linear_net, BY_HAND_BATCH, "linear net, 3 different examples"),
        compare_shortcut(tanh_net, BY_HAND_BATCH[:1], "tanh net, a batch of 1"),
        compare_shortcut(tanh_net, same_input, "tanh net, 3 examples, same x"),
    ]


def demo_average_activations(out_dir: PathLike = "out", quick: bool = False) -> list[Path]:
    """Print demo 2: the averaged-activation gradient next to the true one, why they differ,
    and when they coincide. Writes nothing; returns []."""
    model = by_hand_model()
    r = batch_by_hand(model)
    wrong = by_hand.averaged_activation_backprop(model, BY_HAND_BATCH)
    say("Same 2-2-1 tanh network and batch of 3. The shortcut: average a, g'(z) and the output")
    say("error over the batch first, then use the one-example formulas once.")
    say(f"  mean a1 = {fmt_vec(wrong.a[1])}   mean g'(z1) = {fmt_vec(wrong.g_prime[1])}")
    say(f"  shortcut δ2 = {fmt_vec(wrong.delta[2])}   shortcut δ1 = {fmt_vec(wrong.delta[1])}")
    names = [p.label for p in model.parameters()]
    say("\n" + " " * 11 + " ".join(f"{n:>9}" for n in names))
    say(f"{'true':<11}{fmt_vec(r.mean, 9)}")
    say(f"{'shortcut':<11}{fmt_vec(wrong.flat(), 9)}")
    # one weight, worked out: output weight from hidden neuron 1, index 6 in parameters()
    d2 = [rec.delta[2][0] for rec in r.records]
    a1 = [rec.a[1][0] for rec in r.records]
    products = [d * a for d, a in zip(d2, a1)]
    say("\nWhy, for the output weight from hidden neuron 1 (∂L/∂w = δ2·a1 per example):")
    say("  δ2_i·a1_i = " + ", ".join(f"{d:.4f}×{a:.4f} = {p:.4f}" for d, a, p in zip(d2, a1, products)))
    say(f"  mean of the products  = {sum(products) / 3:.4f}   (the true gradient)")
    say(f"  product of the means  = {sum(d2) / 3:.4f} × {sum(a1) / 3:.4f} = {sum(d2) / 3 * sum(a1) / 3:.4f}"
         "   (the shortcut)")
    say("The mean of a product is not the product of the means unless the factors do not vary")
    say("together over the batch; and g'(z) of a nonlinearity adds more such products (δ1 = w·δ2·g'(z1)).")
    say("\nRelative difference ‖shortcut - true‖ / ‖true‖ in four cases:")
    for c in average_activations():
        verdict = "coincide" if c.relative_difference < 1e-12 else "DIFFER"
        say(f"  {c.case:<34} {c.relative_difference:10.3g}   {verdict}")
    say("The shortcut is exact only when nothing varies across the batch that multiplies the")
    say("error (one example, or one shared input); a linear network does NOT rescue it.")
    return []
