"""Lesson 6, the matrix form: it equals autograd through batch_mean, NumPy's matrix products, and
the averaged-activation shortcut differs from it by exactly the covariance term."""

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from micrograd_batch import MLP
from micrograd_batch.lessons import by_hand, matrix_form
from micrograd_batch.lessons.common import autograd_batch_gradient, random_batch
from micrograd_batch.lessons.average_activations import covariance as covariance_of
from micrograd_batch.lessons.matrix_form import (averaged_first, column_means, column_sums, covariance_term, hadamard,
                                                 matmul, matrix_backprop, shape, transpose)
from micrograd_batch.nn import ACTIVATIONS

LOSS_OUTPUTS = {"mse": None, "bce_with_logits": 1, "hinge": 1, "softmax_cross_entropy": None}


@st.composite
def networks_and_batches(draw):
    """A random MLP (depth, widths, activation), a loss it fits, and a batch of 1 to 6 examples."""
    loss = draw(st.sampled_from(sorted(LOSS_OUTPUTS)))
    nout = LOSS_OUTPUTS[loss] or draw(st.integers(2 if loss == "softmax_cross_entropy" else 1, 3))
    hidden = draw(st.lists(st.integers(1, 4), min_size=0, max_size=3))
    nin = draw(st.integers(1, 4))
    activation = draw(st.sampled_from(sorted(ACTIVATIONS)))
    seed = draw(st.integers(0, 10_000))
    model = MLP(nin, [*hidden, nout], activation=activation, seed=seed)
    batch = random_batch(nin, draw(st.integers(1, 6)), loss, nout, seed + 1)
    return model, batch, loss


@given(networks_and_batches())
@example((MLP(2, [2, 1], activation="tanh", seed=2), [([0.5, -1.0], 1.0)], "mse"))  # m = 1
def test_matrix_form_equals_autograd_through_batch_mean(case):
    model, batch, loss = case
    matrices = matrix_backprop(model, batch, loss)
    root, auto = autograd_batch_gradient(model, batch, loss)
    assert by_hand.max_abs_difference(matrices.flat(), auto) <= 1e-12
    assert matrices.loss == pytest.approx(root.data, rel=1e-12, abs=1e-12)
    m = len(batch)
    for l in range(1, len(matrices.W)):  # one row per example in every batched matrix
        assert shape(matrices.Z[l])[0] == shape(matrices.A[l])[0] == shape(matrices.Delta[l])[0] == m
        assert shape(matrices.grad_W[l]) == shape(matrices.W[l])


@given(networks_and_batches())
def test_each_row_of_delta_is_one_over_m_of_that_examples_delta(case):
    model, batch, loss = case
    matrices = matrix_backprop(model, batch, loss)
    m = len(batch)
    for i, (x, y) in enumerate(batch):
        record = by_hand.backprop_example(model, x, y, loss)
        for l in range(1, len(matrices.Delta)):
            assert matrices.Delta[l][i] == pytest.approx([d / m for d in record.delta[l]], rel=1e-12, abs=1e-15)


