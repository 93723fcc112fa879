"""Fuzzed inputs: junk to every public function gives a correct result or a clear, documented error.

"Documented errors" are TypeError (wrong kind of thing), ValueError (right kind, bad value;
ModelFileError is one), ZeroDivisionError, OverflowError, FloatingPointError (NaN/inf in
training; TrainingDiverged is one) and, for file paths, OSError. Anything else — AttributeError,
IndexError, KeyError, UnboundLocalError, RecursionError... — is a crash this suite reports. A call
that *succeeds* with junk is checked for a right answer, and a call that fails must leave the
model (parameters, and the optimiser's own state) exactly as it was.

Sizes (sample counts, layer widths) come from a bounded range: asking for 10**400 samples is
a request to run forever, not junk to be refused.
"""

from __future__ import annotations

import math
import os
import tempfile
from decimal import Decimal
from fractions import Fraction
from numbers import Real
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from micrograd_batch import (
    MLP,
    SGD,
    Adam,
    TrainingDiverged,
    Value,
    accuracy,
    batch_mean,
    batch_sum,
    bce_with_logits,
    fit,
    hinge,
    l2_penalty,
    logsumexp,
    make_blobs,
    make_moons,
    mean_of,
    minibatches,
    mse,
    per_example_grads,
    softmax_cross_entropy,
    train_step,
    weighted_sum,
)
from micrograd_batch.persist import ModelFileError, load_model, load_parameters_into, save_model

DOCUMENTED = (TypeError, ValueError, ZeroDivisionError, OverflowError, FloatingPointError)
FUZZ = settings(max_examples=int(os.environ.get("MGB_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 40), st.just(10**400), st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, -0.0]),
    st.text(max_size=4), st.binary(max_size=4), st.complex_numbers(max_magnitude=10, allow_nan=False),
    st.just(Fraction(1, 3)), st.just(Decimal("1.5")), st.builds(object),
    st.builds(Value, st.floats(-10, 10)), st.just(len), st.just(Ellipsis),
)
junk = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.tuples(kids, kids)
    | st.dictionaries(st.text(max_size=3), kids, max_size=3),
    max_leaves=8,
)


def attempt(fn, *args, **kwargs):
    """(True, result) or (False, documented error); any other exception fails the test."""
    try:
        return True, fn(*args, **kwargs)
    except DOCUMENTED as error:
        assert str(error), f"{type(error).__name__} with no message"
        return False, error


def is_real(x):
    return isinstance(x, Real) and not isinstance(x, bool)


def same(a, b):
    """Equal floats, NaN equal to NaN."""
    return (math.isnan(a) and math.isnan(b)) or a == b


def snapshot(model):
    return [(p.data, p.grad) for p in model.parameters()]


def state_of(opt):
    return {k: (list(v) if isinstance(v, list) and k != "params" else v)
            for k, v in vars(opt).items() if k != "params"}


# ---- Value and its operations ---------------------------------------------------------------------

@FUZZ
@given(junk)
def test_value_constructor(x):
    ok, v = attempt(Value, x)
    if ok:
        assert is_real(x) and type(v.data) is float and same(v.data, float(x))
    else:  # refused: not a real number, or an int too large for a float
        assert not is_real(x) or (isinstance(x, int) and abs(x) > 2**1024)


BINARY = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "**": lambda a, b: a ** b,
}


@FUZZ
@given(st.sampled_from(sorted(BINARY)), st.floats(), junk, st.booleans())
def test_binary_ops_with_junk_on_either_side(op, a, other, value_first):
    fn = BINARY[op]
    v = Value(a)
    ok, out = attempt(fn, v, other) if value_first else attempt(fn, other, v)
    if not ok:
        return
    assert isinstance(out, Value), f"{op} with {type(other).__name__} gave {type(out).__name__}"
    b = other.data if isinstance(other, Value) else float(other)
    x, y = (a, b) if value_first else (b, a)
    try:
        expected = fn(x, y)
    except (ZeroDivisionError, OverflowError, ValueError):
        return  # float arithmetic refuses; the engine may return inf/nan there instead
    if isinstance(expected, complex):
        pytest.fail(f"{x!r} {op} {y!r} is not real, but the engine returned {out.data!r}")
    assert same(out.data, expected), f"{x!r} {op} {y!r}: {out.data!r} != {expected!r}"
    attempt(out.backward)


UNARY = ["exp", "log", "tanh", "sigmoid", "relu", "softplus", "abs", "sqrt", "__neg__", "__abs__"]


