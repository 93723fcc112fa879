"""The δ recursion on plain lists (by_hand.py) against autograd, and the averaged-activation
shortcut against the true batch gradient."""

import math
import random

import pytest
from gradcheck import central_difference
from helpers import graph_path
from hypothesis import given, settings
from hypothesis import strategies as st

from micrograd_batch import MLP, bce_with_logits, hinge, mse, per_example_grads
from micrograd_batch import softmax_cross_entropy
from micrograd_batch.lessons import by_hand
from micrograd_batch.nn import ACTIVATIONS

AUTOGRAD_LOSSES = {
    "mse": mse,
    "hinge": hinge,
    "bce_with_logits": bce_with_logits,
    "softmax_cross_entropy": softmax_cross_entropy,
}


def make_batch(rng, nin, nout, m, loss):
    batch = []
    for _ in range(m):
        x = [rng.uniform(-2, 2) for _ in range(nin)]
        if loss == "mse":
            y = [rng.uniform(-1, 1) for _ in range(nout)] if nout > 1 else rng.uniform(-1, 1)
        elif loss == "hinge":
            y = rng.choice([-1, 1])
        elif loss == "bce_with_logits":
            y = rng.choice([0, 1])
        else:
            y = rng.randrange(nout)
        batch.append((x, y))
    return batch


ACTS = st.sampled_from(sorted(ACTIVATIONS))  # by_hand.ACTIVATIONS covers the same names


@st.composite
def networks(draw):
    nin = draw(st.integers(1, 3))
    hidden = draw(st.lists(st.integers(1, 4), min_size=0, max_size=3))
    nout = draw(st.integers(1, 3))
    if nout == 1:
        loss = draw(st.sampled_from(["mse", "hinge", "bce_with_logits"]))
    else:
        loss = draw(st.sampled_from(["mse", "softmax_cross_entropy"]))
    model = MLP(nin, [*hidden, nout], activation=draw(ACTS), output_activation=draw(ACTS),
                seed=draw(st.integers(0, 10_000)))
    batch = make_batch(random.Random(draw(st.integers(0, 10_000))), nin, nout,
                       draw(st.integers(1, 4)), loss)
    return model, batch, loss


@settings(max_examples=60, deadline=None)
@given(networks())
def test_delta_recursion_matches_autograd_on_random_mlps(case):
    model, batch, loss = case
    _, expected = graph_path(model, AUTOGRAD_LOSSES[loss], batch)
    got = by_hand.batch_gradient(model, batch, loss)
    assert len(got) == len(model.parameters())
    assert by_hand.max_abs_difference(got, expected) <= 1e-12


@settings(max_examples=25, deadline=None)
@given(networks())
def test_per_example_gradients_match_each_examples_graph(case):
    model, batch, loss = case
    losses = [AUTOGRAD_LOSSES[loss](model(x), y) for x, y in batch]
    expected = per_example_grads(losses, model.parameters())
    got = by_hand.per_example_gradients(model, batch, loss)
    for g, e in zip(got, expected, strict=True):
        assert by_hand.max_abs_difference(g, e) <= 1e-12


@settings(max_examples=25, deadline=None)
@given(networks())
def test_shortcut_is_exact_for_a_batch_of_one(case):
    model, batch, loss = case
    one = batch[:1]
    assert by_hand.max_abs_difference(by_hand.averaged_activation_gradient(model, one, loss),
                                     by_hand.batch_gradient(model, one, loss)) <= 1e-12


def test_forward_matches_the_model():
    model = MLP(3, [4, 2], activation="tanh", seed=5)
    x = [0.3, -1.2, 0.7]
    z, a = by_hand.forward(model, x)
    assert a[0] == x and z[0] == []
    assert [len(v) for v in a] == [3, 4, 2]
    assert [o.data for o in model(x)] == pytest.approx(a[2], abs=1e-15)


def test_one_linear_neuron_by_hand():
    # L = (w x + b - y)^2: dL/dw = 2 (w x + b - y) x, dL/db = 2 (w x + b - y)
    model = MLP(1, [1], seed=0)
    w = model.layers[0].neurons[0].w[0].data
    rec = by_hand.backprop_example(model, [3.0], 1.0, "mse")
    error = 2 * (w * 3.0 - 1.0)
    assert rec.flat() == pytest.approx([error * 3.0, error], abs=1e-15)
    assert rec.loss == pytest.approx((w * 3.0 - 1.0) ** 2)


def test_batch_gradient_is_the_mean_of_per_example_gradients():
    model = MLP(2, [3, 1], activation="sigmoid", seed=1)
    batch = [([0.1, 0.2], 0.5), ([1.0, -1.0], -0.3), ([0.0, 2.0], 1.0)]
    per = by_hand.per_example_gradients(model, batch)
    mean = [sum(col) / 3 for col in zip(*per, strict=True)]
    assert by_hand.batch_gradient(model, batch) == pytest.approx(mean, abs=1e-15)


