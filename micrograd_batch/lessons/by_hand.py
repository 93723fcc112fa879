"""Backpropagation by the δ recursion, on plain Python lists: no Values, no autograd.

This is the textbook algorithm, written out for ONE example at a time:

    forward    z^l = W^l a^(l-1) + b^l,   a^l = g(z^l),          a^0 = x
    output     δ^L = ∂L/∂a^L ⊙ g'(z^L)
    recursion  δ^l = (W^(l+1))ᵀ δ^(l+1) ⊙ g'(z^l)              for l = L-1, ..., 1
    gradients  ∂L/∂W^l = δ^l (a^(l-1))ᵀ,   ∂L/∂b^l = δ^l

and then, for a mini-batch, the per-example gradients are AVERAGED:

    ∂L_batch/∂θ = (1/m) Σ_i ∂L_i/∂θ

Nothing else is averaged: each example keeps its own z, a, g'(z) and δ. The same numbers come
out of `batch_mean(losses).backward()` (lessons/batch_by_hand.py checks it).
"""

# For contrast, `averaged_activation_gradient` computes what you get by averaging the
# activations, g'(z) and the output error over the batch FIRST and then using the one-example
# formulas. That is wrong in general, because the mean of a product is not the product of the
# means: (1/m) Σ_i δ_i a_i ≠ ((1/m) Σ_i δ_i) ((1/m) Σ_i a_i).
#
# Layers are numbered 1..L as in the formulas. In every per-layer list below index 0 belongs to
# the input: `a[0]` is x, while `z[0]`, `g_prime[0]` and `delta[0]` are empty lists.
# Gradients are returned flattened in `model.parameters()` order: layer by layer, neuron by
# neuron, each neuron's weights and then its bias.

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Callable, Sequence

from ..batch import mean_of

Vector = list[float]
Matrix = list[list[float]]
"""A matrix as a list of its rows (here and in matrix_form)."""
Target = float | int | Sequence[float]


# ---- activations and their derivatives ---------------------------------------------------------


def _sigmoid(z: float) -> float:
    """1 / (1 + e^-z) without overflow (the same formula as the engine's)."""
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _tanh_prime(z: float) -> float:
    """d/dz tanh z = 1 - tanh(z)²."""
    t = math.tanh(z)
    return 1.0 - t * t


def _sigmoid_prime(z: float) -> float:
    """d/dz σ(z) = σ(z)(1 - σ(z))."""
    s = _sigmoid(z)
    return s * (1.0 - s)


ACTIVATIONS: dict[str, tuple[Callable[[float], float], Callable[[float], float]]] = {
    "relu": (lambda z: z if z > 0.0 else 0.0, lambda z: 1.0 if z > 0.0 else 0.0),
    "tanh": (math.tanh, _tanh_prime),
    "sigmoid": (_sigmoid, _sigmoid_prime),
    "linear": (lambda z: z, lambda z: 1.0),
}
"""name -> (g, g'): each activation and its derivative (relu' is taken as 0 at z = 0)."""


# ---- losses of one example, and their derivatives with respect to the output a^L --------------


def _targets(y: Target, k: int) -> Vector:
    """Regression targets as a list of k floats."""
    targets = [float(y)] if isinstance(y, (int, float)) else [float(t) for t in y]
    if len(targets) != k:
        raise ValueError(f"expected {k} targets for {k} outputs, got {len(targets)}")
    return targets


def _single(a: Vector, loss: str) -> float:
    """The one output of a model whose loss needs a single score."""
    if len(a) != 1:
        raise ValueError(f"the {loss} loss needs a model with one output, this one has {len(a)}")
    return a[0]


def _mse_value(a: Vector, y: Target) -> float:
    t = _targets(y, len(a))
    return math.fsum((aj - tj) ** 2 for aj, tj in zip(a, t, strict=True)) / len(a)


def _mse_grad(a: Vector, y: Target) -> Vector:
    # L = (1/k) Σ_j (a_j - y_j)²  ->  ∂L/∂a_j = 2 (a_j - y_j) / k
    t = _targets(y, len(a))
    return [2.0 * (aj - tj) / len(a) for aj, tj in zip(a, t, strict=True)]


def _hinge_value(a: Vector, y: Target) -> float:
    return max(0.0, 1.0 - float(y) * _single(a, "hinge"))  # type: ignore[arg-type]


