"""The Value engine: every op against central differences, closed forms and Python's own floats
(bit for bit), random graphs against finite differences and the textbook backward pass, the
order and accumulation rules of backward, Ctrl-C at any moment, NaN, deep graphs without
recursion, edge cases with documented answers, and clear errors for bad input.

Random graphs. Hypothesis draws a small *program*: a list of instructions, each applying one op
of the shared table (tests/ops.py) to nodes made earlier (so sub-expressions are shared, and the
same node can feed both sides of an op). Running the program on input Values builds a graph;
`backward()` gives the gradient of its output with respect to every input, which is compared
with central finite differences D(h) = (f(x + h e_i) - f(x - h e_i)) / 2h.

Domains and kinks. Each op's argument is kept inside its domain and away from kinks by a
*guard* decided once, at the base point, and then replayed unchanged at x ± h: log, sqrt,
fractional/negative powers and Value exponents get a positive base (b if b > 0.5, else b² + 0.5);
a divisor is kept away from 0 the same way (|b| >= 0.5); relu, abs and hinge, if their argument is
within 0.01 of the kink, get it shifted by 0.5. Every node is also rescaled by a recorded constant
when |value| > 4, so nothing overflows and all values and local derivatives stay moderate.
Because the guards are recorded, f is one fixed smooth function near x, which is what finite
differences need; and because the shifts and rescalings are ordinary ops (+, * by a constant)
they are differentiated too.

Tolerance. With h = 1e-6 and inputs in [-2, 2]:
  * truncation error of D(h) is h²/6 · |f'''| ~ 1e-12 · |f'''|; values are bounded by 4 after
    every op, so |f'''| stays below ~1e3 here and this is < 1e-9;
  * rounding error is ~ eps · |f| / h ~ 2.2e-16 · 4 / 1e-6 ~ 1e-9, times a modest factor for
    cancellations inside the graph.
So D(h) is good to ~1e-8 absolute; over 3,000 random programs the worst error measured was
9.5e-10 relative. We accept |backward - D(h)| <= 1e-5 · max(1, |D(h)|): four orders of
magnitude above the measured error (no flakiness), and still many orders below
any real mistake in a derivative rule (a wrong factor, sign or argument is an O(1) error).
`test_the_checker_catches_a_wrong_derivative` shows the check does fail on such a mistake.
"""

from __future__ import annotations

import gc
import math
import os
import sys
from fractions import Fraction

import pytest
from faults import Injector, interrupt_everywhere
from gradcheck import assert_close, central_difference, numeric_gradient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from junk import FUZZ, attempt, is_real, junk, same
from ops import BY_NAME, CASES, EXACT, NAMES, arguments, is_const
from state import bits

from micrograd_batch import MLP, Value, batch_mean
from micrograd_batch.engine import topological_order
from micrograd_batch.losses import logsumexp
from micrograd_batch.nn import weighted_sum
from micrograd_batch._checks import gc_paused
from micrograd_batch.engine import Op

EXAMPLES = int(os.environ.get("MGB_FUZZ_EXAMPLES", "150"))
GRAPH_FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---- every op of the table at its point, and over its domain -------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_every_op_matches_its_reference_and_central_differences(name):
    case = BY_NAME[name]
    xs = list(case.point)
    leaves = [Value(x) for x in xs]
    out = case.apply(*(x if is_const(d) else v for x, v, d in zip(xs, leaves, case.domains, strict=True)))
    out.backward()
    if case.exact:
        assert bits(out.data) == bits(case.on_floats(xs))
    assert out.data == pytest.approx(case.on_floats(xs), rel=1e-12)
    for i, d in enumerate(case.domains):
        if not is_const(d):
            expected = central_difference(case.on_floats, xs, i)
            assert leaves[i].grad == pytest.approx(expected, rel=1e-6, abs=1e-8), f"argument {i}"


