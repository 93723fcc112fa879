"""Optimisers: the update rules in closed form, and convergence on a known quadratic."""

import math

import pytest

from micrograd_batch import SGD, Adam, Value

TARGET = [3.0, -2.0, 0.5]


def quadratic(params):
    """f(p) = Σ c_i (p_i - t_i)², minimised at p = TARGET, with different curvatures c_i."""
    total = Value(0.0)
    for c, p, t in zip([1.0, 4.0, 0.5], params, TARGET):
        total = total + c * (p - t) ** 2
    return total


def minimise(optimizer_factory, steps):
    params = [Value(0.0) for _ in TARGET]
    opt = optimizer_factory(params)
    for _ in range(steps):
        opt.zero_grad()
        quadratic(params).backward()
        opt.step()
    return [p.data for p in params]


@pytest.mark.parametrize("factory,steps", [
    (lambda ps: SGD(ps, lr=0.1), 300),
    (lambda ps: SGD(ps, lr=0.05, momentum=0.9), 300),
    (lambda ps: Adam(ps, lr=0.1), 1000),
])
def test_optimisers_reach_the_minimum_of_a_quadratic(factory, steps):
    assert minimise(factory, steps) == pytest.approx(TARGET, abs=1e-4)


def test_sgd_step_closed_form_with_weight_decay_and_momentum():
    p = Value(2.0)
    opt = SGD([p], lr=0.1, momentum=0.5, weight_decay=0.01)
    p.grad = 1.0
    opt.step()  # g = 1 + 0.02 = 1.02, v = 1.02, p = 2 - 0.102
    assert p.data == pytest.approx(1.898, rel=1e-15)
    opt.step()  # g = 1 + 0.01898, v = 0.5*1.02 + 1.01898
    assert p.data == pytest.approx(1.898 - 0.1 * (0.51 + 1.01898), rel=1e-14)


def test_adam_first_step_moves_by_lr_times_sign():
    p, q = Value(1.0), Value(1.0)
    opt = Adam([p, q], lr=0.01)
    p.grad, q.grad = 5.0, -0.001
    opt.step()  # bias-corrected m/sqrt(v) = sign(g) on the first step (up to eps)
    assert p.data == pytest.approx(0.99, rel=1e-9)
    assert q.data == pytest.approx(1.01, rel=1e-5)


def test_step_refuses_nan_gradients_and_changes_nothing():
    params = [Value(1.0), Value(2.0)]
    for opt in (SGD(params, lr=0.1), Adam(params, lr=0.1)):
        params[0].grad, params[1].grad = 1.0, math.nan
        with pytest.raises(FloatingPointError, match="parameter 1"):
            opt.step()
        assert [p.data for p in params] == [1.0, 2.0]


def test_bad_settings_raise_clear_errors():
    with pytest.raises(ValueError, match="learning rate"):
        SGD([Value(1.0)], lr=0.0)
    with pytest.raises(ValueError, match="no parameters"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="parameter 0 is float"):
        SGD([1.0], lr=0.1)
    with pytest.raises(ValueError, match="momentum"):
        SGD([Value(1.0)], lr=0.1, momentum=1.5)
    with pytest.raises(ValueError, match="betas"):
        Adam([Value(1.0)], betas=(0.9, 1.0))
