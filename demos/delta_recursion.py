"""Does the recursive formula for the error signal δ still hold with a batch?

Yes, unchanged, for each example on its own:

    δᴸ = ∂L/∂aᴸ ⊙ g'(zᴸ)        δˡ = (Wˡ⁺¹)ᵀ δˡ⁺¹ ⊙ g'(zˡ)        ∂L/∂Wˡ = δˡ (aˡ⁻¹)ᵀ

This script runs that recursion on plain Python lists for a 3-4-4-2 tanh network, one example
at a time, averages the per-example weight gradients, and checks them against autograd through
batch_mean. Change the sizes, the batch or the activation.

Run:  python3 dev.py demo delta_recursion
      (it makes .venv/ the first time; after that .venv/bin/python demos/delta_recursion.py works too)
"""

import math
import random

from micrograd_batch import MLP, batch_mean, mse

model = MLP(3, [4, 4, 2], activation="tanh", seed=0)   # tanh hidden layers, linear outputs
rng = random.Random(1)
batch = [([rng.uniform(-1, 1) for _ in range(3)], [rng.uniform(-1, 1) for _ in range(2)]) for _ in range(4)]

# The weights as plain lists: W[l][j][k] from input k to neuron j of layer l (l = 1, 2, 3).
W = [None] + [[[w.data for w in n.w] for n in layer.neurons] for layer in model.layers]
b = [None] + [[n.b.data for n in layer.neurons] for layer in model.layers]
L = len(model.layers)


def g_prime(l: int, z: float) -> float:
    """tanh' in the hidden layers, 1 at the linear output."""
    return 1.0 if l == L else 1.0 - math.tanh(z) ** 2


def backprop(x: list[float], y: list[float]) -> tuple[list, list]:
    """One example: forward, the δ recursion, and ∂L/∂Wˡ = δˡ (aˡ⁻¹)ᵀ, ∂L/∂bˡ = δˡ for l = 1..L."""
    a, z = [x], [None]
    for l in range(1, L + 1):
        z.append([bj + sum(wjk * ak for wjk, ak in zip(row, a[-1], strict=True))
                  for row, bj in zip(W[l], b[l], strict=True)])
        a.append(z[l] if l == L else [math.tanh(v) for v in z[l]])
    delta = [None] * (L + 1)
    delta[L] = [2 * (aj - yj) / len(y) * g_prime(L, zj) for aj, yj, zj in zip(a[L], y, z[L], strict=True)]  # mse
    for l in range(L - 1, 0, -1):
        back = [sum(W[l + 1][j][k] * delta[l + 1][j] for j in range(len(W[l + 1]))) for k in range(len(z[l]))]
        delta[l] = [s * g_prime(l, zk) for s, zk in zip(back, z[l], strict=True)]
    for l in range(L, 0, -1):
        print(f"    δ{l} = [" + " ".join(f"{d:8.4f}" for d in delta[l]) + " ]")
    grad_W = [None] + [[[dj * ak for ak in a[l - 1]] for dj in delta[l]] for l in range(1, L + 1)]
    return grad_W, delta


grads = []
for i, (x, y) in enumerate(batch, start=1):
    print(f"example {i}:")
    grads.append(backprop(x, y))

# The batch: the same per-example graphs, joined by ONE batch_mean node, one backward pass.
model.zero_grad()
batch_mean([mse(model(x), y) for x, y in batch]).backward()
worst = 0.0
for l, layer in enumerate(model.layers, start=1):
    for j, neuron in enumerate(layer.neurons):
        for k, w in enumerate(neuron.w):
            by_hand = sum(gW[l][j][k] for gW, _ in grads) / len(batch)  # the MEAN of the per-example gradients
            worst = max(worst, abs(by_hand - w.grad))
        by_hand = sum(gb[l][j] for _, gb in grads) / len(batch)
        worst = max(worst, abs(by_hand - neuron.b.grad))
print(f"\nall {len(model.parameters())} parameters: max |mean of the per-example δ-recursion gradients"
      f" - autograd through batch_mean| = {worst:.1e}")
print("The recursion holds for every example, unchanged; the batch only averages its results.")