@pytest.mark.parametrize("name", NAMES)
def test_every_op_over_its_domain_matches_central_differences(name):
    case = BY_NAME[name]

    @settings(max_examples=20, deadline=None)
    @given(arguments(case))
    def check(xs):
        leaves = [Value(x) for x in xs]
        out = case.apply(*(x if is_const(d) else v for x, v, d in zip(xs, leaves, case.domains, strict=True)))
        out.backward()
        for i, d in enumerate(case.domains):
            if not is_const(d):
                assert_close(leaves[i].grad, central_difference(case.on_floats, list(xs), i),
                             f"{name}, argument {i} at {xs}")

    check()


# ---- forward values are Python's floats, bit for bit ----------------------------------------------

def _signed(magnitudes):
    return st.builds(lambda m, negative: -m if negative else m, magnitudes, st.booleans())


operands = st.one_of(
    _signed(st.floats(1e-300, 1e16)),
    _signed(st.integers(2**53 - 8, 2**53 + 8)),  # ints a float cannot all hold exactly
    st.fractions(min_value=-10**6, max_value=10**6, max_denominator=10**6),
    st.sampled_from([0.0, -0.0, 0, 1, -1, 2, 0.5, Fraction(1, 3)]),
)
VALUE_EXPONENT = {"pow value": 0, "rpow": 0}  # a Value exponent needs a positive base (argument 0)


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(st.sampled_from(EXACT), st.lists(operands, min_size=5, max_size=5))
@example("div const", [5796976996117147.0, Fraction(1, 3), 0, 0, 0])  # found by the fuzz once
@example("div const", [0.3, 0.4, 0, 0, 0])  # a * (1/b) gives 0.75, Python 0.7499999999999999
@example("div", [0.3, 0.4, 0, 0, 0])
@example("rdiv", [0.3, 0.4, 0, 0, 0])
@example("div", [2**53 + 1, Fraction(1, 3), 0, 0, 0])
@example("sub", [0.0, 0.0, 0, 0, 0])  # 0.0 - 0.0 is +0.0, -0.0 - 0.0 is -0.0
@example("add", [-0.0, -0.0, 0, 0, 0])
@example("exp", [1e16, 0, 0, 0, 0])  # math.exp overflows: the engine gives inf
def test_forward_values_are_pythons_floats_bit_for_bit(name, raw):
    """`Value(a) op b` is `float(a) op b`, `b op Value(a)` is `b op float(a)`, `Value(a).exp()`
    is `math.exp(float(a))` ... bit for bit, in every form; where Python refuses, the engine
    refuses with the same error, and where Python overflows with an error, it gives ±inf."""
    case = BY_NAME[name]
    xs = raw[: case.arity]
    if name in VALUE_EXPONENT and not float(xs[0]) > 0.0:
        with pytest.raises(ValueError, match="positive base"):
            case.on_values(xs)
        return
    try:
        expected = case.on_floats(xs)
    except (ZeroDivisionError, ValueError) as error:
        with pytest.raises(type(error)):
            case.on_values(xs)
        return
    except OverflowError:  # the engine overflows to ±inf, as float * and + do
        assert math.isinf(case.on_values(xs).data)
        return
    if isinstance(expected, complex):
        with pytest.raises(ValueError, match="not real"):
            case.on_values(xs)
        return
    out = case.on_values(xs)
    assert bits(out.data) == bits(expected), f"{name}{tuple(xs)}: {out.data!r} != {expected!r}"


def test_division_derivatives_are_one_over_b_and_minus_quotient_over_b():
    a, b = Value(0.3), Value(0.4)
    out = a / b
    out.backward()
    assert out.data == 0.3 / 0.4
    assert a.grad == 1.0 / 0.4 and b.grad == -((0.3 / 0.4) / 0.4)


# ---- random graphs: finite differences, and the textbook pass bit for bit -------------------------

class Tape:
    """Guard decisions: recorded when building at the base point, replayed at x ± h."""

    def __init__(self, decisions=None):
        self.recording = decisions is None
        self.decisions = [] if decisions is None else decisions
        self.position = 0

    def decide(self, make):
        if self.recording:
            self.decisions.append(make())
            return self.decisions[-1]
        value = self.decisions[self.position]
        self.position += 1
        return value


