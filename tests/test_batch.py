"""The batch-loss node: one node, 1/m to each example, and its gradient is the mean of the
per-example gradients for every activation and every loss; per_example_grads leaves every
gradient in the graph as it was; junk gives a clear error."""

import math
import os
import random
import sys
from fractions import Fraction

import pytest
from gradcheck import assert_close, central_difference
from hypothesis import example, given, settings
from hypothesis import strategies as st
from junk import FUZZ, attempt, junk, same
from state import assert_unchanged, parameter_state, snapshot

from micrograd_batch import (
    MLP, Value, batch_mean, batch_sum, bce_with_logits, hinge, make_moons, mse, per_example_grads,
    softmax_cross_entropy,
)
from micrograd_batch.batch import mean_of
from helpers import make_blobs
from micrograd_batch.engine import topological_order
from micrograd_batch.engine import Op
from micrograd_batch.nn import ACTIVATIONS

EXAMPLES = int(os.environ.get("MGB_FUZZ_EXAMPLES", "150"))

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


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
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
       activation=st.sampled_from(sorted(ACTIVATIONS)))
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


@pytest.mark.slow
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


def test_batch_mean_of_huge_losses_is_finite():
    assert batch_mean([Value(1e308), Value(1e308)]).data == 1e308


def test_mean_node_is_one_node_finite_when_the_sum_overflows():
    from micrograd_batch.batch import mean_node
    assert mean_node([Value(1e308), Value(1e308)], "μ", Op.BATCH_STAT).data == 1e308  # exact: 1e308/2 twice
    values = [Value(1e308), Value(1e308), Value(-5e307)]
    node = mean_node(values, "μ", Op.BATCH_STAT)
    assert node.data == pytest.approx(5e307, rel=1e-15)
    assert (node._parents, node._local_grads, node.op, node.label) == (tuple(values), (1 / 3,) * 3, Op.BATCH_STAT, "μ")


@settings(max_examples=60, deadline=None)
@given(vector=st.lists(st.floats(-1e300, 1e300, allow_nan=False), min_size=1, max_size=6),
       max_norm=st.floats(1e-3, 1e3))
@example(vector=[1e200, 1e200], max_norm=1.0)  # Σ g² overflows; the norm does not
def test_clip_to_norm_keeps_short_vectors_and_scales_long_ones_to_max_norm(vector, max_norm):
    from micrograd_batch.batch import clip_to_norm
    clipped = clip_to_norm(vector, max_norm)
    length = math.hypot(*vector)
    if length <= max_norm:
        assert clipped == vector
    else:
        assert math.hypot(*clipped) == pytest.approx(max_norm, rel=1e-14)
        assert all(c == pytest.approx(g * (max_norm / length), rel=1e-15, abs=1e-300)
                   for c, g in zip(clipped, vector, strict=True))
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="max_norm must be a positive finite number"):
            clip_to_norm(vector, bad)


def test_batch_sum_of_infinite_losses_follows_float_arithmetic():
    assert batch_sum([Value(1e308), Value(1e308)]).data == math.inf
    assert math.isnan(batch_mean([Value(math.inf), Value(-math.inf)]).data)


# ---- per_example_grads leaves every gradient alone ------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), m=st.integers(1, 8), cut=st.integers(0, 40),
       activation=st.sampled_from(["tanh", "relu"]), prior=st.sampled_from(["backward", "junk"]))
@example(seed=0, m=8, cut=3, activation="tanh", prior="backward")  # the reported case
def test_per_example_grads_leaves_every_grad_in_the_graph_as_it_was(seed, m, cut, activation, prior):
    """Every Value reachable from the losses -- parameters passed or not, inputs, constants,
    intermediate nodes -- has the same data and grad afterwards, bit for bit."""
    model = MLP(2, [4, 1], activation=activation, seed=seed)
    rng = random.Random(seed)
    losses = [mse(model([rng.uniform(-2, 2), rng.uniform(-2, 2)]), rng.uniform(-1, 1))
              for _ in range(m)]
    if prior == "backward":  # a training step's gradients, waiting for optimizer.step()
        batch_mean(losses).backward()
    else:  # any gradients at all, even on intermediate nodes
        for v in {id(v): v for loss in losses for v in topological_order(loss)}.values():
            v.grad = rng.uniform(-5, 5)
    params = model.parameters()
    before = snapshot(*losses, *params)
    each = per_example_grads(losses, params[:cut])
    assert_unchanged(before, snapshot(*losses, *params))
    assert len(each) == m and all(len(g) == len(params[:cut]) for g in each)


