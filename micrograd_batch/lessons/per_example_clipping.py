"""Lesson: "Why would you ever need per-example gradients?" -- DP-SGD's clipping.

A training step needs only the batch gradient, the mean of the per-example gradients. But
differentially private SGD (Abadi et al., 2016, "Deep Learning with Differential Privacy")
must bound what any ONE example can do to a step: it clips each example's gradient to norm at
most C, averages the clipped gradients, and adds Gaussian noise of standard deviation σ·C/m:

    g̃ = (1/m) (Σ_i clip_C(g_i) + N(0, σ²C² I)),   clip_C(g) = g · min(1, C/‖g‖).

Clipping the mean instead bounds only the whole step, not one example's share of it: an
outlier still decides the direction. Per-example gradients are what make the difference, and
with one graph per example they are one backward pass per example (`per_example_grads`).
The norm ‖v‖ below is Python's `math.hypot(*v)`; clip_C is `batch.clip_to_norm`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

from .common import Examples, PathLike, say
from ..batch import clip_per_example, clip_to_norm, mean_of, per_example_grads
from ..data import make_moons, minibatches
from ..engine import Value
from ..losses import bce_with_logits, mse
from ..nn import MLP
from ..metrics import accuracy


def lesson_batch(outlier_target: float = 10.0, m: int = 8, seed: int = 0) -> Examples:
    """m seeded regression examples (target sin(x1) + x2/2), the last one's target replaced
    by `outlier_target`: one example the model fits very badly."""
    rng = random.Random(seed)
    xs = [[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(m)]
    examples = [(x, math.sin(x[0]) + 0.5 * x[1]) for x in xs]
    examples[-1] = (examples[-1][0], outlier_target)
    return examples


def lesson_model(seed: int = 0) -> MLP:
    """The lesson's network: 2 inputs, 8 tanh hidden units, 1 linear output."""
    return MLP(2, [8, 1], activation="tanh", seed=seed)


def losses_of(model: MLP, examples: Examples) -> list[Value]:
    """Each example's own mse loss (one graph per example)."""
    return [mse(model(x), y) for x, y in examples]  # type: ignore[arg-type]


@dataclass
class ClippingResult:
    """Per-example gradient norms, and the mean of clipped gradients vs the clipped mean."""

    max_norm: float
    per_example_norms: list[float]
    mean_norm: float  # ‖mean of the gradients‖
    outlier_share: float  # ‖outlier's gradient/m‖ / ‖mean‖: how much of the step it is
    clipped_mean: list[float]  # clip_C(mean of g_i)
    mean_of_clipped: list[float]  # mean of clip_C(g_i)
    relative_difference: float  # ‖clipped_mean - mean_of_clipped‖ / ‖mean_of_clipped‖
    cosine: float  # cos of the angle between them
    outlier_contribution: float  # ‖g_outlier‖/m: how far the outlier alone moves the mean
    outlier_contribution_clipped: float  # ‖clip_C(g_outlier)‖/m <= C/m


def clipping(max_norm: float = 1.0, outlier_target: float = 10.0) -> ClippingResult:
    """The clipping numbers for the lesson's model and batch."""
    model, examples = lesson_model(), lesson_batch(outlier_target)
    losses = losses_of(model, examples)
    grads = per_example_grads(losses, model.parameters())
    clipped = clip_per_example(losses, model.parameters(), max_norm)
    m = len(grads)
    mean, mean_clipped = mean_of(grads), mean_of(clipped)
    clipped_mean = clip_to_norm(mean, max_norm)
    difference = [a - b for a, b in zip(clipped_mean, mean_clipped, strict=True)]
    cosine = (math.fsum(a * b for a, b in zip(clipped_mean, mean_clipped, strict=True))
              / (math.hypot(*clipped_mean) * math.hypot(*mean_clipped)))
    return ClippingResult(
        max_norm=max_norm,
        per_example_norms=[math.hypot(*g) for g in grads],
        mean_norm=math.hypot(*mean),
        outlier_share=math.hypot(*grads[-1]) / m / math.hypot(*mean),
        clipped_mean=clipped_mean,
        mean_of_clipped=mean_clipped,
        relative_difference=math.hypot(*difference) / math.hypot(*mean_clipped),
        cosine=cosine,
        outlier_contribution=math.hypot(*grads[-1]) / m,
        outlier_contribution_clipped=math.hypot(*clipped[-1]) / m,
    )


