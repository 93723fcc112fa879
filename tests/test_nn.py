"""Neuron, Layer, MLP: micrograd's API where they overlap, activations, seeding, batch gradients
against finite differences, NaN, several outputs, numpy sizes, and input checks."""

import math
import os
import random

import numpy as np
import pytest
from gradcheck import assert_close, central_difference
from hypothesis import example, given, settings
from hypothesis import strategies as st
from junk import FUZZ, attempt, is_real, junk, sizes
from state import parameter_state

from micrograd_batch import MLP, Layer, Neuron, Value, batch_mean, batch_sum, mse
from micrograd_batch.nn import weighted_sum
from micrograd_batch.nn import ACTIVATIONS

EXAMPLES = int(os.environ.get("MGB_FUZZ_EXAMPLES", "150"))


def test_mlp_matches_micrograd_architecture_and_parameter_order():
    model = MLP(2, [16, 16, 1])
    assert len(model.parameters()) == (2 * 16 + 16) + (16 * 16 + 16) + (16 * 1 + 1)
    assert [n.activation for n in model.layers[0].neurons] == ["relu"] * 16
    assert [n.activation for n in model.layers[1].neurons] == ["relu"] * 16
    assert model.layers[2].neurons[0].activation == "linear"
    expected_order = [p for layer in model.layers for n in layer.neurons for p in n.w + [n.b]]
    assert all(a is b for a, b in zip(model.parameters(), expected_order, strict=True))
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


REFERENCE_ACTIVATIONS = {  # written out independently of nn.py; a new activation needs its entry here
    "relu": lambda z: max(z, 0.0), "tanh": math.tanh,
    "sigmoid": lambda z: 1 / (1 + math.exp(-z)), "linear": lambda z: z,
}


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_neuron_computes_activation_of_weighted_sum(activation):
    g = REFERENCE_ACTIVATIONS[activation]
    n = Neuron(3, activation=activation, rng=random.Random(5))
    n.b.data = 0.3
    x = [0.5, -1.0, 2.0]
    z = 0.3 + sum(w.data * xi for w, xi in zip(n.w, x, strict=True))
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


def test_zero_grad_between_calls_gives_the_same_gradients_again():
    model = MLP(2, [3, 1], seed=0)
    loss = (model([0.3, -0.2]) - 1.0) ** 2
    loss.backward()
    first = [p.grad for p in model.parameters()]
    model.zero_grad()
    loss.backward()
    assert [p.grad for p in model.parameters()] == first


def test_several_outputs_are_a_list_you_must_reduce_to_one_value():
    """A model with k > 1 outputs returns a plain list of k Values (documented in MLP). A list
    has no backward(): pick one output, or reduce them to one Value (a loss, batch_sum, ...)."""
    model = MLP(2, [3, 2], seed=1)
    out = model([0.4, -0.6])
    assert isinstance(out, list) and len(out) == 2 and all(isinstance(o, Value) for o in out)
    with pytest.raises(AttributeError):
        out.backward()
    # summing the outputs gives the sum of the gradients of each output
    separate = []
    for o in out:
        model.zero_grad()
        o.backward()
        separate.append([p.grad for p in model.parameters()])
    model.zero_grad()
    batch_sum(out).backward()
    for got, g0, g1 in zip((p.grad for p in model.parameters()), *separate, strict=True):
        # equal up to the order of the additions into .grad (a few ulps)
        assert math.isclose(got, g0 + g1, rel_tol=1e-12, abs_tol=1e-15)