def test_numpy_gives_the_same_matrices():
    np = pytest.importorskip("numpy")
    model = MLP(3, [4, 4, 2], activation="tanh", seed=5)
    batch = random_batch(3, 5, "mse", 2, seed=6)
    r = matrix_backprop(model, batch, "mse")
    W = [None] + [np.array(w) for w in r.W[1:]]
    b = [None] + [np.array(v) for v in r.b[1:]]
    X = np.array([x for x, _ in batch])
    Y = np.array([y for _, y in batch])
    A, Z = [X], [None]
    for l in (1, 2, 3):
        Z.append(A[-1] @ W[l].T + b[l])
        A.append(np.tanh(Z[-1]) if l < 3 else Z[-1])
    m, k = X.shape[0], Y.shape[1]
    Delta = {3: 2 * (A[3] - Y) / k / m}  # mse over k outputs, batch mean over m examples
    for l in (2, 1):
        Delta[l] = (Delta[l + 1] @ W[l + 1]) * (1 - np.tanh(Z[l]) ** 2)
    for l in (1, 2, 3):
        np.testing.assert_allclose(r.Z[l], Z[l], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(r.Delta[l], Delta[l], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(r.grad_W[l], Delta[l].T @ A[l - 1], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(r.grad_b[l], Delta[l].sum(axis=0), rtol=1e-12, atol=1e-15)


matrices_pair = st.integers(1, 6).flatmap(lambda m: st.tuples(
    st.lists(st.lists(st.floats(-10, 10), min_size=2, max_size=2), min_size=m, max_size=m),
    st.lists(st.lists(st.floats(-10, 10), min_size=3, max_size=3), min_size=m, max_size=m)))


@given(matrices_pair)
def test_delta_transpose_a_is_the_averaged_product_plus_the_covariance_term(pair):
    Delta, A = pair
    exact = matmul(transpose(Delta), A)
    split = [[p + c for p, c in zip(rp, rc, strict=True)]
             for rp, rc in zip(averaged_first(Delta, A), covariance_term(Delta, A), strict=True)]
    scale = 1 + max(abs(v) for row in Delta + A for v in row) ** 2 * len(Delta)
    for row_exact, row_split in zip(exact, split, strict=True):
        for e, s in zip(row_exact, row_split, strict=True):
            assert abs(e - s) <= 1e-12 * scale


def test_the_shortcut_of_lesson_2_is_m_mean_delta_times_mean_a_at_a_linear_output():
    model = MLP(2, [2, 1], activation="tanh", seed=2)  # linear output: g' = 1 there
    batch = [([0.5, -1.0], 1.0), ([-0.3, 0.8], -0.5), ([1.2, 0.4], 0.2)]
    r = matrix_backprop(model, batch)
    shortcut = by_hand.averaged_activation_backprop(model, batch)
    (row,) = averaged_first(r.Delta[2], r.A[1])
    assert row == pytest.approx(shortcut.grad_W[2][0], rel=1e-12)
    gap = [e - s for e, s in zip(r.grad_W[2][0], shortcut.grad_W[2][0], strict=True)]
    (covariance,) = covariance_term(r.Delta[2], r.A[1])
    assert gap == pytest.approx(covariance, rel=1e-12)
    assert abs(gap[0]) > 0.5  # on this batch the covariance is far from zero
    # it IS cov(δ, a) of the unscaled per-example δ with 1/m (README's 0.5647), not 3 times it, not 1/(m-1)
    records = [by_hand.backprop_example(model, x, y) for x, y in batch]
    delta, a = [rec.delta[2][0] for rec in records], [rec.a[1][0] for rec in records]
    assert covariance[0] == pytest.approx(covariance_of(delta, a), rel=1e-12)
    assert round(covariance[0], 4) == 0.5647


def test_small_matrix_helpers():
    A = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert shape(A) == (3, 2) and transpose(A) == [[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]]
    assert matmul(transpose(A), A) == [[35.0, 44.0], [44.0, 56.0]]
    assert hadamard(A, A)[2] == [25.0, 36.0]
    assert column_sums(A) == [9.0, 12.0] and column_means(A) == [3.0, 4.0]
    with pytest.raises(ValueError, match="cannot multiply"):
        matmul(A, A)
    with pytest.raises(ValueError, match="equal shapes"):
        hadamard(A, transpose(A))
    with pytest.raises(ValueError, match="empty batch"):
        matrix_backprop(MLP(2, [1], seed=0), [])


def test_the_lesson_prints_shapes_one_entry_two_ways_and_the_autograd_difference(tmp_path, capsys, needs_matplotlib):
    written = matrix_form.demo_matrix_form(tmp_path)
    text = capsys.readouterr().out
    assert "Z1 = A0 W1ᵀ + b1         3 × 2" in text and "∇W1 = Δ1ᵀ A0             2 × 2" in text
    (line,) = [line for line in text.splitlines() if "autograd" in line]
    difference = float(re.search(r"= (\d\.\de[-+]\d+)$", line).group(1))
    assert difference <= 1e-12
    two_ways = re.findall(r"= (-?\d\.\d{4})$", text, flags=re.M)
    assert len(two_ways) >= 2 and two_ways[0] == two_ways[1]  # row × column, and lesson 1's mean
    assert [p.name for p in written] == ["matrix_form.svg"]