def positive(tape, a):
    """a itself if comfortably positive, else a² + 0.5 (>= 0.5): a base for log, sqrt, powers."""
    return a if tape.decide(lambda: a.data > 0.5) else a * a + 0.5


def away_from_zero(tape, a):
    """a itself if |a| >= 0.5, else a² + 0.5: a safe divisor."""
    return a if tape.decide(lambda: abs(a.data) >= 0.5) else a * a + 0.5


def off_kink(tape, a, kink=0.0):
    """a, or a + 0.5 if a is within 0.01 of the kink (so ± h never crosses it)."""
    return a if tape.decide(lambda: abs(a.data - kink) >= 0.01) else a + 0.5


def bounded(tape, a):
    """a, or a rescaled by a recorded constant to |value| = 4 when it grew larger."""
    scale = tape.decide(lambda: 4.0 / abs(a.data) if abs(a.data) > 4.0 else None)
    return a if scale is None else a * scale


GUARDS = {
    "any": lambda t, a: a,
    "positive": positive,
    "nonzero": away_from_zero,
    "off0": lambda t, a: off_kink(t, a, 0.0),
    "off1": lambda t, a: off_kink(t, a, 1.0),
    "off-1": lambda t, a: off_kink(t, a, -1.0),
}

instruction = st.tuples(
    st.sampled_from(range(len(CASES))),
    # which earlier nodes to use, counted back from the newest: small numbers make deep chains,
    # repeats make shared sub-expressions and ops applied to the same node twice
    st.lists(st.integers(0, 6), min_size=5, max_size=5),
    st.floats(0.5, 3.0),  # a constant argument's magnitude
    st.booleans(),  # a constant argument's sign
)

programs = st.tuples(
    st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=4),  # the inputs
    st.lists(instruction, min_size=1, max_size=25),
    st.integers(1, 3),  # the output is the batch_mean of the last this-many nodes
)


def run(program, xs, tape):
    """Build the program's graph on inputs `xs` (floats or Values); return (output, inputs, nodes)."""
    _, instructions, tail = program
    inputs = [x if isinstance(x, Value) else Value(x) for x in xs]
    nodes = list(inputs)
    for case_index, picks, k, flag in instructions:
        case = CASES[case_index]
        args, pick = [], iter(picks)
        for domain in case.domains:
            if domain == "const":
                args.append(k if flag else -k)
            elif domain == "const+":
                args.append(k)
            else:
                args.append(GUARDS[domain](tape, nodes[-1 - (next(pick) % len(nodes))]))
        nodes.append(bounded(tape, case.apply(*args)))
    out = batch_mean(nodes[-tail:]) if len(nodes) > 1 else nodes[-1] * 1.0
    return out, inputs, nodes


def check_program(program):
    xs = program[0]
    tape = Tape()
    out, inputs, nodes = run(program, xs, tape)
    out.backward()

    def f(values):
        return run(program, values, Tape(tape.decisions))[0].data

    for i, x in enumerate(inputs):
        assert_close(x.grad, central_difference(f, xs, i),
                     f"input {i} of {[CASES[o].name for o, *_ in program[1]]}")


@GRAPH_FUZZ
@given(programs)
def test_random_graphs_match_finite_differences(program):
    check_program(program)


@GRAPH_FUZZ
@given(st.sampled_from(range(len(CASES))), st.lists(st.floats(-2.0, 2.0), min_size=5, max_size=5),
       st.floats(0.5, 3.0), st.booleans())
def test_every_op_alone_matches_finite_differences(case_index, xs, k, flag):
    """Each op on its own, every argument a distinct input (so nothing else can hide an error)."""
    program = (xs, [(case_index, [4, 3, 2, 1, 0], k, flag)], 1)
    check_program(program)