def _hinge_grad(a: Vector, y: Target) -> Vector:
    # L = relu(1 - y a)  ->  ∂L/∂a = -y where the margin is violated, else 0
    label = float(y)  # type: ignore[arg-type]
    return [-label if 1.0 - label * _single(a, "hinge") > 0.0 else 0.0]


def _bce_value(a: Vector, y: Target) -> float:
    z, label = _single(a, "bce_with_logits"), float(y)  # type: ignore[arg-type]
    return max(z, 0.0) - label * z + math.log1p(math.exp(-abs(z)))


def _bce_grad(a: Vector, y: Target) -> Vector:
    # L = softplus(z) - y z on the logit z = a  ->  ∂L/∂a = σ(a) - y
    return [_sigmoid(_single(a, "bce_with_logits")) - float(y)]  # type: ignore[arg-type]


def _softmax(a: Vector) -> Vector:
    top = max(a)
    exps = [math.exp(aj - top) for aj in a]
    total = math.fsum(exps)
    return [e / total for e in exps]


def _cross_entropy_value(a: Vector, y: Target) -> float:
    top = max(a)
    return top + math.log(math.fsum(math.exp(aj - top) for aj in a)) - a[int(y)]  # type: ignore[arg-type]


def _cross_entropy_grad(a: Vector, y: Target) -> Vector:
    # L = log Σ_j e^{a_j} - a_y  ->  ∂L/∂a_j = softmax(a)_j - [j = y]
    return [p - (1.0 if j == int(y) else 0.0) for j, p in enumerate(_softmax(a))]  # type: ignore[arg-type]


LOSSES: dict[str, tuple[Callable[[Vector, Target], float], Callable[[Vector, Target], Vector]]] = {
    "mse": (_mse_value, _mse_grad),
    "hinge": (_hinge_value, _hinge_grad),
    "bce_with_logits": (_bce_value, _bce_grad),
    "bce": (_bce_value, _bce_grad),
    "softmax_cross_entropy": (_cross_entropy_value, _cross_entropy_grad),
}
"""name -> (L(a, y), ∂L/∂a): one example's loss on the output a = a^L, as in `losses.py`."""


def loss_named(name: str) -> tuple[Callable[[Vector, Target], float], Callable[[Vector, Target], Vector]]:
    """The (value, derivative) pair of the loss called `name`, or a ValueError listing them."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name]


# ---- the network as plain numbers ---------------------------------------------------------------


@dataclass
class LayerWeights:
    """One layer as numbers: W[j][k] is the weight from input k to neuron j, b[j] its bias,
    and activations[j] the name of neuron j's activation."""

    W: Matrix
    b: Vector
    activations: list[str]


def read_weights(model: object) -> list[LayerWeights]:
    """The weights of an `nn.MLP` (anything with `.layers[i].neurons[j]` having `.w`, `.b` and
    `.activation`) copied into plain lists, layer 1 first. A list of LayerWeights is returned
    unchanged, so every function here takes either a model or its weights."""
    if isinstance(model, list) and all(isinstance(layer, LayerWeights) for layer in model):
        return model
    layers = getattr(model, "layers", None)
    if layers is None:
        raise TypeError(f"expected an MLP or a list of LayerWeights, got {type(model).__name__}")
    out = []
    for layer in layers:
        neurons = layer.neurons
        for n in neurons:
            if n.activation not in ACTIVATIONS:
                raise ValueError(f"unknown activation {n.activation!r}; the δ recursion knows {sorted(ACTIVATIONS)}")
        out.append(LayerWeights(
            W=[[w.data for w in n.w] for n in neurons],
            b=[n.b.data for n in neurons],
            activations=[n.activation for n in neurons],
        ))
    return out


# ---- one example: forward, δ recursion, gradients -----------------------------------------------


@dataclass
class ExampleBackprop:
    """Everything the δ recursion computes for one example (or, for the averaged-activation
    shortcut, for the batch's averages). Index l = 1..L is layer l; index 0 is the input.

    z[l], a[l]       pre-activations and activations (a[0] = x)
    g_prime[l]       g'(z[l])
    dL_da            ∂L/∂a^L, the output error before g'
    delta[l]         δ^l = ∂L/∂z^l
    grad_W[l], grad_b[l]   ∂L/∂W^l = δ^l (a^(l-1))ᵀ  and  ∂L/∂b^l = δ^l
    loss             the example's loss L
    """

    z: list[Vector]
    a: list[Vector]
    g_prime: list[Vector]
    dL_da: Vector
    delta: list[Vector]
    grad_W: list[Matrix]
    grad_b: list[Vector]
    loss: float

    def flat(self) -> Vector:
        """The gradient in `model.parameters()` order (each neuron's weights, then its bias)."""
        return flatten(self.grad_W, self.grad_b)


