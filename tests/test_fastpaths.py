"""Every fast path gives exactly the numbers of the plain path it replaces.

- the fused neuron node (`weighted_sum`) against micrograd's chain of `*` and `+` nodes;
- the fused backward pass (ordering and chain rule in one walk, leaves left out of the
  ordering) against the textbook version: `topological_order`, then the chain rule;
- the int/float shortcut for constants;
- and a 1,000,000-node chain backpropagates under the default recursion limit.
"""

from __future__ import annotations

import gc
import sys
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from micrograd_batch import MLP, Value, backpropagate, batch_mean, topological_order, weighted_sum
from micrograd_batch.engine import gc_paused
from micrograd_batch.losses import hinge, l2_penalty

finite = st.floats(min_value=-10.0, max_value=10.0, allow_nan=False)


def moons_like(m: int, shift: float = 0.0) -> list[tuple[list[float], int]]:
    """A small deterministic two-class batch (no dependency on data.py)."""
    return [([((i * 7) % 13) / 6.5 - 1.0 + shift, ((i * 5) % 11) / 5.5 - 1.0], 1 if i % 2 else -1)
            for i in range(m)]


def textbook_backward(root: Value) -> None:
    """The plain backward pass: topological order first, then the chain rule node by node."""
    order = topological_order(root)
    for node in order:
        if node._parents:
            node.grad = 0.0
    root.grad = 1.0
    for node in order:
        for parent, local in zip(node._parents, node._local_grads):
            parent.grad += local * node.grad


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
    for w, x in zip(ws, xs):
        z = z + w * x
    chain = z.tanh()
    chain.backward()
    assert fused.data == chain.data
    assert got == [v.grad for v in (*ws, *xs, bias)]


def test_backward_gives_exactly_the_textbook_gradients_of_every_node():
    model = MLP(2, [8, 8, 1], seed=1)
    batch = moons_like(16, shift=0.3)
    loss = batch_mean([hinge(model(x), y) for x, y in batch]) + l2_penalty(model.parameters(), 1e-3)
    x = Value(0.5)
    loss = loss * x + (loss * loss).tanh() / (x + 2.0)  # shared nodes, several consumers each
    order = topological_order(loss)
    textbook_backward(loss)
    expected = [v.grad for v in order]
    for v in order:
        v.grad = 0.0
    processed = backpropagate(loss)
    assert [v.grad for v in order] == expected
    inner = [v for v in order if v._parents]
    assert processed[: len(inner)] == inner  # non-leaf nodes: the same order, so the same sums
    assert {id(v) for v in processed} == {id(v) for v in order} and len(processed) == len(order)


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


@pytest.mark.parametrize("enabled", [True, False])
def test_gc_paused_restores_the_collector_state_even_after_an_error(enabled):
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        with pytest.raises(RuntimeError):
            with gc_paused():
                assert not gc.isenabled()
                raise RuntimeError("inside")
        assert gc.isenabled() == enabled
        Value(1.0).backward()
        assert gc.isenabled() == enabled
    finally:
        gc.enable() if was else gc.disable()


def test_million_node_chain_backward_without_recursion_error():
    assert sys.getrecursionlimit() <= 10_000
    x = Value(1.0)
    y = x
    with gc_paused():
        for _ in range(1_000_000):
            y = y + x  # 1,000,000 add nodes in a chain, each also reading x
    y.backward()
    assert x.grad == 1_000_001.0 and y.data == 1_000_001.0


def test_interrupted_backward_leaves_no_stale_counters():
    class Interrupt:
        """A local derivative whose product raises, as a Ctrl-C in the middle would."""

        def __mul__(self, other):
            raise KeyboardInterrupt

    x = Value(2.0)
    shared = x * x + x
    broken = Value(1.0, "", (shared, shared), (Interrupt(), 1.0), "boom")
    with pytest.raises(KeyboardInterrupt):
        broken.backward()
    assert all(node._pending == 0 for node in topological_order(broken))
    x.grad = 0.0
    (shared * 3.0).backward()  # the shared nodes must be counted afresh
    assert x.grad == 3.0 * (2 * 2.0 + 1)