def test_every_op_is_exercised():
    """The table really covers every operation of the engine and every loss."""
    for needed in ["add", "sub", "mul", "div", "radd", "rsub", "rmul", "rdiv", "pow value",
                   "pow const", "rpow", "exp", "log", "tanh", "sigmoid", "relu", "softplus", "abs",
                   "sqrt", "neg", "weighted_sum", "logsumexp", "batch_mean", "batch_sum", "mse",
                   "bce y=0", "hinge y=1", "softmax ce y=0", "l2"]:
        assert needed in NAMES
    methods = {"exp", "log", "tanh", "sigmoid", "relu", "softplus", "abs", "sqrt"}
    assert methods <= {name for name in dir(Value) if not name.startswith("_")}


def reference_backward(root, seed=1.0):
    """Backpropagation as written before the engine was made lean (Kahn's order with the leaves
    interleaved, then the chain rule): the order compiled code and the explorer replay follow."""
    consumers, stack = {root: 0}, [root]
    while stack:
        for parent in stack.pop()._parents:
            consumers[parent] = consumers.get(parent, 0) + 1
            if consumers[parent] == 1:
                stack.append(parent)
    order, ready = [], [root]
    while ready:
        order.append(node := ready.pop())
        for parent in node._parents:
            consumers[parent] -= 1
            if not consumers[parent]:
                ready.append(parent)
    for node in order:
        if node._parents:
            node.grad = 0.0
    root.grad = seed
    for node in order:
        for parent, local in zip(node._parents, node._local_grads, strict=True):
            parent.grad += local * node.grad


def every_grad(root):
    """The bits of every gradient in root's graph, in topological order."""
    return [bits(v.grad) for v in topological_order(root)]


@GRAPH_FUZZ
@given(programs, st.floats(-3.0, 3.0))
def test_backward_gives_bit_for_bit_the_reference_pass_on_random_graphs(program, seed):
    out, inputs, _ = run(program, program[0], Tape())
    reference_backward(out, seed)
    expected = every_grad(out)
    for v in topological_order(out):
        v.grad = 0.0
    out.backward(seed)
    assert every_grad(out) == expected
    out.backward(seed)  # and again: intermediate grads recomputed, leaves accumulate
    assert [g for v, g in zip(topological_order(out), every_grad(out), strict=True) if v._parents] == [
        g for v, g in zip(topological_order(out), expected, strict=True) if v._parents]


def test_the_checker_catches_a_wrong_derivative(monkeypatch):
    """A tanh whose local derivative is off by a factor 1.001 must be caught by check_program."""
    real = Value.tanh

    def slightly_wrong(self):
        out = real(self)
        out._local_grads = (out._local_grads[0] * 1.001,)
        return out

    program = ([0.3, -0.4], [(NAMES.index("tanh"), [0] * 5, 1.0, True)], 1)
    check_program(program)  # the real one passes
    monkeypatch.setattr(Value, "tanh", slightly_wrong)
    with pytest.raises(AssertionError, match="finite difference"):
        check_program(program)


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
        b = getattr(a, UNARY[fn])() if is_value else BY_NAME[UNARY[fn]].reference(a)
        values.append(b.tanh() if is_value else math.tanh(b))
    return values[-1]


def grads_of(f, xs):
    """Value and autograd gradient of f at xs."""
    leaves = [Value(x) for x in xs]
    out = f(leaves)
    out.backward()
    return out.data, [leaf.grad for leaf in leaves]


@settings(max_examples=60, deadline=None)
@given(program=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(0, len(BINARY) - 1),
                                  st.integers(0, len(UNARY) - 1)), min_size=1, max_size=12),
       xs=st.lists(st.floats(0.5, 1.5), min_size=1, max_size=4))
def test_random_expressions_match_central_differences(program, xs):
    def f(v):
        return evaluate(program, v)

    _, grads = grads_of(f, xs)
    # values are O(1) and smooth: with h = 1e-6 the truncation error is O(h²) = 1e-12 times
    # the third derivative and rounding is O(1e-16 / 1e-6) = 1e-10, far inside 1e-6.
    assert grads == pytest.approx(numeric_gradient(f, xs), rel=1e-5, abs=1e-7)


