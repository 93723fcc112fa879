"""Lesson 5: the mini-batch gradient as an estimator: unbiased, its variance ~ 1/m."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

from . import by_hand
from .charts import INSTALL_HINT, Series, have_matplotlib, line_chart, save_svg
from .common import PathLike, say
from ..data import make_moons
from ..nn import MLP



@dataclass
class VarianceRow:
    """For one batch size m: how far the average of the T sampled mini-batch gradients lies from
    the full gradient g (relative to ‖g‖), the root mean square that distance has over many seeds
    when ĝ is unbiased, the variance E‖ĝ - g‖² measured and predicted, and (error/RMS)² for each
    of the groups the T trials were split into (mean 1 over many groups when ĝ is unbiased)."""

    m: int
    error_of_average: float
    rms_if_unbiased: float
    total_variance: float
    predicted_variance: float
    group_ratios: list[float]


@dataclass
class VarianceStudy:
    """Demo 5's table, and the least-squares slope of log(variance) against log(m)."""

    rows: list[VarianceRow]
    slope: float
    n_examples: int
    trials: int
    full_gradient_norm: float
    per_example_variance: float
    effective_dimension: float
    n_parameters: int

    def pooled_ratio(self) -> float:
        """The mean of (error/RMS)² over every group of every row: 1 (up to noise) if unbiased."""
        ratios = [q for row in self.rows for q in row.group_ratios]
        return math.fsum(ratios) / len(ratios)

    def share_beyond(self, times: float) -> float:
        """The fraction of groups whose error of the average exceeded `times` its RMS."""
        ratios = [q for row in self.rows for q in row.group_ratios]
        return sum(q > times * times for q in ratios) / len(ratios)


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
    slope = math.fsum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sxx
    return slope, my - slope * mx


def effective_dimension(grads: Sequence[Sequence[float]], full: Sequence[float]) -> float:
    """(tr Σ)² / tr(Σ²) for the covariance Σ of the per-example gradients: the number of
    directions the sampling noise effectively spreads over (p if evenly over p, 1 if along one)."""
    n = len(grads)
    centred = [[g - f for g in column] for column, f in zip(zip(*grads, strict=True), full, strict=True)]
    trace = math.fsum(math.fsum(c * c for c in column) for column in centred) / n
    squares = math.fsum((math.fsum(a * b for a, b in zip(u, v, strict=True)) / n) ** 2
                        for u in centred for v in centred)
    return trace * trace / squares


def estimator_variance(
    batch_sizes: Sequence[int] = (1, 2, 4, 8, 16, 32, 64), trials: int = 400, n_examples: int = 2000,
    seed: int = 0, groups: int = 20,
) -> VarianceStudy:
    """For a fixed MLP 2-8-8-1 on `n_examples` two-moons examples (bce loss): draw `trials`
    mini-batches of each size m (without replacement inside a batch), and compare their
    gradients with the full-batch gradient.

    The mini-batch gradient is the mean of its examples' gradients (demo 1), so every
    per-example gradient is computed once (by the δ recursion) and batches just average them.
    Theory: E[ĝ] = g (unbiased) and E‖ĝ - g‖² = (σ²/m)·(N - m)/(N - 1), where σ² is the mean
    squared distance of a per-example gradient to g; the last factor, the finite-population
    correction, stays close to 1 while m ≪ N (the demo prints it per m), so the slope is close to -1.
    The trials are also split into `groups` consecutive groups, each averaged on its own: their
    (error/RMS)² have mean 1 over many groups when ĝ is unbiased.
    """
    if trials % groups:
        raise ValueError(f"trials ({trials}) must be a multiple of groups ({groups})")
    data = make_moons(n_examples, noise=0.2, seed=seed, signed=False)
    model = MLP(2, [8, 8, 1], activation="tanh", seed=seed)
    grads = by_hand.per_example_gradients(model, data, "bce_with_logits")
    n = len(grads)
    full = [math.fsum(col) / n for col in zip(*grads, strict=True)]
    sigma2 = math.fsum(math.fsum((a - b) ** 2 for a, b in zip(g, full, strict=True)) for g in grads) / n
    norm = math.sqrt(math.fsum(v * v for v in full))
    rng = random.Random(seed)
    rows = []
    for m in batch_sizes:
        if not 1 <= m <= n:
            raise ValueError(f"batch size {m} is not between 1 and {n}")
        predicted = sigma2 / m * finite_population_factor(m, n)
        size = trials // groups
        total = [0.0] * len(full)
        squared = 0.0
        ratios = []
        for _ in range(groups):
            group, squared = _sample_group(grads, full, m, size, rng, squared)
            total = [t + g for t, g in zip(total, group, strict=True)]
            ratios.append(sum((t / size - b) ** 2 for t, b in zip(group, full, strict=True)) / (predicted / size))
        mean_estimate = [t / trials for t in total]
        rows.append(VarianceRow(m, by_hand.relative_difference(mean_estimate, full),
                                math.sqrt(predicted / trials) / norm, squared / trials, predicted, ratios))
    slope, _ = fit_loglog_slope([r.m for r in rows], [r.total_variance for r in rows])
    return VarianceStudy(rows, slope, n, trials, norm, sigma2, effective_dimension(grads, full),
                         len(full))


