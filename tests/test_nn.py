"""Neuron, Layer, MLP: micrograd's API where they overlap, activations, seeding, input checks."""

import math
import random

import pytest

from micrograd_batch import MLP, Layer, Neuron, Value


def test_mlp_matches_micrograd_architecture_and_parameter_order():
    model = MLP(2, [16, 16, 1])
    assert len(model.parameters()) == (2 * 16 + 16) + (16 * 16 + 16) + (16 * 1 + 1)
    assert [n.activation for n in model.layers[0].neurons] == ["relu"] * 16
    assert [n.activation for n in model.layers[1].neurons] == ["relu"] * 16
    assert model.layers[2].neurons[0].activation == "linear"
    expected_order = [p for layer in model.layers for n in layer.neurons for p in n.w + [n.b]]
    assert all(a is b for a, b in zip(model.parameters(), expected_order))
    assert len(expected_order) == len(model.parameters())


def test_global_random_seed_draws_micrograd_weights():
    random.seed(1337)
    model = MLP(2, [3, 1])
    random.seed(1337)
    drawn = []
    for nin, nout in [(2, 3), (3, 1)]:
        for _ in range(nout):
            drawn += [random.uniform(-1, 1) for _ in range(nin)] + [0.0]
    assert [p.data for p in model.parameters()] == drawn


def test_seed_makes_weights_reproducible_without_touching_global_state():
    state = random.getstate()
    a = MLP(3, [4, 2], seed=7)
    assert random.getstate() == state
    b = MLP(3, [4, 2], seed=7)
    c = MLP(3, [4, 2], seed=8)
    assert [p.data for p in a.parameters()] == [p.data for p in b.parameters()]
    assert [p.data for p in a.parameters()] != [p.data for p in c.parameters()]


def test_one_output_gives_a_value_several_give_a_list():
    assert isinstance(MLP(2, [3, 1], seed=0)([1.0, 2.0]), Value)
    out = MLP(2, [3, 2], seed=0)([1.0, 2.0])
    assert isinstance(out, list) and len(out) == 2


@pytest.mark.parametrize("activation,g", [
    ("relu", lambda z: max(z, 0.0)), ("tanh", math.tanh),
    ("sigmoid", lambda z: 1 / (1 + math.exp(-z))), ("linear", lambda z: z),
])
def test_neuron_computes_activation_of_weighted_sum(activation, g):
    n = Neuron(3, activation=activation, rng=random.Random(5))
    n.b.data = 0.3
    x = [0.5, -1.0, 2.0]
    z = 0.3 + sum(w.data * xi for w, xi in zip(n.w, x))
    assert n(x).data == pytest.approx(g(z), rel=1e-15)


def test_fused_and_plain_neurons_give_exactly_the_same_numbers():
    fused, plain = MLP(3, [5, 4, 2], seed=11), MLP(3, [5, 4, 2], seed=11, fused=False)
    x = [0.3, -1.7, 2.2]
    for model in (fused, plain):
        out = model(x)
        (out[0] * out[1]).backward()
    assert [o.data for o in fused(x)] == [o.data for o in plain(x)]
    assert [p.grad for p in fused.parameters()] == [p.grad for p in plain.parameters()]


def test_nonlin_false_is_micrograds_linear_neuron():
    assert Neuron(2, nonlin=False).activation == "linear"
    assert Layer(2, 3, nonlin=False).neurons[0].activation == "linear"


def test_wrong_inputs_raise_clear_errors():
    model = MLP(2, [3, 1], seed=0)
    with pytest.raises(ValueError, match="expected 2 inputs, got 3"):
        model([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="expected 2 inputs, got 1"):
        model([1.0])
    with pytest.raises(TypeError, match="str"):
        model([1.0, "2"])
    with pytest.raises(TypeError, match="list of 2 numbers"):
        model(1.0)
    with pytest.raises(ValueError, match="unknown activation"):
        MLP(2, [3, 1], activation="swish")
    with pytest.raises(ValueError, match="positive whole number"):
        MLP(2, [0, 1])
    with pytest.raises(ValueError, match="non-empty list"):
        MLP(2, [])


def test_zero_grad_clears_every_parameter():
    model = MLP(2, [3, 1], seed=0)
    model([1.0, 1.0]).backward()
    assert any(p.grad for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())
