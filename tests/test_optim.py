"""Optimisers: the update rules in closed form, convergence on a known quadratic, a step that is
all-or-nothing (non-finite results, Ctrl-C at any line), state_dict / load_state_dict exact and
all-or-nothing, and junk settings refused."""

import copy
import json
import math

import pytest
from faults import interrupt_everywhere
from hypothesis import example, given
from hypothesis import strategies as st
from junk import FUZZ, attempt, junk, state_of
from state import parameter_state

from micrograd_batch import MLP, SGD, Adam, Value

TARGET = [3.0, -2.0, 0.5]


def quadratic(params):
    """f(p) = Σ c_i (p_i - t_i)², minimised at p = TARGET, with different curvatures c_i."""
    total = Value(0.0)
    for c, p, t in zip([1.0, 4.0, 0.5], params, TARGET, strict=True):
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
        with pytest.raises(FloatingPointError, match="the gradient of parameter 1 .unlabelled. is nan"):
            opt.step()
        assert [p.data for p in params] == [1.0, 2.0]


def test_bad_settings_raise_clear_errors():
    with pytest.raises(ValueError, match="lr must be a positive finite number"):
        SGD([Value(1.0)], lr=0.0)
    with pytest.raises(ValueError, match="no parameters"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="parameter 0 is float"):
        SGD([1.0], lr=0.1)
    with pytest.raises(ValueError, match="momentum"):
        SGD([Value(1.0)], lr=0.1, momentum=1.5)
    with pytest.raises(ValueError, match="Adam's betas must be in"):
        Adam([Value(1.0)], betas=(0.9, 1.0))


@pytest.mark.parametrize("make, message", [
    (lambda: SGD([Value(1.0)], lr="0.1"), "lr must be a real number (int or float), got str: '0.1'"),
    (lambda: SGD([Value(1.0)], momentum=None), "momentum must be a real number (int or float), got NoneType"),
    (lambda: Adam([Value(1.0)], weight_decay="0"), "weight_decay must be a real number (int or float), got str"),
    (lambda: Adam([Value(1.0)], eps=[1e-8]), "Adam eps must be a real number (int or float), got list"),
])
def test_a_setting_of_the_wrong_type_is_named_in_the_error(make, message):
    with pytest.raises(TypeError) as info:
        make()
    assert str(info.value).startswith(message) and "Value" not in str(info.value)


@pytest.mark.parametrize("optimizer", [SGD, Adam])
@pytest.mark.parametrize("weight_decay", [-1e-300, math.inf, math.nan])
def test_both_optimisers_refuse_a_negative_or_non_finite_weight_decay(optimizer, weight_decay):
    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0"):
        optimizer([Value(1.0)], weight_decay=weight_decay)


# ---- a step is all or nothing ------------------------------------------------------------------------

def optimiser_mid_training(kind):
    """An optimiser two steps in (so its velocity or moments are not zero), with fresh grads."""
    params = [Value(i - 1.5, f"p{i}") for i in range(4)]
    opt = SGD(params, lr=0.1, momentum=0.9, weight_decay=0.01) if kind == "SGD" else Adam(params, lr=0.1)
    for step in range(2):
        for i, p in enumerate(params):
            p.grad = 0.3 * (i + 1) - step
        opt.step()
    for i, p in enumerate(params):
        p.grad = 0.05 - 0.2 * i
    return opt


def full_state(opt):
    """The parameters' values and the optimiser's own state (velocity; m, v, t; ...)."""
    return [p.data for p in opt.params], state_of(opt)


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_a_step_interrupted_at_any_line_leaves_all_old_or_all_new_state(kind):
    old = full_state(optimiser_mid_training(kind))
    stepped = optimiser_mid_training(kind)
    stepped.step()
    new = full_state(stepped)
    assert new[0] != old[0] and new[1] != old[1]  # the step changes both: the check can fail

    def check(opt, interrupted):
        now = full_state(opt)
        assert now in (old, new), "a Ctrl-C left the step half done"
        if not interrupted:
            assert now == new

    assert interrupt_everywhere(lambda: optimiser_mid_training(kind), lambda opt: opt.step(), check) > 10


def test_adam_refuses_a_step_that_would_make_its_second_moment_infinite():
    """g = 1e200 is finite, but g² overflows: v = inf would freeze the parameter for good."""
    p, q = Value(1.0, "w1"), Value(2.0, "w2")
    opt = Adam([p, q], lr=0.1)
    p.grad, q.grad = 1e200, 0.5
    before = full_state(opt)
    with pytest.raises(FloatingPointError, match="this step would make the v of parameter 0 .w1. inf"):
        opt.step()
    assert full_state(opt) == before
    p.grad = 1.0  # and a sane gradient afterwards moves both parameters
    opt.step()
    assert p.data < 1.0 and q.data < 2.0 and all(math.isfinite(v) for v in opt.v)


# ---- junk ----------------------------------------------------------------------------------------------

hyper = st.one_of(st.floats(), junk)


@FUZZ
@given(st.sampled_from(["SGD", "Adam"]), hyper, hyper, hyper, hyper,
       st.lists(st.one_of(st.floats(), st.sampled_from([1e308, -1e308, 0.0])), min_size=9, max_size=9))