def flatten(grad_W: Sequence[Matrix], grad_b: Sequence[Vector]) -> Vector:
    """Per-layer weight and bias gradients as one list in `model.parameters()` order.

    Index 0 (the input "layer") is skipped if present as an empty entry.
    """
    flat: Vector = []
    for GW, gb in zip(grad_W, grad_b, strict=True):
        for row, bias in zip(GW, gb, strict=True):
            flat.extend(row)
            flat.append(bias)
    return flat


def forward(model: object, x: Sequence[float]) -> tuple[list[Vector], list[Vector]]:
    """The forward pass of one example, keeping every layer: returns (z, a) with a[0] = x, z[0] = [].

    z^l_j = b_j + Σ_k W_jk a^(l-1)_k, summed in the same order as the engine's `weighted_sum`.
    """
    layers = read_weights(model)
    a: list[Vector] = [[float(v) for v in x]]
    z: list[Vector] = [[]]
    if len(a[0]) != len(layers[0].W[0]):
        raise ValueError(f"expected {len(layers[0].W[0])} inputs, got {len(a[0])}")
    for layer in layers:
        zl = []
        for row, bias in zip(layer.W, layer.b, strict=True):
            total = bias
            for w, ak in zip(row, a[-1], strict=True):
                total += w * ak
            zl.append(total)
        z.append(zl)
        a.append([ACTIVATIONS[name][0](zj) for name, zj in zip(layer.activations, zl, strict=True)])
    return z, a


def backward_deltas(layers: Sequence[LayerWeights], g_prime: Sequence[Vector], dL_da: Vector) -> list[Vector]:
    """The δ recursion: δ^L = ∂L/∂a^L ⊙ g'(z^L), then δ^l = (W^(l+1))ᵀ δ^(l+1) ⊙ g'(z^l).

    Returns delta with delta[0] = [] and delta[l] for layers l = 1..L.
    """
    L = len(layers)
    delta: list[Vector] = [[] for _ in range(L + 1)]
    delta[L] = [d * gp for d, gp in zip(dL_da, g_prime[L], strict=True)]
    for l in range(L - 1, 0, -1):
        W_next = layers[l].W  # W^(l+1): layers[] is 0-based, formulas are 1-based
        back = [math.fsum(W_next[j][k] * delta[l + 1][j] for j in range(len(W_next)))
                for k in range(len(W_next[0]))]
        delta[l] = [s * gp for s, gp in zip(back, g_prime[l], strict=True)]
    return delta


def _weight_grads(delta: Sequence[Vector], a: Sequence[Vector]) -> tuple[list[Matrix], list[Vector]]:
    """∂L/∂W^l = δ^l (a^(l-1))ᵀ (an outer product) and ∂L/∂b^l = δ^l, for l = 1..L."""
    grad_W: list[Matrix] = [[]]
    grad_b: list[Vector] = [[]]
    for l in range(1, len(delta)):
        grad_W.append([[dj * ak for ak in a[l - 1]] for dj in delta[l]])
        grad_b.append(list(delta[l]))
    return grad_W, grad_b


def backprop_example(model: object, x: Sequence[float], y: Target, loss: str = "mse") -> ExampleBackprop:
    """Forward pass, δ recursion and gradients for ONE example (x, y) under `loss`
    (a name in `LOSSES`: "mse", "hinge", "bce_with_logits", "softmax_cross_entropy")."""
    layers = read_weights(model)
    value_fn, grad_fn = loss_named(loss)
    z, a = forward(layers, x)
    g_prime: list[Vector] = [[]] + [[ACTIVATIONS[name][1](zj) for name, zj in zip(layer.activations, z[l], strict=True)]
                      for l, layer in enumerate(layers, start=1)]
    dL_da = grad_fn(a[-1], y)
    delta = backward_deltas(layers, g_prime, dL_da)
    grad_W, grad_b = _weight_grads(delta, a)
    return ExampleBackprop(z, a, g_prime, dL_da, delta, grad_W, grad_b, value_fn(a[-1], y))