@dataclass
class SensitivityRow:
    """Replace the outlier by a normal example: how far does the batch gradient move?"""

    outlier_target: float
    unclipped_change: float  # ‖Δ mean of g_i‖: grows with the outlier, unbounded
    clipped_change: float  # ‖Δ mean of clip_C(g_i)‖: at most 2C/m, whatever the outlier


def sensitivity(targets: Sequence[float] = (1.0, 10.0, 100.0, 1000.0), max_norm: float = 1.0) -> list[SensitivityRow]:
    """For each outlier target, the change of the (clipped) mean gradient when the outlier is
    replaced by an ordinary example (the batch with target sin(x1) + x2/2 everywhere)."""
    model = lesson_model()
    ordinary = lesson_batch()
    x_last = ordinary[-1][0]
    ordinary[-1] = (x_last, math.sin(x_last[0]) + 0.5 * x_last[1])
    base_losses = losses_of(model, ordinary)
    base = mean_of(per_example_grads(base_losses, model.parameters()))
    base_clipped = mean_of(clip_per_example(base_losses, model.parameters(), max_norm))
    rows = []
    for target in targets:
        losses = losses_of(model, lesson_batch(target))
        mean = mean_of(per_example_grads(losses, model.parameters()))
        change = math.hypot(*[a - b for a, b in zip(mean, base, strict=True)])
        clipped = mean_of(clip_per_example(losses, model.parameters(), max_norm))
        clipped_change = math.hypot(*[a - b for a, b in zip(clipped, base_clipped, strict=True)])
        rows.append(SensitivityRow(target, change, clipped_change))
    return rows


def dp_sgd_step(model: MLP, batch: Sequence[tuple], lr: float, max_norm: float, noise_multiplier: float,
                rng: random.Random) -> list[float]:
    """One DP-SGD step (Abadi et al., 2016, Algorithm 1, without privacy accounting): clip each
    example's gradient to `max_norm`, sum, add N(0, (noise_multiplier·max_norm)²) to each
    component, divide by m, step with `lr`. Returns the noisy gradient used."""
    losses = [bce_with_logits(model(x), y) for x, y in batch]  # type: ignore[arg-type]
    clipped = clip_per_example(losses, model.parameters(), max_norm)
    sigma = noise_multiplier * max_norm
    noisy = [(math.fsum(column) + rng.gauss(0.0, sigma)) / len(batch) for column in zip(*clipped, strict=True)]
    for p, g in zip(model.parameters(), noisy, strict=True):
        p.data -= lr * g
    return noisy


def plain_sgd_step(model: MLP, batch: Sequence[tuple], lr: float) -> None:
    """One ordinary step: the mean of the per-example gradients."""
    losses = [bce_with_logits(model(x), y) for x, y in batch]  # type: ignore[arg-type]
    for p, g in zip(model.parameters(), mean_of(per_example_grads(losses, model.parameters())), strict=True):
        p.data -= lr * g


@dataclass
class DPTraining:
    """Two-moons accuracy after the same epochs of plain SGD and of DP-SGD."""

    epochs: int
    batch_size: int
    max_norm: float
    noise_multiplier: float
    plain_accuracy: float
    dp_accuracy: float
    clipped_fraction: float  # fraction of per-example gradients the last epoch clipped


