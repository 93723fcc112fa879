"""The batch-loss node: one node, 1/m to each example, and its gradient is the mean of the
per-example gradients for every activation and every loss."""

import math
import random
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from micrograd_batch import (
    MLP, Value, batch_mean, batch_sum, bce_with_logits, hinge, make_blobs, make_moons, mean_of,
    mse, per_example_grads, softmax_cross_entropy,
)

ACTIVATIONS = ["relu", "tanh", "sigmoid", "linear"]


def regression_batch(m, rng):
    return [([rng.uniform(-2, 2), rng.uniform(-2, 2)], rng.uniform(-1, 1)) for _ in range(m)]


# loss name -> (loss function, number of outputs, batch maker)
LOSSES = {
    "mse": (mse, 1, lambda m, rng: regression_batch(m, rng)),
    "hinge": (hinge, 1, lambda m, rng: make_moons(m, noise=0.2, seed=rng.randrange(100))),
    "bce": (bce_with_logits, 1,
            lambda m, rng: make_moons(m, noise=0.2, seed=rng.randrange(100), signed=False)),
    "softmax_ce": (softmax_cross_entropy, 3,
                   lambda m, rng: make_blobs(m, seed=rng.randrange(100))),
}


def one_example_at_a_time(model, batch, loss_fn):
    """The gradient of each example computed on its own, from a fresh graph each time."""
    grads = []
    for x, y in batch:
        model.zero_grad()
        loss_fn(model(x), y).backward()
        grads.append([p.grad for p in model.parameters()])
    return grads


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_batch_gradient_is_the_mean_of_per_example_gradients(activation, loss_name):
    loss_fn, nout, make_batch = LOSSES[loss_name]
    rng = random.Random(f"{activation}-{loss_name}")  # str seeds are deterministic
    model = MLP(2, [4, 3, nout], activation=activation, seed=rng.randrange(1000))
    batch = make_batch(7, rng)

    separate = one_example_at_a_time(model, batch, loss_fn)
    model.zero_grad()
    losses = [loss_fn(model(x), y) for x, y in batch]
    batch_mean(losses).backward()
    batch_grad = [p.grad for p in model.parameters()]

    assert any(abs(g) > 1e-3 for g in batch_grad)  # the check below is not vacuous
    assert batch_grad == pytest.approx(mean_of(separate), rel=0, abs=1e-12)
    assert mean_of(per_example_grads(losses, model.parameters())) == pytest.approx(
        mean_of(separate), rel=0, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 12), seed=st.integers(0, 10_000),
       activation=st.sampled_from(ACTIVATIONS))
def test_batch_mean_equals_mean_of_per_example_grads_for_random_batches(m, seed, activation):
    rng = random.Random(seed)
    model = MLP(2, [3, 1], activation=activation, seed=seed)
    batch = regression_batch(m, rng)
    losses = [mse(model(x), y) for x, y in batch]
    expected = mean_of(per_example_grads(losses, model.parameters()))
    batch_mean(losses).backward()
    assert [p.grad for p in model.parameters()] == pytest.approx(expected, rel=0, abs=1e-12)


def test_batch_mean_is_one_node_with_local_derivative_one_over_m():
    losses = [Value(float(i)) for i in range(1, 6)]
    node = batch_mean(losses)
    assert node.data == 3.0
    assert node._parents == tuple(losses)
    assert node._local_grads == (1 / 5,) * 5
    node.backward()
    assert [loss.grad for loss in losses] == [0.2] * 5


def test_batch_sum_is_one_node_with_local_derivative_one():
    losses = [Value(0.5), Value(1.5), Value(-1.0)]
    node = batch_sum(losses)
    node.backward()
    assert node.data == 1.0
    assert len(node._parents) == 3
    assert [loss.grad for loss in losses] == [1.0, 1.0, 1.0]


def test_an_example_used_twice_counts_twice():
    a = Value(2.0)
    batch_mean([a * a, a * a, Value(0.0) * a]).backward()
    assert a.grad == pytest.approx((4.0 + 4.0 + 0.0) / 3)


def test_per_example_grads_restores_existing_gradients():
    model = MLP(2, [2, 1], seed=3)
    for i, p in enumerate(model.parameters()):
        p.grad = float(i)
    losses = [mse(model([1.0, -1.0]), 0.5), mse(model([0.5, 2.0]), -0.5)]
    grads = per_example_grads(losses, model.parameters())
    assert len(grads) == 2 and len(grads[0]) == len(model.parameters())
    assert [p.grad for p in model.parameters()] == [float(i) for i in range(len(grads[0]))]


def test_batch_of_4096_backpropagates_under_default_recursion_limit():
    assert sys.getrecursionlimit() <= 10_000
    data = make_moons(4096, noise=0.1, seed=0)
    model = MLP(2, [16, 16, 1], seed=0)
    loss = batch_mean([hinge(model(x), y) for x, y in data])
    loss.backward()
    assert math.isfinite(loss.data)
    assert all(math.isfinite(p.grad) for p in model.parameters())
    assert any(p.grad != 0.0 for p in model.parameters())


def test_batch_node_rejects_empty_and_non_values():
    with pytest.raises(ValueError, match="empty batch"):
        batch_mean([])
    with pytest.raises(ValueError, match="empty batch"):
        batch_sum(iter([]))
    with pytest.raises(TypeError, match="item 1 is float"):
        batch_mean([Value(1.0), 2.0])
    with pytest.raises(TypeError, match="single Value"):
        batch_mean(Value(1.0))
    with pytest.raises(ValueError, match="empty"):
        mean_of([])