# ---- a batch: per-example gradients, then their mean -------------------------------------------


def _checked_batch(batch: Sequence[tuple]) -> list[tuple]:
    """The batch as a list of (x, y) pairs, not empty."""
    batch = list(batch)
    if not batch:
        raise ValueError("an empty batch: there must be at least one example (x, y)")
    return batch


def per_example_gradients(model: object, batch: Sequence[tuple], loss: str = "mse") -> list[Vector]:
    """Each example's own gradient ∂L_i/∂θ (flattened), by the δ recursion: m lists."""
    layers = read_weights(model)
    return [backprop_example(layers, x, y, loss).flat() for x, y in _checked_batch(batch)]


def batch_gradient(model: object, batch: Sequence[tuple], loss: str = "mse") -> Vector:
    """The mini-batch gradient (1/m) Σ_i ∂L_i/∂θ: the MEAN of the per-example gradients.

    Equal (to rounding) to the `.grad`s that `batch_mean(losses).backward()` leaves behind.
    """
    return mean_of(per_example_gradients(model, batch, loss))


# ---- the shortcut that does NOT work: average first, then use the one-example formulas ---------


def averaged_activation_backprop(model: object, batch: Sequence[tuple], loss: str = "mse") -> ExampleBackprop:
    """The one-example formulas fed with batch AVERAGES (a wrong gradient, for comparison).

    Every example is run forward as usual; then over the batch we average
        ā^l = mean_i a^l_i (including the input ā^0 = x̄),  ḡ'^l = mean_i g'(z^l_i),
        and the output error  mean_i ∂L_i/∂a^L,
    and plug these into δ^L = (∂L/∂a^L) ⊙ g'(z^L), δ^l = (W^(l+1))ᵀ δ^(l+1) ⊙ g'(z^l),
    ∂L/∂W^l = δ^l (a^(l-1))ᵀ. The returned record holds the averages in z (mean z), a,
    g_prime and dL_da, and the shortcut's δ and gradients; its loss is the true mean loss.
    """
    layers = read_weights(model)
    records = [backprop_example(layers, x, y, loss) for x, y in _checked_batch(batch)]
    L = len(layers)
    mean_z: list[Vector] = [[]] + [mean_of([r.z[l] for r in records]) for l in range(1, L + 1)]
    mean_a = [mean_of([r.a[l] for r in records]) for l in range(L + 1)]
    mean_gp: list[Vector] = [[]] + [mean_of([r.g_prime[l] for r in records]) for l in range(1, L + 1)]
    mean_error = mean_of([r.dL_da for r in records])
    delta = backward_deltas(layers, mean_gp, mean_error)
    grad_W, grad_b = _weight_grads(delta, mean_a)
    mean_loss = math.fsum(r.loss for r in records) / len(records)
    return ExampleBackprop(mean_z, mean_a, mean_gp, mean_error, delta, grad_W, grad_b, mean_loss)


def averaged_activation_gradient(model: object, batch: Sequence[tuple], loss: str = "mse") -> Vector:
    """The gradient the "average the activations first" shortcut gives (flattened).

    WRONG in general: it equals `batch_gradient` only when the averaged quantities do not
    vary over the batch in a way that matters (e.g. a batch of one, or identical inputs),
    because mean_i(δ_i a_i) ≠ mean_i(δ_i) · mean_i(a_i).
    """
    return averaged_activation_backprop(model, batch, loss).flat()


def max_abs_difference(u: Sequence[float], v: Sequence[float]) -> float:
    """max_k |u_k - v_k| of two equally long vectors."""
    if len(u) != len(v):
        raise ValueError(f"vectors of different lengths: {len(u)} and {len(v)}")
    return max((abs(p - q) for p, q in zip(u, v, strict=True)), default=0.0)


def relative_difference(u: Sequence[float], v: Sequence[float]) -> float:
    """‖u - v‖ / ‖v‖ (Euclidean norms); v is the reference. 0 when both are zero."""
    if len(u) != len(v):
        raise ValueError(f"vectors of different lengths: {len(u)} and {len(v)}")
    diff = math.sqrt(math.fsum((p - q) ** 2 for p, q in zip(u, v, strict=True)))
    norm = math.sqrt(math.fsum(q * q for q in v))
    return diff / norm if norm else (0.0 if diff == 0.0 else math.inf)