@settings(max_examples=max(10, EXAMPLES // 3), deadline=None)
@given(st.integers(1, 3), st.lists(st.integers(1, 3), min_size=1, max_size=3),
       st.sampled_from(sorted(ACTIVATIONS)), st.sampled_from(["tanh", "linear"]),
       st.integers(0, 10**6), st.booleans(),
       st.lists(st.lists(st.floats(-2, 2), min_size=3, max_size=3), min_size=1, max_size=4))
def test_mlp_batch_gradient_matches_finite_differences(nin, nouts, act, out_act, seed, fused, batch):
    """d batch_mean(mse) / d parameter, for every parameter of a random MLP, vs finite differences."""
    model = MLP(nin, nouts, activation=act, output_activation=out_act, seed=seed, fused=fused)
    params = model.parameters()
    batch = [(x[:nin], 0.3) for x in batch]
    if act == "relu":  # a pre-activation within reach of h of relu's kink would fool the check
        for x, _ in batch:
            h = x[:nin]
            for layer in model.layers[:-1]:
                pre = [weighted_sum(n.w, [Value(v) if not isinstance(v, Value) else v for v in h], n.b).data
                       for n in layer.neurons]
                if any(abs(z) < 1e-3 for z in pre):
                    return
                h = [max(z, 0.0) for z in pre]

    def loss_at(values):
        for p, v in zip(params, values, strict=True):
            p.data = v
        return batch_mean([mse(model(x), [y] * nouts[-1]) for x, y in batch])

    base = [p.data for p in params]
    loss = loss_at(base)
    model.zero_grad()
    loss.backward()
    grads = [p.grad for p in params]
    for i in range(len(params)):
        fd = central_difference(lambda vs: loss_at(vs).data, base, i)
        assert_close(grads[i], fd, f"parameter {i} ({params[i].label})")
    loss_at(base)


# ---- NaN, numpy sizes, inputs that are not a list ----------------------------------------------------

@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_nan_inputs_give_nan_outputs_and_gradients(activation):
    model = MLP(2, [4, 1], activation=activation, seed=0)
    out = model([math.nan, math.nan])
    assert math.isnan(out.data)
    out.backward()
    assert math.isnan(model.parameters()[0].grad)


def test_numpy_integers_are_accepted_as_sizes_and_seeds():
    model = MLP(np.int64(2), [np.int64(3), np.int32(1)], seed=np.int64(5))
    twin = MLP(2, [3, 1], seed=5)
    assert model.sizes == [2, 3, 1] and all(type(n) is int for n in model.sizes)
    assert [p.data for p in model.parameters()] == [p.data for p in twin.parameters()]
    assert len(Layer(np.int64(2), np.int64(3)).neurons) == 3
    assert len(Neuron(np.uint8(4)).w) == 4


@pytest.mark.parametrize("x", [{0: 5.0, 1: 7.0}, {5.0, 7.0}, frozenset({1.0, 2.0})])
def test_a_dict_or_a_set_is_not_an_input_vector(x):
    model = MLP(2, [3, 1], seed=0)
    with pytest.raises(TypeError, match="list of 2 numbers"):
        model(x)


# ---- junk ---------------------------------------------------------------------------------------------

@FUZZ
@given(sizes, st.one_of(st.lists(sizes, max_size=3), sizes), junk, junk, junk)
def test_mlp_constructor_with_junk(nin, nouts, activation, output_activation, seed):
    ok, model = attempt(MLP, nin, nouts, activation=activation,
                        output_activation=output_activation, seed=seed)
    if ok:
        assert model.sizes == [nin, *nouts]


@FUZZ
@given(junk)
@example([math.nan, 1.0])
@example([1e308, -1e308])
@example([True, 1.0])
@example({0: 5.0, 1: 7.0})
@example({5.0, 7.0})
def test_model_call_with_junk(x):
    model = MLP(2, [3, 2], seed=1)
    before = parameter_state(model)
    ok, out = attempt(model, x)
    assert parameter_state(model) == before
    if ok:
        assert isinstance(x, (list, tuple)) and len(x) == 2
        assert all(isinstance(v, Value) or is_real(v) for v in x)
        assert isinstance(out, list) and len(out) == 2 and all(isinstance(o, Value) for o in out)


def test_a_layer_whose_inputs_no_longer_match_its_weights_fails_loudly():
    """Removing a hidden neuron without the next layer's weights used to drop a weight silently."""
    for fused in (True, False):
        model = MLP(2, [3, 1], seed=0, fused=fused)
        model.layers[0].neurons.pop()
        with pytest.raises(ValueError, match="zip"):
            model([0.5, -0.5])