@FUZZ
@given(st.sampled_from(UNARY), st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 1e308, -1e308])))
def test_unary_ops_on_any_float(name, x):
    ok, out = attempt(getattr(Value(x), name))
    if ok:
        assert isinstance(out, Value) and type(out.data) is float
        out.backward()
    else:
        assert name in ("log", "sqrt")


@FUZZ
@given(junk)
def test_backward_seed(seed):
    v = Value(2.0)
    out = v * 3.0
    ok, _ = attempt(out.backward, seed)
    if ok:
        assert is_real(seed) and same(v.grad, 3.0 * float(seed))
    else:
        assert v.grad == 0.0


@FUZZ
@given(junk, junk, junk)
@example([1.0], [Value(1.0)], Value(0.0))
@example([Value(1.0)], [Value(2.0)], 0.5)
def test_weighted_sum_with_junk(weights, inputs, bias):
    ok, out = attempt(weighted_sum, weights, inputs, bias)
    if ok:
        assert same(out.data, bias.data + math.fsum(w.data * x.data for w, x in zip(weights, inputs))) \
            or len(weights) > 1


@FUZZ
@given(junk)
@example([1.0, 2.0])
def test_logsumexp_with_junk(values):
    ok, out = attempt(logsumexp, values)
    if ok:
        assert isinstance(out, Value)


# ---- batches --------------------------------------------------------------------------------------

@FUZZ
@given(st.sampled_from([batch_mean, batch_sum]), junk)
def test_batch_nodes_with_junk(fn, losses):
    ok, out = attempt(fn, losses)
    if ok:
        items = list(losses)
        assert items and all(isinstance(v, Value) for v in items)
        total = math.fsum(v.data for v in items)
        assert same(out.data, total if fn is batch_sum else total / len(items))


@FUZZ
@given(junk)
def test_per_example_grads_with_junk_losses(losses):
    model = MLP(2, [2, 1], seed=0)
    for p in model.parameters():
        p.grad = 0.25
    before = snapshot(model)
    ok, grads = attempt(per_example_grads, losses, model.parameters())
    assert snapshot(model) == before  # grads given back, data untouched, success or not
    if ok:
        assert len(grads) == len(list(losses))


@pytest.mark.parametrize("params", [[1.0], [Value(1.0), "w"], [None]])
def test_per_example_grads_with_junk_params(params):
    loss = Value(2.0) * Value(3.0)
    with pytest.raises(TypeError):
        per_example_grads([loss], params)


@FUZZ
@given(junk)
@example([[1.0, 2.0], [3.0]])
def test_mean_of_with_junk(vectors):
    ok, out = attempt(mean_of, vectors)
    if ok:
        rows = [list(v) for v in vectors]
        assert rows and len({len(r) for r in rows}) == 1, f"mean_of accepted ragged {rows!r}"
        assert all(close(o, exact_mean(c)) for o, c in zip(out, zip(*rows)))


def exact_mean(column):
    """The mean in exact rational arithmetic, rounded once (float arithmetic for inf/NaN)."""
    if all(math.isfinite(x) for x in column):
        return float(sum(Fraction(x) for x in column) / len(column))
    return sum(column) / len(column)


def close(a, b):
    """Equal to within two roundings (sum, then divide), NaN equal to NaN."""
    return same(a, b) or math.isclose(a, b, rel_tol=4e-16)


# ---- losses ---------------------------------------------------------------------------------------

outputs = st.one_of(junk, st.builds(Value, st.floats()),
                    st.lists(st.builds(Value, st.floats(-5, 5)), min_size=0, max_size=3))
LOSSES = {"mse": mse, "hinge": hinge, "bce": bce_with_logits, "softmax": softmax_cross_entropy}


@FUZZ
@given(st.sampled_from(sorted(LOSSES)), outputs, junk)
def test_losses_with_junk(name, output, target):
    ok, loss = attempt(LOSSES[name], output, target)
    if ok:
        assert isinstance(loss, Value) and type(loss.data) is float
        loss.backward()


@FUZZ
@given(junk, junk)
@example([1.0, 2.0], 0.1)
@example([Value(1.0), None], 0.1)
def test_l2_penalty_with_junk(params, alpha):
    ok, out = attempt(l2_penalty, params, alpha)
    if ok:
        assert same(out.data, float(alpha) * math.fsum(p.data ** 2 for p in params))


# ---- models ----------------------------------------------------------------------------------------

