"""Every fast path gives exactly the numbers of the plain path it replaces.

- the fused neuron node (`weighted_sum`) against micrograd's chain of `*` and `+` nodes;
- the fused backward pass (ordering and chain rule in one walk, leaves left out of the
  ordering) against the textbook version: `topological_order`, then the chain rule;
- the int/float shortcut for constants;
- data-parallel gradients against the serial batch mean (to 1e-12: only the order of the
  floating-point additions differs).
"""

from __future__ import annotations

import multiprocessing
import pickle
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from micrograd_batch import MLP, Value, batch_mean, topological_order, weighted_sum
from micrograd_batch.engine import textbook_backward
from micrograd_batch.losses import hinge, l2_penalty
from micrograd_batch.parallel import DataParallel, chunk_sums, parallel_batch_grad, split

finite = st.floats(min_value=-10.0, max_value=10.0, allow_nan=False)


def moons_like(m: int, shift: float = 0.0) -> list[tuple[list[float], int]]:
    """A small deterministic two-class batch (no dependency on data.py)."""
    return [([((i * 7) % 13) / 6.5 - 1.0 + shift, ((i * 5) % 11) / 5.5 - 1.0], 1 if i % 2 else -1)
            for i in range(m)]


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
    loss.backward()
    assert [v.grad for v in order] == expected


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


def test_split_keeps_every_example_once_in_order():
    examples = list(range(10))
    chunks = split(examples, 3)
    assert [len(c) for c in chunks] == [4, 3, 3]
    assert [e for c in chunks for e in c] == examples
    assert split(examples[:2], 5) == [[0], [1]]
    with pytest.raises(ValueError, match="whole number"):
        split(examples, 0)


def serial_mean(model: MLP, batch: list) -> tuple[float, list[float]]:
    """The plain path: batch_mean of the per-example losses, one backward pass."""
    model.zero_grad()
    loss = batch_mean([hinge(model(x), y) for x, y in batch])
    loss.backward()
    return loss.data, [p.grad for p in model.parameters()]


def test_chunk_sums_add_up_to_m_times_the_batch_mean():
    model = MLP(2, [6, 1], seed=4)
    batch = moons_like(10)
    loss, grads = serial_mean(model, batch)
    sums = [chunk_sums(model, chunk, hinge) for chunk in split(batch, 3)]
    assert sum(s for s, _, _ in sums) / 10 == pytest.approx(loss, abs=1e-12)
    for k, g in enumerate(grads):
        assert sum(gs[k] for _, gs, _ in sums) / 10 == pytest.approx(g, abs=1e-12)
    outputs = [scores for _, _, chunk in sums for scores in chunk]
    assert outputs == [model(x).data for x, _ in batch]


@pytest.mark.parametrize("workers", [2, 3])
def test_parallel_gradient_equals_the_serial_one(workers):
    model = MLP(2, [16, 16, 1], seed=7)
    batch = moons_like(50, shift=0.2)
    loss, grads = serial_mean(model, batch)
    model.zero_grad()
    with DataParallel(model, hinge, workers=workers) as parallel:
        parallel_loss = parallel.grad(batch)
        assert parallel_loss == pytest.approx(loss, abs=1e-12)
        assert max(abs(p.grad - g) for p, g in zip(model.parameters(), grads)) <= 1e-12
        # the workers follow the parent's parameters from step to step
        for p in model.parameters():
            p.data -= 0.1 * p.grad
        loss, grads = serial_mean(model, batch)
        model.zero_grad()
        assert parallel.grad(batch) == pytest.approx(loss, abs=1e-12)
        assert max(abs(p.grad - g) for p, g in zip(model.parameters(), grads)) <= 1e-12


def test_one_shot_parallel_gradient_with_spawned_processes_accumulates_like_backward():
    model = MLP(2, [4, 1], seed=8)
    batch = moons_like(9)
    loss, grads = serial_mean(model, batch)
    model.zero_grad()
    for p in model.parameters():
        p.grad = 1.0
    with DataParallel(model, hinge, workers=2, context=multiprocessing.get_context("spawn")) as par:
        assert par.grad(batch) == pytest.approx(loss, abs=1e-12)
    assert max(abs(p.grad - (1.0 + g)) for p, g in zip(model.parameters(), grads)) <= 1e-12
    model.zero_grad()
    assert parallel_batch_grad(model, batch, hinge, workers=2) == pytest.approx(loss, abs=1e-12)


def test_models_pickle_for_spawned_workers():
    model = MLP(2, [3, 1], seed=9)
    copy = pickle.loads(pickle.dumps(model))
    assert copy([0.5, -1.0]).data == model([0.5, -1.0]).data
