"""Edge cases with documented answers: backward twice, several outputs, kinks, 0 ** 0, sqrt at 0,
saturated activations and losses at ±1000. Expected numbers are worked out by hand in comments."""

from __future__ import annotations

import math

import pytest

from micrograd_batch import (
    MLP,
    Value,
    batch_mean,
    batch_sum,
    bce_with_logits,
    hinge,
    logsumexp,
    softmax_cross_entropy,
)


# ---- backward() twice ------------------------------------------------------------------------------

def test_backward_twice_doubles_leaf_grads_and_keeps_intermediate_ones():
    a, b = Value(0.5), Value(-1.5)
    z = a * b + a  # z = -0.25
    out = z.tanh()
    out.backward()
    dz = 1.0 - math.tanh(-0.25) ** 2  # d tanh(z)/dz
    assert math.isclose(z.grad, dz, rel_tol=1e-15)
    assert math.isclose(a.grad, (b.data + 1.0) * dz, rel_tol=1e-15)  # d/da (ab + a) = b + 1
    assert math.isclose(b.grad, a.data * dz, rel_tol=1e-15)
    first = (a.grad, b.grad, z.grad, out.grad)
    out.backward()
    assert (a.grad, b.grad) == (2 * first[0], 2 * first[1])  # leaves accumulate
    assert (z.grad, out.grad) == (first[2], first[3]) == (dz, 1.0)  # intermediates recomputed


def test_zero_grad_between_calls_gives_the_same_gradients_again():
    model = MLP(2, [3, 1], seed=0)
    loss = (model([0.3, -0.2]) - 1.0) ** 2
    loss.backward()
    first = [p.grad for p in model.parameters()]
    model.zero_grad()
    loss.backward()
    assert [p.grad for p in model.parameters()] == first


def test_backward_from_a_leaf_sets_its_grad_to_the_seed():
    x = Value(3.0)
    x.backward()
    x.backward()
    assert x.grad == 1.0  # the root's grad is *set* to the seed, not accumulated
    x.backward(2.5)
    assert x.grad == 2.5


def test_same_node_on_both_sides():
    x = Value(3.0)
    (x * x).backward()  # d(x²)/dx = 2x: both edges to x are counted
    assert x.grad == 6.0
    y = Value(2.0)
    (y / y).backward()  # d(y/y)/dy = 1/y - y/y² = 0
    assert y.grad == 0.0


# ---- several outputs ----------------------------------------------------------------------------------

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
    for got, g0, g1 in zip((p.grad for p in model.parameters()), *separate):
        # equal up to the order of the additions into .grad (a few ulps)
        assert math.isclose(got, g0 + g1, rel_tol=1e-12, abs_tol=1e-15)


# ---- kinks and powers at 0 -------------------------------------------------------------------------------

@pytest.mark.parametrize("x", [0.0, -0.0])
def test_relu_and_abs_at_zero_have_gradient_zero(x):
    v = Value(x)
    v.relu().backward()
    assert v.grad == 0.0
    w = Value(x)
    w.abs().backward()
    assert w.grad == 0.0


def test_hinge_exactly_at_the_margin_has_gradient_zero():
    s = Value(1.0)
    loss = hinge(s, 1)  # relu(1 - 1·1) = relu(0)
    loss.backward()
    assert loss.data == 0.0 and s.grad == 0.0


def test_zero_to_the_zero_is_one_with_gradient_zero():
    x = Value(0.0)
    out = x ** 0
    out.backward()
    assert out.data == 1.0 and x.grad == 0.0


@pytest.mark.parametrize("n, value, grad", [(1, 0.0, 1.0), (2, 0.0, 0.0), (1.5, 0.0, 0.0)])
def test_powers_of_zero(n, value, grad):
    x = Value(0.0)
    out = x ** n
    out.backward()
    assert (out.data, x.grad) == (value, grad)


@pytest.mark.parametrize("make", [lambda x: x ** 0.5, lambda x: x.sqrt()])
@pytest.mark.parametrize("at", [0.0, -0.0])
def test_square_root_at_zero_has_infinite_gradient(make, at):
    """d√x/dx = 1/(2√x) -> +inf as x -> 0+: documented as +inf, not an error."""
    x = Value(at)
    out = make(x)
    out.backward()
    assert out.data == 0.0 and x.grad == math.inf
    # and an infinite local derivative times a zero upstream gradient is NaN (IEEE inf · 0)
    y = Value(at)
    (make(y) * 0.0).backward()
    assert math.isnan(y.grad)