sizes = st.one_of(st.integers(-2, 4), junk.filter(lambda x: not (isinstance(x, int) and x > 40)))


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
def test_model_call_with_junk(x):
    model = MLP(2, [3, 2], seed=1)
    before = snapshot(model)
    ok, out = attempt(model, x)
    assert snapshot(model) == before
    if ok:
        assert len(x) == 2 and all(isinstance(v, Value) or is_real(v) for v in x)
        assert isinstance(out, list) and len(out) == 2 and all(isinstance(o, Value) for o in out)


@FUZZ
@given(junk)
def test_accuracy_with_junk(examples):
    ok, acc = attempt(accuracy, MLP(2, [2], seed=0), examples)
    if ok:
        assert 0.0 <= acc <= 1.0


# ---- optimisers --------------------------------------------------------------------------------------

hyper = st.one_of(st.floats(), junk)


@FUZZ
@given(st.sampled_from(["SGD", "Adam"]), hyper, hyper, hyper, hyper,
       st.lists(st.one_of(st.floats(), st.sampled_from([1e308, -1e308, 0.0])), min_size=9, max_size=9))
@example("SGD", 1e300, 0.0, 0.0, 0.0, [1e10] * 9)  # a finite step that overflows the parameters
@example("SGD", math.inf, 0.0, 0.0, 0.0, [0.0] * 9)  # inf · 0 = nan
@example("SGD", 0.1, 0.0, math.nan, 0.0, [0.0] * 9)  # weight_decay = nan
@example("Adam", 0.1, (0.9, 0.999), 0.0, 0.0, [0.0] * 9)  # eps = 0: 0/0 half-way through a step
@example("Adam", 0.1, (0.9, 0.999), -1e-8, math.nan, [1.0] * 9)
def test_optimisers_with_junk(kind, lr, a, b, c, grads):
    """Junk hyper-parameters are refused, or every step either keeps the parameters finite or
    raises FloatingPointError having changed nothing (parameters and optimiser state)."""
    model = MLP(2, [2, 1], seed=0)
    params = model.parameters()
    if kind == "SGD":
        ok, opt = attempt(SGD, params, lr=lr, momentum=a, weight_decay=b)
    else:
        ok, opt = attempt(Adam, params, lr=lr, betas=a, eps=b, weight_decay=c)
    if not ok:
        return
    for _ in range(3):
        for p, g in zip(params, grads):
            p.grad = g
        before, state = snapshot(model), state_of(opt)
        ok, _ = attempt(opt.step)
        if ok:
            assert all(math.isfinite(p.data) for p in params), "a step made a parameter non-finite"
        else:
            assert snapshot(model) == before and state_of(opt) == state
            return


@FUZZ
@given(junk, junk)
def test_optimiser_params_junk(params, lr):
    ok, opt = attempt(SGD, params, lr=lr)
    if ok:
        assert all(isinstance(p, Value) for p in opt.params)


# ---- data ---------------------------------------------------------------------------------------------

@FUZZ
@given(junk, sizes, junk, junk, junk)
@example({"a": 1, "b": 2}, 1, False, 0, False)  # a dict has a length but no positions
@example({1, 2, 3}, 2, True, 0, False)
def test_minibatches_with_junk(examples, batch_size, shuffle, seed, drop_last):
    ok, batches = attempt(lambda: list(minibatches(examples, batch_size, shuffle, seed, drop_last)))
    if ok:
        items = [e for b in batches for e in b]
        assert all(0 < len(b) <= batch_size for b in batches)
        if not drop_last:
            assert sorted(map(id, items)) == sorted(map(id, examples))


@FUZZ
@given(sizes, junk, junk, junk)
@example(10, math.nan, 0, True)
@example(10, math.inf, 0, True)
def test_make_moons_with_junk(n, noise, seed, signed):
    ok, data = attempt(make_moons, n, noise, seed, signed)
    if ok:
        assert len(data) == n
        assert all(len(x) == 2 and all(math.isfinite(v) for v in x) for x, _ in data)


@FUZZ
@given(sizes, junk, junk)
@example(10, [], 0.5)
@example(10, [[0.0, 0.0]], math.nan)
def test_make_blobs_with_junk(n, centers, spread):
    ok, data = attempt(make_blobs, n, centers, spread)
    if ok:
        assert len(data) == n
        assert all(all(math.isfinite(v) for v in x) for x, _ in data)


# ---- training ----------------------------------------------------------------------------------------

