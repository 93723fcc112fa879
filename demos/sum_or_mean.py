""""Sum or mean?" -- the batch loss's reduction, the learning rate, and Adam's eps.

batch_sum gives each example's loss local derivative 1, batch_mean 1/m, so the sum's gradient
is m times the mean's. Plain SGD sees the factor: lr/m on the sum is lr on the mean, bit for
bit when m is a power of two (multiplying by 1/m then changes only a float's exponent). Adam
divides it out -- its step is lr·m̂/(√v̂ + eps) -- except for eps: Adam on the sum with eps is
Adam on the mean with eps/m. Change m, lr or eps below and rerun.

Run:  python3 dev.py demo sum_or_mean
      (it makes .venv/ the first time; after that .venv/bin/python demos/sum_or_mean.py works too)
      (the lesson: python -m micrograd_batch sum-or-mean)
"""

import random

from micrograd_batch import MLP, SGD, Adam, batch_mean, batch_sum, mse

STEPS = 20


def batch(m, seed):
    """m seeded regression examples: two inputs in [-1, 1), a target in [-1, 1)."""
    rng = random.Random(seed)
    return [([rng.uniform(-1, 1), rng.uniform(-1, 1)], rng.uniform(-1, 1)) for _ in range(m)]


def gradient(model, examples, reduction):
    """The gradient of reduction(losses): reduction is batch_mean or batch_sum."""
    model.zero_grad()
    reduction([mse(model(x), y) for x, y in examples]).backward()
    return [p.grad for p in model.parameters()]


def train(reduction, make_optimizer, m):
    """STEPS steps on the same seeded batches; returns the final parameters."""
    model = MLP(2, [8, 1], activation="tanh", seed=0)
    optimizer = make_optimizer(model.parameters())
    for step in range(STEPS):
        gradient(model, batch(m, seed=step), reduction)
        optimizer.step()
    return [p.data for p in model.parameters()]


def biggest_gap(a, b):
    return max(abs(p - q) for p, q in zip(a, b, strict=True))


print("SGD: the sum's gradient is m × the mean's; lr/m on the sum is lr on the mean")
print(f"{'m':>4} {'max|g_sum - m·g_mean|':>22} {'max|θ_sum - θ_mean|':>20}  bit for bit?")
for m in (3, 10, 16, 64):
    model = MLP(2, [8, 1], activation="tanh", seed=0)
    g_mean = gradient(model, batch(m, seed=0), batch_mean)
    g_sum = gradient(model, batch(m, seed=0), batch_sum)
    on_mean = train(batch_mean, lambda params: SGD(params, lr=0.1), m)
    on_sum = train(batch_sum, lambda params, m=m: SGD(params, lr=0.1 / m), m)
    exact = g_sum == [m * g for g in g_mean] and on_sum == on_mean
    print(f"{m:>4} {biggest_gap(g_sum, [m * g for g in g_mean]):>22.1e} {biggest_gap(on_sum, on_mean):>20.1e}  {exact}")

m = 10
start = [p.data for p in MLP(2, [8, 1], activation="tanh", seed=0).parameters()]
print(f"\nAdam, the same lr (0.01) on the sum and on the mean, m = {m}, {STEPS} steps")
print(f"{'eps':>8} {'max|θ_sum - θ_mean|':>20} {'relative to the movement':>25} {'sum vs mean with eps/m':>23}")
for eps in (1e-8, 1e-4, 1e-2, 1.0):
    on_mean = train(batch_mean, lambda params, eps=eps: Adam(params, lr=0.01, eps=eps), m)
    on_sum = train(batch_sum, lambda params, eps=eps: Adam(params, lr=0.01, eps=eps), m)
    rule = train(batch_mean, lambda params, eps=eps: Adam(params, lr=0.01, eps=eps / m), m)
    gap = biggest_gap(on_sum, on_mean)
    print(f"{eps:>8.0e} {gap:>20.2e} {gap / biggest_gap(on_mean, start):>25.2e} {biggest_gap(on_sum, rule):>23.1e}")
print("Adam is nearly scale-invariant while √v̂ >> eps; where eps is comparable to the gradients it is not.")
