"""Why is a mini-batch gradient good enough? How good?

The mini-batch gradient ĝ = (1/m) Σᵢ ∇Lᵢ (what batch_mean's backward pass gives) is an estimate
of the full gradient g over all N examples. This script computes every example's own gradient
once with per_example_grads, then draws many random mini-batches of each size m and measures:

    variance   E‖ĝ - g‖² = (σ²/m) · (N - m)/(N - 1)     σ² = (1/N) Σ_n ‖g_n - g‖², the per-example spread
    the error of the average of the TRIALS ĝ's, ‖avg ĝ - g‖/‖g‖: if ĝ is unbiased, sampling noise
               whose mean square over many seeds is σ²·(N-m)/(N-1)/(m·TRIALS)/‖g‖² (its RMS is printed)

so the variance falls like 1/m, times a finite-population factor that is close to 1 when m ≪ N.
Change TRIALS or the batch sizes.

Run:  python3 dev.py demo estimator_variance
      (it makes .venv/ the first time; after that .venv/bin/python demos/estimator_variance.py works too)
      (writes out/variance.svg)
"""

import math
import random
from pathlib import Path

from micrograd_batch import MLP, batch_mean, bce_with_logits, make_moons, per_example_grads
from micrograd_batch.batch import mean_of
from micrograd_batch.lessons.charts import Series, line_chart, save_svg

BATCH_SIZES = [1, 2, 4, 8, 16, 32, 64]
TRIALS = 1000
data = make_moons(2000, noise=0.2, seed=0, signed=False)
model = MLP(2, [8, 8, 1], activation="tanh", seed=0)
params = model.parameters()
N = len(data)

losses = [bce_with_logits(model(x), y) for x, y in data]
grads = per_example_grads(losses, params)            # N lists: each example's own gradient
model.zero_grad()
batch_mean(losses).backward()                         # the full-batch gradient g, through one node
full = [p.grad for p in params]
print(f"max |mean of the {N} per-example gradients - full-batch gradient| = "
      f"{max(abs(a - b) for a, b in zip(mean_of(grads), full, strict=True)):.1e}")


def squared_distance(u: list[float], v: list[float]) -> float:
    return sum((a - b) ** 2 for a, b in zip(u, v, strict=True))


sigma2 = sum(squared_distance(g, full) for g in grads) / N
rng = random.Random(0)
measured, predicted = [], []
print(f"\n{'m':>4} {'‖avg ĝ - g‖/‖g‖':>16} {'RMS if unbiased':>16} {'E‖ĝ - g‖²':>11} {'σ²/m·(N-m)/(N-1)':>17}"
      f" {'(N-m)/(N-1)':>12}")
for m in BATCH_SIZES:
    estimates = [mean_of([grads[i] for i in rng.sample(range(N), m)]) for _ in range(TRIALS)]
    norm = math.sqrt(squared_distance(full, [0.0] * len(full)))
    error = math.sqrt(squared_distance(mean_of(estimates), full)) / norm
    fpc = (N - m) / (N - 1)                            # the finite-population correction
    measured.append(sum(squared_distance(e, full) for e in estimates) / TRIALS)
    predicted.append(sigma2 / m * fpc)
    rms = math.sqrt(predicted[-1] / TRIALS) / norm      # what `error` is on average (in square) if unbiased
    print(f"{m:>4} {error:>16.4f} {rms:>16.4f} {measured[-1]:>11.5f} {predicted[-1]:>17.5f} {fpc:>12.4f}")

log_m = [math.log10(m) for m in BATCH_SIZES]
log_v = [math.log10(v) for v in measured]
mx, mv = sum(log_m) / len(log_m), sum(log_v) / len(log_v)
slope = sum((a - mx) * (b - mv) for a, b in zip(log_m, log_v, strict=True)) / sum((a - mx) ** 2 for a in log_m)
print(f"\nfitted slope of log variance against log m: {slope:.3f} (theory: -1 while m ≪ N)")
print("‖avg ĝ - g‖/‖g‖ is sampling noise of the TRIALS averaged estimates, not a bias: it scatters around its")
print("RMS from seed to seed (the noise lies along few directions, so 2x is not rare) and shrinks like 1/√TRIALS.")
chart = line_chart([Series("measured E‖ĝ - g‖²", BATCH_SIZES, measured, markers=True),
                    Series("theory σ²/m · (N-m)/(N-1)", BATCH_SIZES, predicted, dashed=True)],
                   title="Variance of the mini-batch gradient", x_label="batch size m",
                   y_label="mean squared distance to the full gradient", log_x=True, log_y=True,
                   x_ticks=BATCH_SIZES)
print("wrote", save_svg(chart, Path("out") / "variance.svg"))
