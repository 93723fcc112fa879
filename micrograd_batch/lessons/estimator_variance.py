"""Lesson 5: the mini-batch gradient as an estimator: unbiased, its variance ~ 1/m."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from . import by_hand
from .charts import INSTALL_HINT, Series, have_matplotlib, line_chart, save_svg
from .common import PathLike, say
from ..data import make_moons
from ..nn import MLP



@dataclass
class VarianceRow:
    """For one batch size m: the relative error of the mean of the sampled mini-batch
    gradients (with the error expected from sampling noise alone), their total variance
    (mean squared distance to the full gradient) and the variance theory predicts."""

    m: int
    relative_error: float
    expected_error: float
    total_variance: float
    predicted_variance: float


@dataclass
class VarianceStudy:
    """Demo 5's table, and the least-squares slope of log(variance) against log(m)."""

    rows: list[VarianceRow]
    slope: float
    n_examples: int
    trials: int
    full_gradient_norm: float
    per_example_variance: float


def finite_population_factor(m: int, n: int) -> float:
    """(N - m)/(N - 1): how much less a mean of m examples drawn WITHOUT replacement from N varies
    than one of m independent draws (1 at m = 1, 0 at m = N)."""
    return (n - m) / (n - 1)


def fit_loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares line log10(y) = slope·log10(x) + intercept; returns (slope, intercept)."""
    lx = [math.log10(x) for x in xs]
    ly = [math.log10(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    sxx = math.fsum((a - mx) ** 2 for a in lx)
    if sxx == 0.0:
        raise ValueError("a slope needs at least two different x values")
    slope = math.fsum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sxx
    return slope, my - slope * mx


def estimator_variance(
    batch_sizes: Sequence[int] = (1, 2, 4, 8, 16, 32, 64), trials: int = 400, n_examples: int = 2000,
    seed: int = 0,
) -> VarianceStudy:
    """For a fixed MLP 2-8-8-1 on `n_examples` two-moons examples (bce loss): draw `trials`
    mini-batches of each size m (without replacement inside a batch), and compare their
    gradients with the full-batch gradient.

    The mini-batch gradient is the mean of its examples' gradients (demo 1), so every
    per-example gradient is computed once (by the δ recursion) and batches just average them.
    Theory: E[ĝ] = g (unbiased) and E‖ĝ - g‖² = (σ²/m)·(N - m)/(N - 1), where σ² is the mean
    squared distance of a per-example gradient to g; the last factor, the finite-population
    correction, stays close to 1 while m ≪ N (the demo prints it per m), so the slope is close to -1.
    """
    data = make_moons(n_examples, noise=0.2, seed=seed, signed=False)
    model = MLP(2, [8, 8, 1], activation="tanh", seed=seed)
    grads = by_hand.per_example_gradients(model, data, "bce_with_logits")
    n = len(grads)
    full = [math.fsum(col) / n for col in zip(*grads)]
    sigma2 = math.fsum(math.fsum((a - b) ** 2 for a, b in zip(g, full)) for g in grads) / n
    norm = math.sqrt(math.fsum(v * v for v in full))
    rng = random.Random(seed)
    rows = []
    for m in batch_sizes:
        if not 1 <= m <= n:
            raise ValueError(f"batch size {m} is not between 1 and {n}")
        total = [0.0] * len(full)
        squared = 0.0
        for _ in range(trials):
            chosen = [grads[i] for i in rng.sample(range(n), m)]
            estimate = [sum(col) / m for col in zip(*chosen)]
            squared += sum((a - b) ** 2 for a, b in zip(estimate, full))
            total = [t + e for t, e in zip(total, estimate)]
        mean_estimate = [t / trials for t in total]
        variance = squared / trials
        predicted = sigma2 / m * finite_population_factor(m, n)
        rows.append(VarianceRow(m, by_hand.relative_difference(mean_estimate, full),
                                math.sqrt(predicted / trials) / norm, variance, predicted))
    slope, _ = fit_loglog_slope([r.m for r in rows], [r.total_variance for r in rows])
    return VarianceStudy(rows, slope, n, trials, norm, sigma2)


def demo_estimator_variance(out_dir: PathLike = "out", quick: bool = False) -> list[Path]:
    """Print demo 5's table and write the log-log plot out_dir/variance.svg."""
    trials = 500 if quick else 2000
    study = estimator_variance(trials=trials)
    say(f"A fixed MLP 2-8-8-1 and {study.n_examples} two-moons examples; the full-batch gradient g")
    say(f"has norm {study.full_gradient_norm:.4f}. For each batch size m, {trials} random mini-batches:")
    say(f"  {'m':>4} {'‖mean ĝ - g‖/‖g‖':>18} {'(noise alone)':>14} {'E‖ĝ - g‖²':>12} {'σ²/m·fpc':>12}"
        f" {'fpc':>7}")
    for r in study.rows:
        fpc = finite_population_factor(r.m, study.n_examples)
        say(f"  {r.m:>4} {r.relative_error:>18.4f} {r.expected_error:>14.4f} "
            f"{r.total_variance:>12.5f} {r.predicted_variance:>12.5f} {fpc:>7.4f}")
    say("  fpc = (N - m)/(N - 1), the finite-population correction: mini-batches drawn without replacement.")
    say(f"Fitted slope of log variance against log m: {study.slope:.3f} (theory: -1).")
    say("The average of many mini-batch gradients lands on the full gradient: what error is left")
    say("is of the size that sampling noise alone explains, and it shrinks with more trials, so")
    say("the estimate is unbiased. Its variance falls like 1/m: 4x the batch halves its spread.")
    if not have_matplotlib():
        say(f"  (no chart: {INSTALL_HINT})")
        return []
    rows = study.rows
    fitted = [rows[0].total_variance * (r.m / rows[0].m) ** study.slope for r in rows]
    chart = line_chart(
        [Series("measured E‖ĝ - g‖²", [r.m for r in rows], [r.total_variance for r in rows], markers=True),
         Series("theory σ²/m · (N-m)/(N-1)", [r.m for r in rows], [r.predicted_variance for r in rows],
                dashed=True),
         Series(f"fitted slope {study.slope:.2f}", [r.m for r in rows], fitted, dashed=True)],
        title="Variance of the mini-batch gradient", x_label="batch size m",
        y_label="mean squared distance to full gradient", log_x=True, log_y=True,
        x_ticks=[r.m for r in rows])
    path = save_svg(chart, Path(out_dir) / "variance.svg")
    say(f"  wrote {path}")
    return [path]
