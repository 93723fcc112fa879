"""The Value engine: every op against central differences and closed forms, backward's order and
accumulation rules, deep graphs without recursion, and clear errors for bad input."""

import math
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcheck import numeric_gradient
from micrograd_batch import Value, logsumexp, topological_order, weighted_sum

# op name -> (function of a list of Values/floats, a point inside its domain)
OPS = {
    "add": (lambda v: v[0] + v[1], [0.7, -1.3]),
    "sub": (lambda v: v[0] - v[1], [0.7, -1.3]),
    "mul": (lambda v: v[0] * v[1], [0.7, -1.3]),
    "div": (lambda v: v[0] / v[1], [0.7, -1.3]),
    "pow_int": (lambda v: v[0] ** 3, [-0.8]),
    "pow_float": (lambda v: v[0] ** 1.7, [0.9]),
    "pow_negative": (lambda v: v[0] ** -2, [1.3]),
    "pow_value": (lambda v: v[0] ** v[1], [1.4, 0.6]),
    "neg": (lambda v: -v[0], [0.4]),
    "radd": (lambda v: 2.5 + v[0], [0.4]),
    "rsub": (lambda v: 1 - v[0], [0.4]),
    "rmul": (lambda v: 2 * v[0], [0.4]),
    "rdiv": (lambda v: 1 / v[0], [0.4]),
    "rpow": (lambda v: 2 ** v[0], [0.4]),
    "exp": (lambda v: v[0].exp() if isinstance(v[0], Value) else math.exp(v[0]), [0.3]),
    "log": (lambda v: v[0].log() if isinstance(v[0], Value) else math.log(v[0]), [1.7]),
    "tanh": (lambda v: v[0].tanh() if isinstance(v[0], Value) else math.tanh(v[0]), [0.3]),
    "sigmoid": (
        lambda v: v[0].sigmoid() if isinstance(v[0], Value) else 1 / (1 + math.exp(-v[0])),
        [-0.6],
    ),
    "relu": (lambda v: v[0].relu() if isinstance(v[0], Value) else max(v[0], 0.0), [0.3]),
    "softplus": (
        lambda v: v[0].softplus() if isinstance(v[0], Value) else math.log1p(math.exp(v[0])),
        [-0.4],
    ),
    "abs": (lambda v: abs(v[0]), [-0.4]),
    "sqrt": (lambda v: v[0].sqrt() if isinstance(v[0], Value) else math.sqrt(v[0]), [2.2]),
}


def grads_of(f, xs):
    """Value and autograd gradient of f at xs."""
    leaves = [Value(x) for x in xs]
    out = f(leaves)
    out.backward()
    return out.data, [leaf.grad for leaf in leaves]


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_matches_central_differences(name):
    f, xs = OPS[name]
    value, grads = grads_of(f, xs)
    assert value == pytest.approx(f(xs), rel=1e-12)
    assert grads == pytest.approx(numeric_gradient(f, xs), rel=1e-6, abs=1e-8)


def test_closed_form_local_derivatives():
    x = Value(0.5)
    for out, expected in [
        (x.tanh(), 1 - math.tanh(0.5) ** 2),
        (x.exp(), math.exp(0.5)),
        (x.log(), 2.0),
        (x**3, 3 * 0.25),
        (x.sigmoid(), math.exp(-0.5) / (1 + math.exp(-0.5)) ** 2),
    ]:
        x.grad = 0.0
        out.backward()
        assert x.grad == pytest.approx(expected, rel=1e-14)


def test_fused_nodes_match_finite_differences():
    def dot(v):
        return weighted_sum(v[0:3], v[3:6], v[6]) if isinstance(v[0], Value) else (
            v[6] + sum(a * b for a, b in zip(v[0:3], v[3:6])))

    def lse(v):
        if isinstance(v[0], Value):
            return logsumexp(v)
        return math.log(sum(math.exp(t) for t in v))

    for f, xs in [(dot, [0.3, -1.2, 2.0, 0.5, 0.25, -0.75, 0.1]), (lse, [0.3, -1.2, 2.0])]:
        _, grads = grads_of(f, xs)
        assert grads == pytest.approx(numeric_gradient(f, xs), rel=1e-6, abs=1e-8)


# A random expression: a list of steps, each combining two earlier results (so sub-expressions
# are shared) with one of the smooth ops. Inputs stay in [0.5, 1.5] and results are squashed
# by tanh before the next step, keeping every op in its domain and every value of order 1.
BINARY = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / (b * b + 1)]
UNARY = ["tanh", "sigmoid", "exp", "softplus"]