def test_per_example_grads_then_a_step_uses_the_batch_gradient():
    """The reported case: after batch_mean(losses).backward(), per_example_grads on some of the
    parameters must not change what the optimiser then sees for the others."""
    model = MLP(2, [4, 1], activation="tanh", seed=0)
    batch = make_moons(8, seed=1)
    losses = [mse(model(x), y) for x, y in batch]
    batch_mean(losses).backward()
    grads = [p.grad for p in model.parameters()]
    per_example_grads(losses, model.parameters()[:3])
    assert [p.grad for p in model.parameters()] == grads


@settings(max_examples=max(10, EXAMPLES // 3), deadline=None)
@given(st.integers(0, 10**6), st.lists(st.lists(st.floats(-2, 2), min_size=2, max_size=2),
                                       min_size=1, max_size=5))
def test_per_example_grads_average_to_the_batch_gradient(seed, xs):
    """mean_of(per_example_grads) == batch gradient, and each per-example gradient is right."""
    model = MLP(2, [3, 1], activation="tanh", seed=seed)
    params = model.parameters()
    losses = [bce_with_logits(model(x), i % 2) for i, x in enumerate(xs)]
    for p in params:
        p.grad = 7.0  # per_example_grads must give these back afterwards
    each = per_example_grads(losses, params)
    assert [p.grad for p in params] == [7.0] * len(params)
    model.zero_grad()
    batch_mean(losses).backward()
    for got, want in zip(mean_of(each), [p.grad for p in params], strict=True):
        assert abs(got - want) <= 1e-12 * max(1.0, abs(want))
    # one example's gradient, against finite differences of that example's loss alone
    base = [p.data for p in params]

    def loss0(values):
        for p, v in zip(params, values, strict=True):
            p.data = v
        return bce_with_logits(model(xs[0]), 0).data

    for i in range(len(params)):
        fd = central_difference(loss0, base, i)
        assert_close(each[0][i], fd, f"example 0, parameter {i}")
    loss0(base)


# ---- junk -----------------------------------------------------------------------------------------

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
    before = parameter_state(model)
    ok, grads = attempt(per_example_grads, losses, model.parameters())
    assert parameter_state(model) == before  # grads given back, data untouched, success or not
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
        assert all(close(o, exact_mean(c)) for o, c in zip(out, zip(*rows, strict=True), strict=True))


def exact_mean(column):
    """The mean in exact rational arithmetic, rounded once (float arithmetic for inf/NaN)."""
    if all(math.isfinite(x) for x in column):
        return float(sum(Fraction(x) for x in column) / len(column))
    return sum(column) / len(column)


def close(a, b):
    """Equal to within two roundings (sum, then divide), NaN equal to NaN."""
    return same(a, b) or math.isclose(a, b, rel_tol=4e-16)


def test_one_input_rule_for_every_path():
    """input_row is the rule the graph path and compile_loss share: a sequence of the right length;
    a set (no order), a dict or a str is refused everywhere."""
    from micrograd_batch.batch import input_row
    assert input_row((1, 2.5), 2) == [1, 2.5] and input_row(range(2), 2) == [0, 1]
    for x in ({1.0, 2.0}, frozenset({1.0, 2.0}), {0: 1.0, 1: 2.0}, "ab", Value(1.0)):
        with pytest.raises(TypeError, match="must be a list of 2 numbers"):
            input_row(x, 2)
    with pytest.raises(ValueError, match="example 3 has 1 features, expected 2"):
        input_row([1.0], 2, "example 3")
