"""Every fast path gives exactly the numbers of the plain path it replaces.

- the fused neuron node (`weighted_sum`) against micrograd's chain of `*` and `+` nodes;
- the fused backward pass (ordering and chain rule in one walk, leaves left out of the
  ordering) against the textbook version: `topological_order`, then the chain rule;
- the int/float shortcut for constants.
(Data-parallel gradients against the serial ones: tests/test_parallel.py.)
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from micrograd_batch import MLP, Value, batch_mean
from micrograd_batch.nn import weighted_sum
from micrograd_batch.losses import hinge, l2_penalty

from helpers import moons_like

finite = st.floats(min_value=-10.0, max_value=10.0, allow_nan=False)


def train_steps(model: MLP, batch: list, steps: int = 3) -> list[tuple[float, list[float]]]:
    """A few SGD steps on the benchmark's loss; the loss and all gradients of each step."""
    history = []
    for _ in range(steps):
        params = model.parameters()
        loss = batch_mean([hinge(model(x), y) for x, y in batch]) + l2_penalty(params, 1e-4)
        model.zero_grad()
        loss.backward()
        history.append((loss.data, [p.grad for p in params]))
        for p in params:
            p.data -= 0.05 * p.grad
    return history


def test_fused_and_unfused_neurons_give_identical_losses_and_gradients():
    batch = moons_like(24)
    fused = train_steps(MLP(2, [16, 16, 1], seed=5, fused=True), batch)
    plain = train_steps(MLP(2, [16, 16, 1], seed=5, fused=False), batch)
    assert fused == plain  # bit for bit, over several steps


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=12), finite)
def test_weighted_sum_equals_the_chain_of_products_exactly(pairs, b):
    ws = [Value(w) for w, _ in pairs]
    xs = [Value(x) for _, x in pairs]
    bias = Value(b)
    fused = weighted_sum(ws, xs, bias).tanh()
    fused.backward()
    got = [v.grad for v in (*ws, *xs, bias)]
    for v in (*ws, *xs, bias):
        v.grad = 0.0
    z = bias
    for w, x in zip(ws, xs, strict=True):
        z = z + w * x
    chain = z.tanh()
    chain.backward()
    assert fused.data == chain.data
    assert got == [v.grad for v in (*ws, *xs, bias)]


def test_backward_from_a_leaf_and_repeated_backward_behave_as_documented():
    a = Value(3.0)
    a.backward()
    assert a.grad == 1.0
    a.grad = 0.0
    b = Value(2.0)
    y = a * b + a
    y.backward()
    y.backward()
    assert (a.grad, b.grad) == (2 * 3.0, 2 * 3.0)  # leaves accumulate; y's own grad is reset


def test_int_and_float_constants_take_the_shortcut_with_the_same_numbers():
    x = Value(1.5)
    for c in (2, 2.0, -3, Fraction(1, 4)):
        assert (x * c).data == 1.5 * float(c) and (c - x).data == float(c) - 1.5
    with pytest.raises(TypeError, match="bool"):
        Value(True)
    with pytest.raises(TypeError):
        x + "1"