@settings(max_examples=max(10, EXAMPLES // 5), deadline=None)
@given(st.lists(st.sampled_from(["tanh", "sigmoid", "softplus", "affine", "square", "exp"]),
                min_size=50, max_size=400),
       st.floats(-1.5, 1.5))
def test_deep_chains_match_finite_differences(ops, x0):
    """Hundreds of unary ops in a row: the gradient is a long product and must still be right."""
    def build(x):
        v = Value(x)
        node = v
        for op in ops:
            if op == "affine":
                node = 0.9 * node + 0.1
            elif op == "square":
                node = node * node * 0.5
            elif op == "exp":
                node = (node * 0.5).exp() - 1.0
            else:
                node = getattr(node, op)()
        return v, node

    v, out = build(x0)
    out.backward()
    fd = central_difference(lambda xs: build(xs[0])[1].data, [x0], 0)
    assert_close(v.grad, fd, f"chain of {len(ops)}")


# ---- closed forms and the rules of backward ---------------------------------------------------------

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


@pytest.mark.slow
def test_million_node_chain_backpropagates_under_default_recursion_limit():
    assert sys.getrecursionlimit() <= 10_000
    x = Value(1.0)
    y = x
    with gc_paused():
        for _ in range(1_000_000):
            y = y + x  # a chain of 1,000,000 add nodes, each also reading x: y = 1,000,001 x
    y.backward()
    assert x.grad == 1_000_001.0 and y.data == 1_000_001.0
    assert len(topological_order(y)) == 1_000_001


@pytest.mark.slow
def test_very_deep_graph_needs_no_recursion():
    """200,000 nodes deep: an iterative backward gives d/dx of x + 1 + 1 + ... = 1 exactly."""
    x = Value(0.5)
    node = x
    for _ in range(100_000):
        node = (node + 1.0) * 1.0
    node.backward()
    assert x.grad == 1.0 and node.data == 100_000.5


# ---- Ctrl-C during backward -------------------------------------------------------------------------

def small_batch_graph():
    """A batch loss over a tiny MLP, with shared nodes that have several consumers each."""
    model = MLP(2, [3, 1], activation="tanh", seed=4)
    loss = batch_mean([(model(x) - y) ** 2 for x, y in [([0.5, -1.0], 1.0), ([2.0, 0.3], -1.0)]])
    w = Value(0.7, "w")
    return loss * w + (loss * loss).tanh() / (w + 2.0)


class CtrlCOnce(float):
    """A local derivative that raises KeyboardInterrupt the first time the chain rule uses it
    (a Ctrl-C in the middle of the pass), and is its plain float value after that."""

    fired = False

    def __mul__(self, other):
        if not self.fired:
            self.fired = True
            raise KeyboardInterrupt("injected in the chain rule")
        return float(self) * other


def backward_with_two_interrupts(at_node, at_line=None):
    """A fresh graph whose backward gets a Ctrl-C at the chain rule of its `at_node`-th inner
    node and a second one at line event `at_line` (wherever that falls: before the first,
    or while the first is being handled). Returns the graph and the number of line events."""
    root = small_batch_graph()
    inner = [v for v in topological_order(root) if v._parents]
    node = inner[at_node % len(inner)]
    poison = CtrlCOnce(node._local_grads[0])
    node._local_grads = (poison, *node._local_grads[1:])
    tracer = Injector(at_line)
    sys.settrace(tracer)
    try:
        root.backward()
    except KeyboardInterrupt:
        pass
    finally:
        sys.settrace(None)
        gc.enable()  # an interrupt in gc_paused's own cleanup may leave it off (not ours)
    poison.fired = True  # if the trace interrupted first, the poison must not fire later
    return root, tracer.count


@pytest.mark.slow
def test_an_interrupted_backward_never_makes_a_later_one_wrong():
    """Ctrl-C in the chain rule of one of several nodes, then a second Ctrl-C at every line
    event before or after it (in whatever handles the first, as two Ctrl-C would): the next
    backward gives exactly the textbook gradients, of every node."""
    reference = small_batch_graph()
    reference_backward(reference)
    expected = every_grad(reference)
    runs = 0
    for at_node in range(0, 40, 6):
        _, total = backward_with_two_interrupts(at_node)
        for at_line in range(1, total + 2):
            root, _ = backward_with_two_interrupts(at_node, at_line)
            for v in topological_order(root):
                if not v._parents:
                    v.grad = 0.0  # leaves accumulate by design: start them from zero (zero_grad)
            root.backward()
            assert every_grad(root) == expected, (at_node, at_line)
            runs += 1
    assert runs > 200


def test_a_backward_interrupted_at_any_line_leaves_the_next_one_exact():
    """faults.interrupt_everywhere: one Ctrl-C at every line event of backward; the next
    backward on the same graph gives exactly the textbook gradients, of every node."""
    reference = small_batch_graph()
    reference_backward(reference)
    expected = every_grad(reference)

    def check(root, interrupted):
        gc.enable()  # an interrupt in gc_paused's own cleanup may leave it off (not ours)
        assert interrupted
        for v in topological_order(root):
            if not v._parents:
                v.grad = 0.0  # leaves accumulate by design: start them from zero (zero_grad)
        root.backward()
        assert every_grad(root) == expected

    assert interrupt_everywhere(small_batch_graph, lambda root: root.backward(), check) > 100


def test_interrupted_backward_in_a_local_derivative_leaves_no_trace():
    class Interrupt:
        """A local derivative whose product raises, as a Ctrl-C in the middle would."""

        def __mul__(self, other):
            raise KeyboardInterrupt

    x = Value(2.0)
    shared = x * x + x
    broken = Value(1.0, parents=(shared, shared), local_grads=(Interrupt(), 1.0), op=Op.MUL)
    with pytest.raises(KeyboardInterrupt):
        broken.backward()
    x.grad = 0.0
    (shared * 3.0).backward()  # the shared nodes must be counted afresh
    assert x.grad == 3.0 * (2 * 2.0 + 1)


def test_gc_paused_turns_the_collector_back_on_even_after_an_error():
    with pytest.raises(RuntimeError):
        with gc_paused():
            assert not gc.isenabled()
            with gc_paused():  # nested: still off after the inner block
                pass
            assert not gc.isenabled()
            raise RuntimeError("inside")
    assert gc.isenabled()


# ---- NaN in, NaN out -----------------------------------------------------------------------------------

NAN_FREE = {"pow 0"}  # nan ** 0 is 1.0 in Python too
KINKS = ["relu", "abs", "abs method", "hinge y=1", "hinge y=-1"]


@pytest.mark.parametrize("name", [c.name for c in CASES if c.arity == 1 and c.name not in NAN_FREE])
def test_nan_propagates_through_every_one_argument_op(name):
    x = Value(math.nan)
    out = BY_NAME[name].apply(x)
    assert math.isnan(out.data)
    out.backward()
    if name in KINKS:  # a kink's derivative at NaN is NaN, never a silent 0
        assert math.isnan(x.grad)


# ---- kinks, powers at 0, saturation --------------------------------------------------------------------

@pytest.mark.parametrize("x", [0.0, -0.0])
def test_relu_and_abs_at_zero_have_gradient_zero(x):
    v = Value(x)
    v.relu().backward()
    assert v.grad == 0.0
    w = Value(x)
    w.abs().backward()
    assert w.grad == 0.0


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


def test_powers_overflow_to_infinity_like_multiplication():
    x = Value(1e200)
    assert (x ** 2).data == (x * x).data == math.inf
    assert (Value(-1e200) ** 3).data == -math.inf


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


def test_logsumexp_of_equal_huge_values():
    z = [Value(1000.0)] * 3  # one node used three times: grads add up to 3 · 1/3
    out = logsumexp(z)
    out.backward()
    assert abs(out.data - (1000.0 + math.log(3.0))) <= 2.0**-43
    assert math.isclose(z[0].grad, 1.0, rel_tol=1e-15)


def test_fused_nodes_match_finite_differences():
    def dot(v):
        return weighted_sum(v[0:3], v[3:6], v[6]) if isinstance(v[0], Value) else (
            v[6] + sum(a * b for a, b in zip(v[0:3], v[3:6], strict=True)))

    def lse(v):
        if isinstance(v[0], Value):
            return logsumexp(v)
        return math.log(sum(math.exp(t) for t in v))

    for f, xs in [(dot, [0.3, -1.2, 2.0, 0.5, 0.25, -0.75, 0.1]), (lse, [0.3, -1.2, 2.0])]:
        _, grads = grads_of(f, xs)
        assert grads == pytest.approx(numeric_gradient(f, xs), rel=1e-6, abs=1e-8)


# ---- bad input: clear errors ------------------------------------------------------------------------------

def test_value_rejects_non_numbers_naming_the_type():
    for bad, name in [("1.0", "str"), (None, "NoneType"), ([1.0], "list"), (True, "bool")]:
        with pytest.raises(TypeError, match=name):
            Value(bad)


def test_an_op_that_is_not_an_op_is_refused_at_construction():
    with pytest.raises(TypeError, match="its op an Op"):
        Value(1.0, "a", (Value(2.0),), (1.0,), "myop")


def test_gc_paused_is_safe_with_threads():
    """Blocks opening and closing in overlapping threads: the collector is off while any is
    open, and back on after the last one (it used to be left off by a check-then-disable race)."""
    import threading
    was = gc.isenabled()
    gc.enable()
    try:
        inside, release = threading.Barrier(9), threading.Event()

        def work():
            with gc_paused():
                inside.wait()
                release.wait()

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        inside.wait()
        assert not gc.isenabled()
        release.set()
        for t in threads:
            t.join()
        assert gc.isenabled()
    finally:
        gc.enable() if was else gc.disable()


@pytest.mark.parametrize("label", [5, None, 1.5, b"w", ["w"]])
def test_a_label_that_is_not_a_string_is_refused_at_construction(label):
    with pytest.raises(TypeError, match="label must be a str"):
        Value(1.0, label)


def test_operations_with_non_numbers_raise_type_error():
    with pytest.raises(TypeError, match="str"):
        Value(1.0) + "2"
    with pytest.raises(TypeError, match="NoneType"):
        Value(2.0) * None
    with pytest.raises(TypeError, match="dict"):
        {} - Value(2.0)


def test_nodes_can_be_made_with_keywords_or_positionally():
    a, b = Value(2.0, "a"), Value(3.0, "b")
    by_keyword = Value(6.0, parents=(a, b), local_grads=(3.0, 2.0), op=Op.MUL)
    by_position = Value(6.0, "", (a, b), (3.0, 2.0), Op.MUL)
    for node in (by_keyword, by_position):
        a.grad = b.grad = 0.0
        node.backward()
        assert (node.op, a.grad, b.grad) == (Op.MUL, 3.0, 2.0)


@FUZZ
@given(junk)
def test_value_constructor_with_junk(x):
    ok, v = attempt(Value, x)
    if ok:
        assert is_real(x) and type(v.data) is float and same(v.data, float(x))
    else:  # refused: not a real number, or an int too large for a float
        assert not is_real(x) or (isinstance(x, int) and abs(x) > 2**1024)


JUNK_BINARY = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "**": lambda a, b: a ** b,
}


@FUZZ
@given(st.sampled_from(sorted(JUNK_BINARY)), st.floats(), junk, st.booleans())
@example("/", 5796976996117147.0, Fraction(1, 3), True)  # once found by chance: now exact
def test_binary_ops_with_junk_on_either_side(op, a, other, value_first):
    fn = JUNK_BINARY[op]
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


UNARY_METHODS = ["exp", "log", "tanh", "sigmoid", "relu", "softplus", "abs", "sqrt", "__neg__", "__abs__"]


@FUZZ
@given(st.sampled_from(UNARY_METHODS), st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 1e308, -1e308])))
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
        assert same(out.data, bias.data + math.fsum(w.data * x.data for w, x in zip(weights, inputs, strict=True))) \
            or len(weights) > 1


@FUZZ
@given(junk)
@example([1.0, 2.0])
def test_logsumexp_with_junk(values):
    ok, out = attempt(logsumexp, values)
    if ok:
        assert isinstance(out, Value)