def dp_training(epochs: int = 30, batch_size: int = 25, lr: float = 0.5, max_norm: float = 1.0,
                noise_multiplier: float = 1.0, seed: int = 0) -> DPTraining:
    """Train the same initial 2-8-1 network on 200 two-moons examples with plain SGD and with
    DP-SGD (same lr, batches and epochs); return both training accuracies."""
    data = make_moons(200, noise=0.1, seed=seed, signed=False)
    plain, private = MLP(2, [8, 1], activation="tanh", seed=seed), MLP(2, [8, 1], activation="tanh", seed=seed)
    rng = random.Random(seed)
    clipped = seen = 0
    for epoch in range(epochs):
        for batch in minibatches(data, batch_size, shuffle=True, seed=seed + epoch):
            plain_sgd_step(plain, batch, lr)
            if epoch == epochs - 1:
                losses = [bce_with_logits(private(x), y) for x, y in batch]  # type: ignore[arg-type]
                norms = [math.hypot(*g) for g in per_example_grads(losses, private.parameters())]
                clipped += sum(n > max_norm for n in norms)
                seen += len(norms)
            dp_sgd_step(private, batch, lr, max_norm, noise_multiplier, rng)
    return DPTraining(epochs, batch_size, max_norm, noise_multiplier, accuracy(plain, data, threshold=0.0),
                      accuracy(private, data, threshold=0.0), clipped / seen)


def demo_per_example_clipping(out_dir: PathLike = "out", quick: bool = False) -> list[Path]:
    """Print the lesson's numbers. Writes nothing; returns []."""
    r = clipping()
    say("A 2-8-1 tanh network, a batch of 8 regression examples; the last one is an outlier (target 10).")
    say("Per-example gradient norms ‖g_i‖ (per_example_grads: one backward pass per example's graph):")
    say("  " + "  ".join(f"{n:.3f}" for n in r.per_example_norms))
    say(f"‖mean‖ = {r.mean_norm:.3f}; the outlier alone is {r.outlier_share:.0%} of it (‖g_8/m‖ / ‖mean‖).\n")
    say(f"Clip to C = {r.max_norm}:")
    say(f"  clip the mean (one clip):        norm {math.hypot(*r.clipped_mean):.3f}")
    say(f"  mean of clipped (DP-SGD):        norm {math.hypot(*r.mean_of_clipped):.3f}")
    say(f"  ‖difference‖ / ‖mean of clipped‖ = {r.relative_difference:.2f}, cosine {r.cosine:.3f}: different steps.")
    say(f"  The outlier's own term in the mean: ‖g_8‖/m = {r.outlier_contribution:.3f} before, "
        f"{r.outlier_contribution_clipped:.3f} after (at most C/m = {r.max_norm / len(r.per_example_norms):.3f}).\n")
    say("Sensitivity: replace the outlier by an ordinary example; how far does the gradient move?")
    say(f"{'outlier target':>15} {'‖Δ mean g‖':>12} {'‖Δ mean clip(g)‖':>17}   (bound 2C/m = "
        f"{2 * r.max_norm / len(r.per_example_norms):.3f})")
    for row in sensitivity():
        say(f"{row.outlier_target:>15g} {row.unclipped_change:>12.3f} {row.clipped_change:>17.3f}")
    say("Unclipped, one example can move the step arbitrarily far; clipped, at most 2C/m. That bound is")
    say("what lets DP-SGD's Gaussian noise (std σC/m) hide any one example. It needs per-example gradients.\n")
    t = dp_training(epochs=5 if quick else 30)
    say(f"Two moons, 200 examples, batches of {t.batch_size}, {t.epochs} epochs, same lr and batches:")
    say(f"  plain SGD accuracy {t.plain_accuracy:.1%};  DP-SGD (C = {t.max_norm}, σ = {t.noise_multiplier})"
        f" accuracy {t.dp_accuracy:.1%}")
    say(f"  ({t.clipped_fraction:.0%} of the per-example gradients of the last epoch were clipped.)")
    say("No privacy budget (ε, δ) is computed here: that needs the moments accountant of Abadi et al.")
    return []
