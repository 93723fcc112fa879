"""Lesson 2: the shortcut "average the activations first" -- and when it happens to work."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

from . import by_hand
from .batch_by_hand import batch_by_hand
from .common import BY_HAND_BATCH, Batch, PathLike, by_hand_model, fmt_vec, say
from ..nn import MLP



@dataclass
class ShortcutComparison:
    """The true batch gradient next to the averaged-activation shortcut, for one case, and the
    largest covariance over the batch between an error signal and what multiplies it."""

    case: str
    true: list[float]
    shortcut: list[float]
    relative_difference: float
    max_abs_difference: float
    largest_covariance: float


def covariance(u: Sequence[float], v: Sequence[float]) -> float:
    """The covariance over the batch, mean(u·v) - mean(u)·mean(v): zero exactly when the mean of
    the products equals the product of the means."""
    m = len(u)
    return math.fsum(a * b for a, b in zip(u, v, strict=True)) / m - math.fsum(u) / m * math.fsum(v) / m


def shortcut_covariances(model: MLP, batch: Batch, loss: str = "mse") -> list[float]:
    """Every covariance over the batch that the shortcut drops, one per product it replaces by a
    product of means: ∂L/∂a ⊙ g'(z) at the output, (Wᵀδ) ⊙ g'(z) in each hidden layer, and
    δ_j · a_k for each weight. All zero => the shortcut gives exactly the true gradient."""
    layers = by_hand.read_weights(model)
    records = [by_hand.backprop_example(layers, x, y, loss) for x, y in batch]
    return (_output_covariances(records, len(layers)) + _hidden_covariances(layers, records)
            + _weight_covariances(records, len(layers)))


def _output_covariances(records: Sequence[by_hand.ExampleBackprop], L: int) -> list[float]:
    """cov(∂L/∂a_j, g'(z_j)) at the output layer L, one per output j."""
    return [covariance([r.dL_da[j] for r in records], [r.g_prime[L][j] for r in records])
            for j in range(len(records[0].dL_da))]


def _hidden_covariances(layers: Sequence[by_hand.LayerWeights],
                        records: Sequence[by_hand.ExampleBackprop]) -> list[float]:
    """cov((Wᵀδ)_k, g'(z_k)) in each hidden layer, one per hidden neuron k."""
    out: list[float] = []
    for l in range(1, len(layers)):
        W_next = layers[l].W
        back = [[math.fsum(W_next[j][k] * r.delta[l + 1][j] for j in range(len(W_next)))
                 for k in range(len(W_next[0]))] for r in records]
        out += [covariance([row[k] for row in back], [r.g_prime[l][k] for r in records])
                for k in range(len(back[0]))]
    return out


def _weight_covariances(records: Sequence[by_hand.ExampleBackprop], L: int) -> list[float]:
    """cov(δ_j, a_k) for each weight of each layer."""
    out: list[float] = []
    for l in range(1, L + 1):
        deltas = [[r.delta[l][j] for r in records] for j in range(len(records[0].delta[l]))]
        inputs = [[r.a[l - 1][k] for r in records] for k in range(len(records[0].a[l - 1]))]
        out += [covariance(d, a) for d in deltas for a in inputs]
    return out


def compare_shortcut(model: MLP, batch: Batch, case: str = "", loss: str = "mse") -> ShortcutComparison:
    """The true mean-of-per-example-gradients vs `by_hand.averaged_activation_gradient`."""
    true = by_hand.batch_gradient(model, batch, loss)
    shortcut = by_hand.averaged_activation_gradient(model, batch, loss)
    largest = max(abs(c) for c in shortcut_covariances(model, batch, loss))
    return ShortcutComparison(case, true, shortcut, by_hand.relative_difference(shortcut, true),
                              by_hand.max_abs_difference(shortcut, true), largest)


def with_errors(model: MLP, inputs: Sequence[Sequence[float]], errors: Sequence[float]) -> Batch:
    """Examples whose targets make the output error ŷ - y equal `errors` (one output)."""
    return [(list(x), by_hand.forward(model, x)[1][-1][0] - e) for x, e in zip(inputs, errors, strict=True)]


def one_linear_neuron(w: float = 0.5, b: float = 0.25) -> MLP:
    """ŷ = w·x + b: an MLP with one input and one linear output neuron, weights set by hand."""
    model = MLP(1, [1], activation="linear", seed=0)
    neuron = model.layers[0].neurons[0]
    neuron.w[0].data, neuron.b.data = w, b
    return model


def average_activations() -> list[ShortcutComparison]:
    """Six cases. The shortcut differs for the tanh network on BY_HAND_BATCH and for a purely
    linear network (it is about products, not only the nonlinearity). It is exact whenever
    every dropped covariance is zero: a batch of one; examples sharing one input; a linear
    network whose examples have equal errors; and one linear neuron with x = (0, 1, 2) and
    errors (2, -1, 2), where both x and the error vary but not together."""
    tanh_net = by_hand_model()
    linear_net = by_hand_model(activation="linear")
    same_input = [([0.5, -1.0], 1.0), ([0.5, -1.0], -0.5), ([0.5, -1.0], 0.2)]
    inputs = [x for x, _ in BY_HAND_BATCH]
    neuron = one_linear_neuron()
    return [
        compare_shortcut(tanh_net, BY_HAND_BATCH, "tanh net, 3 different examples"),
        compare_shortcut(linear_net, BY_HAND_BATCH, "linear net, 3 different examples"),
        compare_shortcut(tanh_net, BY_HAND_BATCH[:1], "tanh net, a batch of 1"),
        compare_shortcut(tanh_net, same_input, "tanh net, 3 examples, same x"),
        compare_shortcut(linear_net, with_errors(linear_net, inputs, [0.5, 0.5, 0.5]),
                         "linear net, 3 x's, equal errors"),
        compare_shortcut(neuron, with_errors(neuron, [[0.0], [1.0], [2.0]], [2.0, -1.0, 2.0]),
                         "1 neuron, x=(0,1,2), e=(2,-1,2)"),
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
    products = [d * a for d, a in zip(d2, a1, strict=True)]
    say("\nWhy, for the output weight from hidden neuron 1 (∂L/∂w = δ2·a1 per example):")
    say("  δ2_i·a1_i = " + ", ".join(f"{d:.4f}×{a:.4f} = {p:.4f}" for d, a, p in zip(d2, a1, products, strict=True)))
    say(f"  mean of the products  = {sum(products) / 3:.4f}   (the true gradient)")
    say(f"  product of the means  = {sum(d2) / 3:.4f} × {sum(a1) / 3:.4f} = {sum(d2) / 3 * sum(a1) / 3:.4f}"
         "   (the shortcut)")
    say("The mean of a product is not the product of the means unless the factors do not vary")
    say("together over the batch; and g'(z) of a nonlinearity adds more such products (δ1 = w·δ2·g'(z1)).")
    say("\nSix cases: relative difference ‖shortcut - true‖/‖true‖, largest difference, and the largest")
    say("covariance over the batch between an error signal and what multiplies it:")
    say(f"  {'case':<34}{'relative':>10}{'max |diff|':>12}{'max |cov|':>12}")
    for c in average_activations():
        verdict = "exact" if c.max_abs_difference <= 1e-12 else "DIFFER"
        say(f"  {c.case:<34}{c.relative_difference:>10.4g}{c.max_abs_difference:>12.2g}"
            f"{c.largest_covariance:>12.2g}   {verdict}")
    say("The shortcut is exact when every one of those covariances is zero: then each mean of a")
    say("product equals the product of the means. A batch of one or a shared input are special")
    say("cases; so are equal errors in a linear net, and x = (0, 1, 2) with errors (2, -1, 2), where")
    say("both vary but not together. A linear network alone does NOT rescue it.")
    return []