GOOD = [([0.5, -0.5], 1), ([-0.3, 0.8], -1), ([0.1, 0.1], 1)]


class RecordingSGD(SGD):
    """SGD that remembers the parameters after each completed step."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.after = [[p.data for p in self.params]]

    def step(self):
        super().step()
        self.after.append([p.data for p in self.params])


@FUZZ
@given(st.lists(st.one_of(st.sampled_from(GOOD), junk), min_size=0, max_size=6))
@example([GOOD[0], ([math.nan, 0.0], 1)])
@example([GOOD[0], ([1e200, 1e200], 1)])
@example([GOOD[0], ([0.0, 0.0], "yes")])
@example([GOOD[0], ([0.0, 0.0, 0.0], 1)])
def test_train_step_failure_changes_nothing(batch):
    model = MLP(2, [3, 1], seed=2)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.5)
    before, state = [p.data for p in model.parameters()], state_of(opt)
    ok, result = attempt(train_step, model, batch, hinge, opt)
    if not ok:
        assert [p.data for p in model.parameters()] == before and state_of(opt) == state
    else:
        assert math.isfinite(result[0]) and len(result[1]) == len(batch)


@FUZZ
@given(st.lists(st.one_of(st.sampled_from(GOOD), junk), min_size=0, max_size=8),
       st.one_of(st.integers(1, 4), junk), st.one_of(st.integers(1, 2), junk), junk, junk)
@example([GOOD[0]] * 4 + [([1e200, 1e200], 1)], 2, 1, 0.0, 0)
def test_fit_with_junk(examples, batch_size, epochs, l2, seed):
    model = MLP(2, [3, 1], seed=3)
    opt = RecordingSGD(model.parameters(), lr=0.1)
    ok, history = attempt(fit, model, examples, hinge, opt, epochs=epochs,
                          batch_size=batch_size, l2=l2, seed=seed, verbose=False)
    # success or not, the model holds the parameters of the last completed step
    assert [p.data for p in model.parameters()] == opt.after[-1]
    if ok:
        assert history.steps == len(opt.after) - 1 >= 1
    elif isinstance(history, (FloatingPointError, OverflowError)):
        assert isinstance(history, TrainingDiverged), f"fit let {history!r} escape"


@pytest.mark.parametrize("kwargs", [
    dict(model=None), dict(model="mlp"), dict(loss_fn=None), dict(loss_fn=3),
    dict(optimizer="sgd"), dict(optimizer=[1]), dict(on_epoch=5), dict(epochs=2.5),
])
def test_fit_refuses_junk_arguments_up_front(kwargs):
    model = MLP(2, [3, 1], seed=3)
    args = dict(model=model, examples=GOOD, loss_fn=hinge, verbose=False)
    args.update(kwargs)
    before = snapshot(model)
    with pytest.raises(TypeError if "epochs" not in kwargs else ValueError):
        fit(**args)
    assert snapshot(model) == before  # refused before any step


def test_fit_regression_with_several_outputs_reports_no_accuracy():
    model = MLP(2, [3, 2], seed=0)
    history = fit(model, [([0.1, 0.2], [0.5, -0.5]), ([0.3, -0.1], [0.2, 0.1])], mse,
                  epochs=1, verbose=False)
    assert history.accuracy == [None]


# ---- saving and loading ----------------------------------------------------------------------------

@FUZZ
@given(junk)
@example(3)  # once taken as file descriptor 3: read and closed (pytest's saved stdin)
@example(True)  # == 1: stdout
@example(0)
def test_save_and_load_with_junk(thing):
    is_path = isinstance(thing, (str, bytes, os.PathLike))
    fds = sorted(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    with tempfile.TemporaryDirectory() as d:
        target = Path(d) / "m.json"
        ok, _ = attempt(save_model, thing, target)
        assert ok == isinstance(thing, MLP) and target.exists() == ok
        for fn in (load_model, lambda p: load_parameters_into(MLP(2, [1], seed=0), p)):
            try:
                fn(thing)
            except (TypeError, ValueError, OSError) as error:
                assert str(error)
                assert is_path or isinstance(error, TypeError), f"{thing!r} is not a path: {error!r}"
            else:
                assert is_path
        if isinstance(thing, (str, bytes)) and thing:
            with pytest.raises((ModelFileError, OSError)):
                load_model(Path(d) / "absent")
    if fds is not None:  # nothing opened and left open, nothing of ours closed
        assert sorted(os.listdir("/proc/self/fd")) == fds