def evaluate(program, xs):
    """Run a random program on Values or on floats; the last result is the output."""
    values = list(xs)
    is_value = isinstance(xs[0], Value)
    for i, j, op, fn in program:
        a = BINARY[op](values[i % len(values)], values[j % len(values)])
        if is_value:
            b = getattr(a, UNARY[fn])()
        else:
            b = {"tanh": math.tanh, "sigmoid": lambda t: 1 / (1 + math.exp(-t)), "exp": math.exp,
                 "softplus": lambda t: math.log1p(math.exp(t))}[UNARY[fn]](a)
        values.append(b.tanh() if is_value else math.tanh(b))
    return values[-1]


programs = st.lists(
    st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(0, len(BINARY) - 1),
              st.integers(0, len(UNARY) - 1)),
    min_size=1, max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(program=programs, xs=st.lists(st.floats(0.5, 1.5), min_size=1, max_size=4))
def test_random_expressions_match_central_differences(program, xs):
    def f(v):
        return evaluate(program, v)

    _, grads = grads_of(f, xs)
    # values are O(1) and smooth: with h = 1e-6 the truncation error is O(h²) = 1e-12 times
    # the third derivative and rounding is O(1e-16 / 1e-6) = 1e-10, far inside 1e-6.
    assert grads == pytest.approx(numeric_gradient(f, xs), rel=1e-5, abs=1e-7)


def test_node_used_several_times_accumulates_every_contribution():
    x = Value(3.0)
    y = x * x + x  # dy/dx = 2x + 1
    y.backward()
    assert x.grad == 7.0
    z = Value(2.0)
    w = z * z * z * z  # 4 z^3
    w.backward()
    assert z.grad == 32.0


def test_every_node_holds_its_gradient_after_backward():
    a, b = Value(2.0), Value(-3.0)
    c = a * b
    d = c + a
    e = d.tanh()
    e.backward()
    assert e.grad == 1.0
    assert d.grad == pytest.approx(1 - math.tanh(-4.0) ** 2, rel=1e-15)
    assert c.grad == d.grad
    assert a.grad == pytest.approx(d.grad * (b.data + 1), rel=1e-15)


def test_leaf_grads_accumulate_across_backward_calls_intermediate_do_not():
    a = Value(1.5)
    b = a * a
    out = b * 3.0
    out.backward()
    first_leaf, first_mid = a.grad, b.grad
    out.backward()
    assert a.grad == 2 * first_leaf
    assert b.grad == first_mid


def test_topological_order_places_each_node_before_its_parents():
    x = Value(1.0)
    y = x * 2 + x
    z = y * y + x
    order = topological_order(z)
    position = {id(node): i for i, node in enumerate(order)}
    assert order[0] is z
    assert len(position) == len(order)
    for node in order:
        for parent in node._parents:
            assert position[id(parent)] > position[id(node)]


def test_million_node_chain_backpropagates_under_default_recursion_limit():
    assert sys.getrecursionlimit() <= 10_000
    x = Value(1.0)
    y = x
    for _ in range(1_000_000):
        y = y + x  # a chain of 1,000,000 add nodes, each also reading x: y = 1,000,001 x
    y.backward()
    assert x.grad == 1_000_001.0
    assert len(topological_order(y)) == 1_000_001


def test_value_rejects_non_numbers_naming_the_type():
    for bad, name in [("1.0", "str"), (None, "NoneType"), ([1.0], "list"), (True, "bool")]:
        with pytest.raises(TypeError, match=name):
            Value(bad)


def test_operations_with_non_numbers_raise_type_error():
    with pytest.raises(TypeError, match="str"):
        Value(1.0) + "2"
    with pytest.raises(TypeError, match="NoneType"):
        Value(2.0) * None
    with pytest.raises(TypeError, match="dict"):
        {} - Value(2.0)


def test_domain_errors_are_clear():
    with pytest.raises(ValueError, match="log"):
        Value(0.0).log()
    with pytest.raises(ValueError, match="log"):
        Value(-1.0).log()
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        Value(1.0) / 0
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        1 / Value(0.0)
    with pytest.raises(ZeroDivisionError, match="negative power"):
        Value(0.0) ** -1
    with pytest.raises(ValueError, match="not real"):
        Value(-8.0) ** (1 / 3)
    with pytest.raises(ValueError, match="positive base"):
        Value(-2.0) ** Value(2.0)
    with pytest.raises(ValueError, match="sqrt"):
        Value(-1.0).sqrt()


def test_exp_overflow_gives_infinity_like_float_arithmetic():
    assert Value(1000.0).exp().data == math.inf
    assert Value(-1000.0).exp().data == 0.0