def _sample_group(grads: Sequence[Sequence[float]], full: Sequence[float], m: int, size: int,
                  rng: random.Random, squared: float) -> tuple[list[float], float]:
    """`size` mini-batch gradients of m examples each, drawn by `rng` (without replacement inside a
    batch): their sum, and `squared` plus their squared distances to the full gradient `full`."""
    group = [0.0] * len(full)
    for _ in range(size):
        chosen = [grads[i] for i in rng.sample(range(len(grads)), m)]
        estimate = [sum(col) / m for col in zip(*chosen, strict=True)]
        squared += sum((a - b) ** 2 for a, b in zip(estimate, full, strict=True))
        group = [t + e for t, e in zip(group, estimate, strict=True)]
    return group, squared


def demo_estimator_variance(out_dir: PathLike = "out", quick: bool = False) -> list[Path]:
    """Print demo 5's table and write the log-log plot out_dir/variance.svg."""
    trials = 500 if quick else 2000
    study = estimator_variance(trials=trials)
    say(f"A fixed MLP 2-8-8-1 and {study.n_examples} two-moons examples; the full-batch gradient g")
    say(f"has norm {study.full_gradient_norm:.4f}. For each batch size m, {trials} random mini-batches:")
    say(f"  {'m':>4} {'E‖ĝ - g‖²':>12} {'σ²/m·fpc':>12} {'fpc':>7} {'‖avg ĝ - g‖/‖g‖':>17} {'RMS if unbiased':>16}")
    for r in study.rows:
        fpc = finite_population_factor(r.m, study.n_examples)
        say(f"  {r.m:>4} {r.total_variance:>12.5f} {r.predicted_variance:>12.5f} {fpc:>7.4f}"
            f" {r.error_of_average:>17.4f} {r.rms_if_unbiased:>16.4f}")
    say("  σ² = (1/N) Σ_n ‖g_n - g‖², the spread of one example's gradient g_n around g;")
    say("  fpc = (N - m)/(N - 1), the finite-population correction: mini-batches drawn without replacement.")
    say(f"Fitted slope of log variance against log m: {study.slope:.3f} (theory: -1). The variance falls")
    say("like 1/m: 4x the batch halves the spread of ĝ.")
    groups = len(study.rows[0].group_ratios)
    say(f"\n‖avg ĝ - g‖/‖g‖ is how far the average of the {trials} ĝ's lands from g: sampling noise,")
    say("if ĝ is unbiased. Over many seeds its mean square is the RMS column squared, σ²·fpc/(m·T)/‖g‖²;")
    say("one seed's value scatters around it, the more so because the noise lies along few directions:")
    say(f"(tr Σ)²/tr(Σ²) = {study.effective_dimension:.2f} effective dimensions out of {study.n_parameters}"
        " parameters,")
    say("Σ the covariance of the per-example gradients. So one row at twice its RMS is no sign of bias.")
    say(f"Over many seeds instead: the {trials} trials of each m split into {groups} groups, each averaged on")
    say(f"its own: the mean over all {groups * len(study.rows)} groups of (error/RMS)² is {study.pooled_ratio():.2f}"
        " (1 if unbiased;")
    say(f"a bias would push it up, the more the larger the groups); {study.share_beyond(2.0):.0%} of the groups"
        " exceeded 2x their RMS.")
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