@example("SGD", 1e300, 0.0, 0.0, 0.0, [1e10] * 9)  # a finite step that overflows the parameters
@example("SGD", math.inf, 0.0, 0.0, 0.0, [0.0] * 9)  # inf · 0 = nan
@example("SGD", 0.1, 0.0, math.nan, 0.0, [0.0] * 9)  # weight_decay = nan
@example("Adam", 0.1, (0.9, 0.999), 0.0, 0.0, [0.0] * 9)  # eps = 0: 0/0 half-way through a step
@example("Adam", 0.1, (0.9, 0.999), -1e-8, math.nan, [1.0] * 9)
@example("Adam", 0.1, (0.9, 0.999), 1e-8, 0.0, [1e200] * 9)  # g² overflows: v would be inf
def test_optimisers_with_junk(kind, lr, a, b, c, grads):
    """Junk hyper-parameters are refused, or every step either keeps the parameters and the
    optimiser's state finite or raises FloatingPointError having changed nothing."""
    model = MLP(2, [2, 1], seed=0)
    params = model.parameters()
    if kind == "SGD":
        ok, opt = attempt(SGD, params, lr=lr, momentum=a, weight_decay=b)
    else:
        ok, opt = attempt(Adam, params, lr=lr, betas=a, eps=b, weight_decay=c)
    if not ok:
        return
    for _ in range(3):
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        before, state = parameter_state(model), state_of(opt)
        ok, _ = attempt(opt.step)
        if ok:
            assert all(math.isfinite(p.data) for p in params), "a step made a parameter non-finite"
            moments = getattr(opt, "m", []) + getattr(opt, "v", []) + getattr(opt, "velocity", [])
            assert all(math.isfinite(x) for x in moments), "a step made the optimiser state non-finite"
        else:
            assert parameter_state(model) == before and state_of(opt) == state
            return


@FUZZ
@given(junk, junk)
def test_optimiser_params_junk(params, lr):
    ok, opt = attempt(SGD, params, lr=lr)
    if ok:
        assert all(isinstance(p, Value) for p in opt.params)


# ---- state_dict / load_state_dict ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_state_dict_round_trips_exactly_and_the_next_steps_agree(kind):
    opt = optimiser_mid_training(kind)
    state = opt.state_dict()
    assert state["kind"] == kind and set(state) == {"kind", *type(opt).SETTINGS, *type(opt).STATE}
    assert state == json.loads(json.dumps(state))  # JSON-ready, floats exact through repr
    twin = optimiser_mid_training(kind)
    for p, q in zip(twin.params, opt.params, strict=True):
        p.data, p.grad = q.data, q.grad
    fresh = SGD(twin.params, lr=0.1, momentum=0.9, weight_decay=0.01) if kind == "SGD" else Adam(twin.params, lr=0.1)
    fresh.load_state_dict(json.loads(json.dumps(state)))
    assert full_state(fresh) == full_state(opt)
    state["velocity" if kind == "SGD" else "m"][0] = 99.0  # a copy: the optimiser is not changed through it
    assert full_state(fresh) == full_state(opt)
    for _ in range(3):
        opt.step()
        fresh.step()
    assert full_state(fresh) == full_state(opt)


def adam_state():
    return optimiser_mid_training("Adam").state_dict()


@pytest.mark.parametrize("edit, problem", [
    (lambda s: s.update(kind="SGD"), "the state is of a 'SGD' optimiser, this one is 'Adam'"),
    (lambda s: s.update(lr=0.2), "the saved optimiser has lr = 0.2, this one 0.1"),
    (lambda s: s.update(eps=True), "eps = True"),
    (lambda s: s.pop("t"), "exactly the keys"),
    (lambda s: s.update(extra=1), "exactly the keys"),
    (lambda s: s.update(t=10**400), "Adam t is 1000"),
    (lambda s: s.update(t=-1), "Adam t is -1, expected a whole number from 0 to 2\\*\\*53"),
    (lambda s: s.update(t=3.0), "Adam t is 3.0"),
    (lambda s: s["v"].__setitem__(2, -1e-300), "Adam v holds a negative number"),
    (lambda s: s["m"].__setitem__(1, math.inf), "Adam m\\[1\\] is inf"),
    (lambda s: s["m"].__setitem__(1, 10**400), "Adam m\\[1\\]"),
    (lambda s: s["m"].__setitem__(1, 2**53 + 1), "Adam m\\[1\\]"),
    (lambda s: s["m"].pop(), "Adam m must be a list of 4 numbers"),
    (lambda s: s.update(v="0"), "Adam v must be a list"),
])
def test_load_state_dict_refuses_damage_and_changes_nothing(edit, problem):
    state = adam_state()
    edit(state)
    opt = optimiser_mid_training("Adam")
    opt.params[0].grad = 0.5
    opt.step()  # not the state above
    before = full_state(opt)
    with pytest.raises(ValueError, match=problem):
        opt.load_state_dict(state)
    assert full_state(opt) == before


def test_load_state_dict_refuses_a_non_dict():
    with pytest.raises(ValueError, match="the state is of a 'list' optimiser, this one is 'SGD'"):
        SGD([Value(1.0)]).load_state_dict([("velocity", [0.0])])


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_load_state_dict_interrupted_at_any_line_is_all_old_or_all_new(kind):
    saved = optimiser_mid_training(kind)
    saved.step()
    state = saved.state_dict()
    old = full_state(optimiser_mid_training(kind))

    def check(opt, interrupted):
        assert state_of(opt) in ((old[1], state_of(saved)) if interrupted else (state_of(saved),))

    assert interrupt_everywhere(lambda: optimiser_mid_training(kind),
                                lambda opt: opt.load_state_dict(copy.deepcopy(state)), check) > 5


def test_a_step_checks_finiteness_in_one_pass_over_flat_lists(monkeypatch):
    """Issue 22: the step's fixed cost. One call of math.isfinite per number the step produces
    (parameters and state), none per gradient, when nothing is wrong."""
    calls = []
    real = math.isfinite
    opt = optimiser_mid_training("Adam")
    monkeypatch.setattr("micrograd_batch.optim.math.isfinite", lambda x: calls.append(x) or real(x))
    opt.step()
    assert len(calls) == 3 * len(opt.params)  # new values, m, v