@pytest.mark.parametrize("make, error", [
    (lambda: Value(1.0) / 0, ZeroDivisionError),
    (lambda: Value(1.0) / Value(-0.0), ZeroDivisionError),
    (lambda: Value(0.0) ** -1, ZeroDivisionError),
    (lambda: Value(0.0).log(), ValueError),
    (lambda: Value(-1.0).sqrt(), ValueError),
    (lambda: Value(-8.0) ** (1 / 3), ValueError),
    (lambda: Value(0.0) ** Value(2.0), ValueError),
    (lambda: logsumexp([]), ValueError),
    (lambda: batch_mean([]), ValueError),
])
def test_outside_the_domain_raises(make, error):
    with pytest.raises(error):
        make()


def test_powers_overflow_to_infinity_like_multiplication():
    x = Value(1e200)
    assert (x ** 2).data == (x * x).data == math.inf
    assert (Value(-1e200) ** 3).data == -math.inf


# ---- saturation at ±1000 ----------------------------------------------------------------------------------

@pytest.mark.parametrize("x, tanh, sigmoid, softplus, softplus_grad", [
    (1000.0, 1.0, 1.0, 1000.0, 1.0),
    (-1000.0, -1.0, 0.0, 0.0, 0.0),
])
def test_saturated_activations_are_finite_with_flat_gradients(x, tanh, sigmoid, softplus, softplus_grad):
    for name, value, grad in [("tanh", tanh, 0.0), ("sigmoid", sigmoid, 0.0),
                              ("softplus", softplus, softplus_grad)]:
        v = Value(x)
        out = getattr(v, name)()
        out.backward()
        assert (out.data, v.grad) == (value, grad), name


def test_exp_overflows_to_infinity_and_underflows_to_zero():
    assert Value(1000.0).exp().data == math.inf
    assert Value(-1000.0).exp().data == 0.0


def test_softmax_cross_entropy_of_equal_huge_logits_is_log_two():
    z = [Value(1000.0), Value(1000.0)]
    loss = softmax_cross_entropy(z, 0)
    loss.backward()
    # log(e^1000 + e^1000) - 1000 = log 2; 1000 + log 2 is rounded to a multiple of 2^-43
    assert abs(loss.data - math.log(2.0)) <= 2.0**-43
    assert (z[0].grad, z[1].grad) == (-0.5, 0.5)  # softmax - one_hot = (0.5 - 1, 0.5)


def test_softmax_cross_entropy_of_opposite_huge_logits():
    z = [Value(1000.0), Value(-1000.0)]
    loss = softmax_cross_entropy(z, 1)  # -log softmax_1 = 2000 (e^-2000 vanishes)
    loss.backward()
    assert loss.data == 2000.0 and (z[0].grad, z[1].grad) == (1.0, -1.0)
    right = [Value(1000.0), Value(-1000.0)]
    ok = softmax_cross_entropy(right, 0)
    ok.backward()
    assert ok.data == 0.0 and (right[0].grad, right[1].grad) == (0.0, 0.0)


def test_logsumexp_of_equal_huge_values():
    z = [Value(1000.0)] * 3  # one node used three times: grads add up to 3 · 1/3
    out = logsumexp(z)
    out.backward()
    assert abs(out.data - (1000.0 + math.log(3.0))) <= 2.0**-43
    assert math.isclose(z[0].grad, 1.0, rel_tol=1e-15)


@pytest.mark.parametrize("z, y, loss, grad", [
    (1000.0, 1, 0.0, 0.0),     # confident and right
    (1000.0, 0, 1000.0, 1.0),  # confident and wrong: softplus(1000) = 1000, d/dz = σ(z) - y
    (-1000.0, 1, 1000.0, -1.0),
    (-1000.0, 0, 0.0, 0.0),
])
def test_bce_with_logits_at_plus_minus_1000(z, y, loss, grad):
    v = Value(z)
    out = bce_with_logits(v, y)
    out.backward()
    assert (out.data, v.grad) == (loss, grad)


# ---- batch nodes with extreme per-example losses ---------------------------------------------------------

def test_batch_mean_of_huge_losses_is_finite():
    assert batch_mean([Value(1e308), Value(1e308)]).data == 1e308


def test_batch_sum_of_infinite_losses_follows_float_arithmetic():
    assert batch_sum([Value(1e308), Value(1e308)]).data == math.inf
    assert math.isnan(batch_mean([Value(math.inf), Value(-math.inf)]).data)
