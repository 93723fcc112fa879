"""Lesson 6: the same thing with matrices -- the batch gradient as matrix products, from plain lists.

A batch "tensor" is just the m per-example vectors stacked as rows. With one row per example:

    stack      A⁰ = X                                    (m × n₀)
    forward    Zˡ = Aˡ⁻¹ Wˡᵀ + bˡ,   Aˡ = g(Zˡ)           (m × nₗ; bˡ added to every row)
    output     Δᴸ = ∂L/∂Aᴸ ⊙ g'(Zᴸ)                     row i = (1/m) ∂Lᵢ/∂aᴸᵢ ⊙ g'(zᴸᵢ)
    recursion  Δˡ = (Δˡ⁺¹ Wˡ⁺¹) ⊙ g'(Zˡ)                 the per-example δ recursion, all rows at once
    gradients  ∇Wˡ = (Δˡ)ᵀ Aˡ⁻¹,   ∇bˡ = column sums of Δˡ

L is the batch loss (1/m) Σᵢ Lᵢ, so row i of ∂L/∂Aᴸ already carries the 1/m of `batch_mean`. In
(Δˡ)ᵀ Aˡ⁻¹ the inner index of the matrix product runs over the EXAMPLES: entry (j, k) is
Σᵢ Δˡ[i][j] · Aˡ⁻¹[i][k], and that sum, with the 1/m inside Δ, is the (1/m) Σᵢ of the batch gradient.

No NumPy: `matmul`, `transpose` and `column_sums` below are a few lines each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Sequence

from . import by_hand
from .batch_by_hand import batch_by_hand
from .by_hand import Matrix
from .charts import INSTALL_HINT, batch_product_picture, have_matplotlib, save_svg
from .common import BY_HAND_BATCH, Batch, PathLike, autograd_batch_gradient, by_hand_model, fmt_vec, say
from ..nn import MLP


# ---- a tiny matrix library on lists of rows ---------------------------------------------------


def shape(A: Matrix) -> tuple[int, int]:
    """(rows, columns) of a matrix stored as a list of rows."""
    return len(A), len(A[0]) if A else 0


def transpose(A: Matrix) -> Matrix:
    """Aᵀ: rows become columns."""
    return [list(column) for column in zip(*A, strict=True)]


def matmul(A: Matrix, B: Matrix) -> Matrix:
    """The matrix product A B: entry (i, j) is row i of A times column j of B."""
    if shape(A)[1] != shape(B)[0]:
        raise ValueError(f"cannot multiply a {shape(A)} matrix by a {shape(B)} one")
    columns = transpose(B)
    return [[sum(a * b for a, b in zip(row, column, strict=True)) for column in columns] for row in A]


def hadamard(A: Matrix, B: Matrix) -> Matrix:
    """A ⊙ B: the entrywise product of two matrices of the same shape."""
    if shape(A) != shape(B):
        raise ValueError(f"⊙ needs equal shapes, got {shape(A)} and {shape(B)}")
    return [[a * b for a, b in zip(row_a, row_b, strict=True)] for row_a, row_b in zip(A, B, strict=True)]


def column_sums(A: Matrix) -> list[float]:
    """The sum of each column: over the examples, when rows are examples."""
    return [sum(column) for column in zip(*A, strict=True)]


def column_means(A: Matrix) -> list[float]:
    """The mean of each column: the batch average of each feature."""
    return [s / len(A) for s in column_sums(A)]


# ---- the batch, forward and backward, as matrices ---------------------------------------------


@dataclass
class MatrixBackprop:
    """Every matrix of the batched pass; index l = 0..L is the layer (index 0 of Z, G, Delta,
    grad_W and grad_b is empty: layer 0 is the input). One row per example throughout.

    W[l], b[l]       layer l's weights (nₗ × nₗ₋₁) and biases, as read from the model
    Z[l], A[l]       pre-activations and activations (m × nₗ); A[0] = X
    G[l]             g'(Zˡ)
    Delta[l]         Δˡ = ∂L/∂Zˡ for the batch loss L = (1/m) Σᵢ Lᵢ
    grad_W[l], grad_b[l]   (Δˡ)ᵀ Aˡ⁻¹ and the column sums of Δˡ
    loss             the batch loss (1/m) Σᵢ Lᵢ
    """

    W: list[Matrix]
    b: list[list[float]]
    Z: list[Matrix]
    A: list[Matrix]
    G: list[Matrix]
    Delta: list[Matrix]
    grad_W: list[Matrix]
    grad_b: list[list[float]]
    loss: float

    def flat(self) -> list[float]:
        """The gradient in `model.parameters()` order (each neuron's weights, then its bias)."""
        return by_hand.flatten(self.grad_W[1:], self.grad_b[1:])


def _apply(functions: Sequence[Callable[[float], float]], Z: Matrix) -> Matrix:
    """Column k of Z through functions[k] (each neuron has its activation), row by row."""
    return [[f(z) for f, z in zip(functions, row, strict=True)] for row in Z]


def matrix_backprop(model: object, batch: Batch, loss: str = "mse") -> MatrixBackprop:
    """The batch's gradient by the matrix form of backpropagation (see the module docstring)."""
    layers = by_hand.read_weights(model)
    value_fn, grad_fn = by_hand.loss_named(loss)
    batch = list(batch)
    if not batch:
        raise ValueError("an empty batch: there must be at least one example (x, y)")
    m, L = len(batch), len(layers)
    W: list[Matrix] = [[]] + [layer.W for layer in layers]
    b: list[list[float]] = [[]] + [layer.b for layer in layers]
    Z, A, G = _forward(layers, W, b, [[float(v) for v in x] for x, _ in batch])
    dL_dA = [[d / m for d in grad_fn(a, y)] for a, (_, y) in zip(A[L], batch, strict=True)]  # carries the 1/m
    Delta = _backward(W, G, dL_dA)
    grad_W: list[Matrix] = [[]] + [matmul(transpose(Delta[l]), A[l - 1]) for l in range(1, L + 1)]
    grad_b: list[list[float]] = [[]] + [column_sums(Delta[l]) for l in range(1, L + 1)]
    batch_loss = math.fsum(value_fn(a, y) for a, (_, y) in zip(A[L], batch, strict=True)) / m
    return MatrixBackprop(W, b, Z, A, G, Delta, grad_W, grad_b, batch_loss)


def _forward(layers: Sequence[by_hand.LayerWeights], W: list[Matrix], b: list[list[float]],
             X: Matrix) -> tuple[list[Matrix], list[Matrix], list[Matrix]]:
    """Z^l = A^(l-1) W^lᵀ + b^l, A^l = g(Z^l) and G^l = g'(Z^l), layer by layer, one row per
    example (index 0 is the input: A^0 = X, Z^0 and G^0 empty)."""
    A: list[Matrix] = [X]
    Z: list[Matrix] = [[]]
    G: list[Matrix] = [[]]
    for l, layer in enumerate(layers, start=1):
        Z.append([[z + bias for z, bias in zip(row, b[l], strict=True)] for row in matmul(A[l - 1], transpose(W[l]))])
        A.append(_apply([by_hand.ACTIVATIONS[name][0] for name in layer.activations], Z[l]))
        G.append(_apply([by_hand.ACTIVATIONS[name][1] for name in layer.activations], Z[l]))
    return Z, A, G


def _backward(W: list[Matrix], G: list[Matrix], dL_dA: Matrix) -> list[Matrix]:
    """Δ^L = ∂L/∂A^L ⊙ G^L, then Δ^l = (Δ^(l+1) W^(l+1)) ⊙ G^l: the δ recursion, all rows at once."""
    L = len(W) - 1
    Delta: list[Matrix] = [[] for _ in range(L + 1)]
    Delta[L] = hadamard(dL_dA, G[L])
    for l in range(L - 1, 0, -1):
        Delta[l] = hadamard(matmul(Delta[l + 1], W[l + 1]), G[l])
    return Delta


def averaged_first(Delta: Matrix, A: Matrix) -> Matrix:
    """What "average the activations first" puts in place of Δᵀ A: m · mean(Δ)ᵀ mean(A), the
    one-example formula fed with the batch's mean error signal and mean activation."""
    m = len(Delta)
    return [[m * d * a for a in column_means(A)] for d in column_means(Delta)]


def covariance_term(Delta: Matrix, A: Matrix) -> Matrix:
    """Σᵢ (Δᵢ - mean Δ)ᵀ (Aᵢ - mean A). Row i of Δ is δᵢ/m, so this is cov(δ, a) = (1/m) Σᵢ (δᵢ - δ̄)(aᵢ - ā),
    the covariance over the batch (with 1/m) of the per-example error signal and the activation.
    Δᵀ A = averaged_first(Δ, A) + covariance_term(Δ, A), exactly (in reals)."""
    mean_d, mean_a = column_means(Delta), column_means(A)
    centred_d = [[d - md for d, md in zip(row, mean_d, strict=True)] for row in Delta]
    centred_a = [[a - ma for a, ma in zip(row, mean_a, strict=True)] for row in A]
    return matmul(transpose(centred_d), centred_a)


# ---- the lesson ---------------------------------------------------------------------------------


@dataclass
class MatrixFormLesson:
    """The worked numbers: the matrices, autograd's gradient and their largest difference."""

    model: MLP
    batch: Batch
    matrices: MatrixBackprop
    autograd: list[float]
    max_abs_difference: float


def matrix_form(model: MLP | None = None, batch: Batch | None = None, loss: str = "mse") -> MatrixFormLesson:
    """The matrix form on `model` and `batch` (default: lesson 1's 2-2-1 tanh network and its
    batch of 3), compared with autograd through batch_mean."""
    model = model or by_hand_model()
    batch = list(batch or BY_HAND_BATCH)
    matrices = matrix_backprop(model, batch, loss)
    _, auto = autograd_batch_gradient(model, batch, loss)
    return MatrixFormLesson(model, batch, matrices, auto, by_hand.max_abs_difference(matrices.flat(), auto))


def _rows(A: Matrix) -> str:
    """A small matrix on one line, row by row."""
    return "[" + "; ".join(fmt_vec(row, 7) for row in A) + " ]"


def _say_shapes(r: MatrixBackprop) -> None:
    """The shapes of every matrix of the batch, with how each one is made."""
    m, L = shape(r.A[0])[0], len(r.W) - 1
    rows = [("X = A0", shape(r.A[0]), f"the {m} input vectors stacked as rows")]
    for l in range(1, L + 1):
        rows += [(f"W{l}", shape(r.W[l]), f"b{l}: {len(r.b[l])} number(s), added to every row"),
                 (f"Z{l} = A{l - 1} W{l}ᵀ + b{l}", shape(r.Z[l]), f"A{l} = g(Z{l}), the same shape")]
    rows.append((f"Δ{L} = ∂L/∂A{L} ⊙ g'(Z{L})", shape(r.Delta[L]), f"row i = (1/{m})·∂L_i/∂a{L}_i ⊙ g'(z{L}_i)"))
    rows += [(f"Δ{l} = (Δ{l + 1} W{l + 1}) ⊙ g'(Z{l})", shape(r.Delta[l]), "") for l in range(L - 1, 0, -1)]
    rows += [(f"∇W{l} = Δ{l}ᵀ A{l - 1}", shape(r.grad_W[l]), f"∇b{l} = column sums of Δ{l}") for l in range(L, 0, -1)]
    say(f"Shapes (m = {m} examples, one row each):")
    for formula, (n_rows, n_columns), note in rows:
        say(f"  {formula:<24} {n_rows} × {n_columns}   {note}".rstrip())


def _sum_text(numbers: Sequence[float]) -> str:
    """0.9121 + 0.4998 - 0.0288"""
    return f"{numbers[0]:.4f}" + "".join(f" {'-' if g < 0 else '+'} {abs(g):.4f}" for g in numbers[1:])


def demo_matrix_form(out_dir: PathLike = "out", quick: bool = False) -> list[Path]:
    """Print lesson 6 (the shapes, one entry of ∇W two ways, the difference from autograd and
    the averaged-activation mistake in matrix form) and draw out_dir/matrix_form.svg."""
    lesson = matrix_form()
    r = lesson.matrices
    say("Lesson 1's 2-2-1 tanh network and batch of 3, as matrices built from plain lists.")
    _say_shapes(r)
    say(f"\n  X  = {_rows(r.A[0])}\n  A1 = {_rows(r.A[1])}\n  Δ2 = {_rows(r.Delta[2])}")
    delta2, a1 = [row[0] for row in r.Delta[2]], [row[0] for row in r.A[1]]
    terms = " + ".join(f"({d:.4f})({a:.4f})" for d, a in zip(delta2, a1, strict=True))
    say("\nOne entry, ∇W2[1][1] (output weight from hidden neuron 1), two ways:")
    say(f"  row 1 of Δ2ᵀ times column 1 of A1 = {terms} = {r.grad_W[2][0][0]:.4f}")
    per_example = [g[6] for g in batch_by_hand(lesson.model).per_example]  # L2.n1.w1, lesson 1's table
    say(f"  mean of lesson 1's per-example gradients = ({_sum_text(per_example)})"
        f" / 3 = {sum(per_example) / 3:.4f}")
    say("  The product's inner index runs over the examples: it IS the sum in (1/m) Σ_i, and the 1/m")
    say("  sits inside Δ2 (each row is 1/3 of that example's δ).")
    say(f"\nmax |matrix form - autograd through batch_mean| over all 9 parameters = {lesson.max_abs_difference:.1e}")
    shortcut, cov = averaged_first(r.Delta[2], r.A[1]), covariance_term(r.Delta[2], r.A[1])
    say("\nAveraging the activations first, in matrix form, replaces Δ2ᵀ A1 by 3 · mean(Δ2)ᵀ mean(A1):")
    say(f"  Δ2ᵀ A1                 = {_rows(r.grad_W[2])}")
    say(f"  3 · mean(Δ2)ᵀ mean(A1) = {_rows(shortcut)}")
    say(f"  their difference       = {_rows(cov)} = Σ_i (Δ2_i - mean Δ2)ᵀ (A1_i - mean A1),")
    say("  and since row i of Δ2 is δ2_i/3, that is cov(δ2, a1) = (1/3) Σ_i (δ2_i - mean δ2)(a1_i - mean a1),")
    say("  the covariance over the batch (1/m, not 1/(m-1)) of the per-example error signal and the")
    say("  activation: the shortcut is exact only where that covariance is zero.")
    if not have_matplotlib():
        say(f"  (no picture: {INSTALL_HINT})")
        return []
    path = save_svg(batch_product_picture(r.Delta[2], r.A[1], neuron=0, source=0, delta_name="Δ2", a_name="A1",
                                          title="∇W2 = Δ2ᵀ A1: one row per example"),
                    Path(out_dir) / "matrix_form.svg")
    say(f"  wrote {path}")
    return [path]