@pytest.mark.parametrize("name", sorted(by_hand.LOSSES))
def test_loss_derivatives_match_finite_differences(name):
    value, grad = by_hand.LOSSES[name]
    rng = random.Random(3)
    for _ in range(20):
        k = 3 if name in ("mse", "softmax_cross_entropy") else 1
        a = [rng.uniform(-3, 3) for _ in range(k)]
        y = {"mse": [0.2, -0.4, 1.0], "hinge": rng.choice([-1, 1]),
             "softmax_cross_entropy": rng.randrange(3)}.get(name, rng.choice([0, 1]))
        g = grad(a, y)
        for j in range(k):
            if name == "hinge" and abs(1 - y * a[0]) < 1e-3:
                continue  # the kink
            assert g[j] == pytest.approx(central_difference(lambda v, y=y: value(v, y), a, j), abs=1e-6)


@pytest.mark.parametrize("name", sorted(by_hand.ACTIVATIONS))
def test_activation_derivatives_match_finite_differences(name):
    g, g_prime = by_hand.ACTIVATIONS[name]
    for z in (-2.0, -0.3, 0.4, 1.7):
        assert g_prime(z) == pytest.approx(central_difference(lambda v: g(v[0]), [z], 0), abs=1e-6)


def test_shortcut_differs_on_a_real_batch():
    model = MLP(2, [2, 1], activation="tanh", seed=2)
    batch = [([0.5, -1.0], 1.0), ([-0.3, 0.8], -0.5), ([1.2, 0.4], 0.2)]
    true = by_hand.batch_gradient(model, batch)
    wrong = by_hand.averaged_activation_gradient(model, batch)
    assert by_hand.relative_difference(wrong, true) > 0.5
    # the output bias only sees the averaged error, so that one entry agrees
    assert wrong[-1] == pytest.approx(true[-1], abs=1e-15)


def test_shortcut_is_exact_when_every_example_has_the_same_input():
    model = MLP(2, [3, 3, 1], activation="relu", seed=4)
    batch = [([0.5, -1.0], y) for y in (1.0, -0.5, 0.2, 3.0)]
    assert by_hand.max_abs_difference(by_hand.averaged_activation_gradient(model, batch),
                                     by_hand.batch_gradient(model, batch)) <= 1e-12


def test_shortcut_record_holds_the_batch_averages():
    model = MLP(2, [2, 1], activation="tanh", seed=2)
    batch = [([0.5, -1.0], 1.0), ([-0.3, 0.8], -0.5)]
    rec = by_hand.averaged_activation_backprop(model, batch)
    a1 = [by_hand.backprop_example(model, x, y).a[1] for x, y in batch]
    assert rec.a[1] == pytest.approx([(p + q) / 2 for p, q in zip(*a1, strict=True)])
    assert rec.a[0] == pytest.approx([0.1, -0.1])


def test_read_weights_copies_the_models_numbers():
    model = MLP(2, [3, 1], activation="tanh", output_activation="sigmoid", seed=0)
    layers = by_hand.read_weights(model)
    assert [len(layer.W) for layer in layers] == [3, 1]
    assert layers[0].W[1] == [w.data for w in model.layers[0].neurons[1].w]
    assert layers[1].activations == ["sigmoid"]
    assert by_hand.read_weights(layers) is layers


def test_errors_say_what_was_wrong():
    model = MLP(2, [2, 2], seed=0)
    with pytest.raises(ValueError, match="unknown loss"):
        by_hand.batch_gradient(model, [([1.0, 2.0], 0)], "cross")
    with pytest.raises(ValueError, match="empty batch"):
        by_hand.batch_gradient(model, [])
    with pytest.raises(ValueError, match="one output"):
        by_hand.batch_gradient(model, [([1.0, 2.0], 1)], "hinge")
    with pytest.raises(ValueError, match="expected 2 inputs"):
        by_hand.forward(model, [1.0])
    with pytest.raises(TypeError, match="MLP or a list"):
        by_hand.read_weights(42)
    with pytest.raises(ValueError, match="different lengths"):
        by_hand.max_abs_difference([1.0], [1.0, 2.0])


def test_relative_difference():
    assert by_hand.relative_difference([3.0, 4.0], [0.0, 0.0]) == math.inf
    assert by_hand.relative_difference([0.0], [0.0]) == 0.0
    assert by_hand.relative_difference([1.0, 1.0], [2.0, 2.0]) == pytest.approx(0.5)
