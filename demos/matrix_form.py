"""The same thing with matrices: where does the batch go in the tensor formulas?

Stack the m examples as ROWS of a matrix and backpropagation becomes a few matrix products:

    Zˡ = Aˡ⁻¹ Wˡᵀ + bˡ,   Aˡ = g(Zˡ)                (A⁰ = X, one row per example)
    Δᴸ = ∂L/∂Aᴸ ⊙ g'(Zᴸ)                          (row i carries the 1/m of the mean loss)
    Δˡ = (Δˡ⁺¹ Wˡ⁺¹) ⊙ g'(Zˡ)
    ∇Wˡ = (Δˡ)ᵀ Aˡ⁻¹,   ∇bˡ = column sums of Δˡ    (the inner index runs over the EXAMPLES)

No NumPy: the matrices are lists of rows, and matmul / transpose are a few lines in
micrograd_batch/lessons/matrix_form.py. The result is checked against autograd through batch_mean.

Run:  python3 dev.py demo matrix_form
      (it makes .venv/ the first time; after that .venv/bin/python demos/matrix_form.py works too)
"""

import math

from micrograd_batch import MLP, batch_mean, mse
from micrograd_batch.lessons.matrix_form import column_sums, hadamard, matmul, shape, transpose

model = MLP(2, [2, 1], activation="tanh", seed=2)     # tanh hidden layer, linear output
batch = [([0.5, -1.0], 1.0), ([-0.3, 0.8], -0.5), ([1.2, 0.4], 0.2)]
m = len(batch)
W1 = [[w.data for w in n.w] for n in model.layers[0].neurons]     # 2 × 2: row j = neuron j's weights
b1 = [n.b.data for n in model.layers[0].neurons]
W2 = [[w.data for w in n.w] for n in model.layers[1].neurons]     # 1 × 2
b2 = [n.b.data for n in model.layers[1].neurons]

# Forward, all examples at once: one row per example.
X = [x for x, _ in batch]                                           # 3 × 2
Y = [[y] for _, y in batch]                                         # 3 × 1
Z1 = [[z + b for z, b in zip(row, b1, strict=True)] for row in matmul(X, transpose(W1))]
A1 = [[math.tanh(z) for z in row] for row in Z1]
Z2 = [[z + b for z, b in zip(row, b2, strict=True)] for row in matmul(A1, transpose(W2))]
A2 = Z2                                                             # linear output

# Backward. L = (1/m) Σ_i (a2_i - y_i)², so row i of ∂L/∂A2 is (2/m)(a2_i - y_i); g' = 1 at the output.
Delta2 = [[2 * (a - y) / m for a, y in zip(row_a, row_y, strict=True)] for row_a, row_y in zip(A2, Y, strict=True)]
Delta1 = hadamard(matmul(Delta2, W2), [[1 - a * a for a in row] for row in A1])   # tanh' = 1 - tanh²
grad_W2, grad_b2 = matmul(transpose(Delta2), A1), column_sums(Delta2)
grad_W1, grad_b1 = matmul(transpose(Delta1), X), column_sums(Delta1)

for name, M in [("X", X), ("Z1", Z1), ("A1", A1), ("A2", A2), ("Δ2", Delta2), ("Δ1", Delta1),
                ("∇W2 = Δ2ᵀ A1", grad_W2), ("∇W1 = Δ1ᵀ X", grad_W1)]:
    rows, columns = shape(M)
    print(f"{name:<14} {rows} × {columns}  " + "; ".join(" ".join(f"{v:7.4f}" for v in row) for row in M))

products = [Delta2[i][0] * A1[i][0] for i in range(m)]
print("\n∇W2[1][1] = Σ over the examples of Δ2[i][1]·A1[i][1] = "
      + " + ".join(f"({p:.4f})" for p in products) + f" = {sum(products):.4f}")

# The same gradient by autograd: one graph per example, one batch_mean node, one backward pass.
model.zero_grad()
batch_mean([mse(model(x), y) for x, y in batch]).backward()
mine = [v for grad_W, grad_b in [(grad_W1, grad_b1), (grad_W2, grad_b2)]     # in model.parameters() order
        for row, b in zip(grad_W, grad_b, strict=True) for v in [*row, b]]
difference = max(abs(a - p.grad) for a, p in zip(mine, model.parameters(), strict=True))
print(f"max |matrix form - autograd through batch_mean| = {difference:.1e}")
