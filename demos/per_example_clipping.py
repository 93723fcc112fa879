""""Why would you ever need per-example gradients?" -- DP-SGD's per-example clipping.

Differentially private SGD (Abadi et al., 2016) bounds what any ONE example can do to a step:
clip each example's gradient to norm at most C, average, add Gaussian noise of std σC/m:

    g̃ = (1/m) (Σ_i clip_C(g_i) + N(0, σ²C² I)),    clip_C(g) = g · min(1, C/‖g‖)

Clipping the mean gradient instead is NOT the same: it bounds the whole step, but one outlier
still decides where it points. This script shows it on a batch with one outlier, then trains
two-moons with plain SGD and with DP-SGD. Change C, σ or the outlier and rerun.

Run:  python3 dev.py demo per_example_clipping
      (it makes .venv/ the first time; after that .venv/bin/python demos/per_example_clipping.py works too)
      (the lesson: python -m micrograd_batch per-example-clipping)
"""

import math
import random

from micrograd_batch import (
    MLP, accuracy, bce_with_logits, clip_per_example, make_moons, minibatches, mse, per_example_grads,
)
from micrograd_batch.batch import mean_of

C = 1.0  # the clipping norm
SIGMA = 1.0  # the noise multiplier


def norm(v):
    return math.sqrt(math.fsum(x * x for x in v))


# ---- one batch with an outlier ------------------------------------------------------------------
rng = random.Random(0)
xs = [[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(8)]
ys = [math.sin(x[0]) + 0.5 * x[1] for x in xs]
ys[-1] = 10.0  # the outlier
model = MLP(2, [8, 1], activation="tanh", seed=0)
losses = [mse(model(x), y) for x, y in zip(xs, ys, strict=True)]  # one graph per example

grads = per_example_grads(losses, model.parameters())  # one backward pass per example
print("per-example gradient norms:", "  ".join(f"{norm(g):.3f}" for g in grads))
mean = mean_of(grads)
clipped_mean = [g * min(1.0, C / norm(mean)) for g in mean]  # clip the mean: one clip
mean_of_clipped = mean_of(clip_per_example(losses, model.parameters(), C))  # clip each, then average
gap = norm([a - b for a, b in zip(clipped_mean, mean_of_clipped, strict=True)])
cosine = (sum(a * b for a, b in zip(clipped_mean, mean_of_clipped, strict=True))
          / (norm(clipped_mean) * norm(mean_of_clipped)))
print(f"‖mean‖ = {norm(mean):.3f}; the outlier's own term ‖g_8‖/m = {norm(grads[-1]) / 8:.3f}")
print(f"clip the mean: norm {norm(clipped_mean):.3f};  mean of clipped: norm {norm(mean_of_clipped):.3f}")
print(f"‖difference‖ / ‖mean of clipped‖ = {gap / norm(mean_of_clipped):.2f}, cosine {cosine:.3f}:"
      " clipping the mean is not the mean of the clipped gradients")
print(f"after clipping each example, the outlier's term is at most C/m = {C / 8:.3f}")


# ---- DP-SGD on two moons ---------------------------------------------------------------------------
def dp_sgd_step(net, batch, lr, noise):
    """Clip each example's gradient to C, sum, add N(0, (σC)²) per component, divide by m, step."""
    step_losses = [bce_with_logits(net(x), y) for x, y in batch]
    clipped = clip_per_example(step_losses, net.parameters(), C)
    for p, column in zip(net.parameters(), zip(*clipped, strict=True), strict=True):
        p.data -= lr * (math.fsum(column) + noise.gauss(0.0, SIGMA * C)) / len(batch)


def sgd_step(net, batch, lr):
    step_losses = [bce_with_logits(net(x), y) for x, y in batch]
    for p, g in zip(net.parameters(), mean_of(per_example_grads(step_losses, net.parameters())), strict=True):
        p.data -= lr * g


data = make_moons(200, noise=0.1, seed=0, signed=False)
plain = MLP(2, [8, 1], activation="tanh", seed=0)
private = MLP(2, [8, 1], activation="tanh", seed=0)
noise = random.Random(0)
for epoch in range(30):
    for batch in minibatches(data, 25, shuffle=True, seed=epoch):
        sgd_step(plain, batch, lr=0.5)
        dp_sgd_step(private, batch, lr=0.5, noise=noise)
print(f"\ntwo moons, 30 epochs, batches of 25: SGD accuracy {accuracy(plain, data, threshold=0.0):.1%}, "
      f"DP-SGD (C = {C}, σ = {SIGMA}) accuracy {accuracy(private, data, threshold=0.0):.1%}")
print("(no privacy budget ε is computed here: that needs the accountant of Abadi et al.)")
