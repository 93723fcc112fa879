"""Fuzzed gradients: random expression graphs over every operation, backward vs finite differences.

Hypothesis draws a small *program*: a list of instructions, each applying one operation to nodes
made earlier (so sub-expressions are shared, and the same node can feed both sides of an op).
Running the program on input Values builds a graph; `backward()` gives the gradient of its
output with respect to every input, which is compared with central finite differences

    D(h) = (f(x + h e_i) - f(x - h e_i)) / 2h.

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

import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from micrograd_batch import (
    MLP,
    Value,
    batch_mean,
    batch_sum,
    bce_with_logits,
    hinge,
    l2_penalty,
    logsumexp,
    mean_of,
    mse,
    per_example_grads,
    softmax_cross_entropy,
    weighted_sum,
)

H = 1e-6
RTOL = 1e-5
EXAMPLES = int(os.environ.get("MGB_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def central_difference(f, xs, i, h=H):
    """(f(x + h e_i) - f(x - h e_i)) / 2h: the derivative of f along input i."""
    up, down = list(xs), list(xs)
    up[i] += h
    down[i] -= h
    return (f(up) - f(down)) / (2.0 * h)


def assert_close(ad, fd, what):
    assert math.isfinite(ad), f"{what}: backward gave {ad}"
    assert abs(ad - fd) <= RTOL * max(1.0, abs(fd)), f"{what}: backward {ad!r} vs finite difference {fd!r}"


# ---- the program interpreter ---------------------------------------------------------------------

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


# Every op: (name, number of node arguments, function(tape, args, const, flag) -> Value).
# `const` is a drawn number in [0.5, 3) with a drawn sign, `flag` a drawn boolean (which side a
# constant goes, or a class label).
def _op_table():
    c = lambda k, flag: k if flag else -k  # noqa: E731  a constant of either sign
    return [
        ("add", 2, lambda t, a, k, f: a[0] + a[1]),
        ("sub", 2, lambda t, a, k, f: a[0] - a[1]),
        ("mul", 2, lambda t, a, k, f: a[0] * a[1]),
        ("div", 2, lambda t, a, k, f: a[0] / away_from_zero(t, a[1])),
        ("add const", 1, lambda t, a, k, f: a[0] + c(k, f) if f else c(k, f) + a[0]),
        ("sub const", 1, lambda t, a, k, f: a[0] - k if f else k - a[0]),
        ("mul const", 1, lambda t, a, k, f: a[0] * c(k, f) if f else c(k, f) * a[0]),
        ("div by const", 1, lambda t, a, k, f: a[0] / c(k, f)),
        ("const div", 1, lambda t, a, k, f: c(k, f) / away_from_zero(t, a[0])),
        ("pow int", 1, lambda t, a, k, f: a[0] ** (2 if f else 3)),
        ("pow int neg", 1, lambda t, a, k, f: away_from_zero(t, a[0]) ** (-1 if f else -2)),
        ("pow frac", 1, lambda t, a, k, f: positive(t, a[0]) ** (0.5 if f else -1.5)),
        ("pow zero/one", 1, lambda t, a, k, f: a[0] ** (0 if f else 1)),
        ("pow value", 2, lambda t, a, k, f: positive(t, a[0]) ** a[1]),
        ("const pow value", 1, lambda t, a, k, f: k ** a[0]),
        ("neg", 1, lambda t, a, k, f: -a[0]),
        ("exp", 1, lambda t, a, k, f: a[0].exp()),
        ("log", 1, lambda t, a, k, f: positive(t, a[0]).log()),
        ("tanh", 1, lambda t, a, k, f: a[0].tanh()),
        ("sigmoid", 1, lambda t, a, k, f: a[0].sigmoid()),
        ("relu", 1, lambda t, a, k, f: off_kink(t, a[0]).relu()),
        ("softplus", 1, lambda t, a, k, f: a[0].softplus()),
        ("abs", 1, lambda t, a, k, f: abs(off_kink(t, a[0])) if f else off_kink(t, a[0]).abs()),
        ("sqrt", 1, lambda t, a, k, f: positive(t, a[0]).sqrt()),
        ("weighted_sum", 5, lambda t, a, k, f: weighted_sum(a[0:2], a[2:4], a[4])),
        ("logsumexp", 3, lambda t, a, k, f: logsumexp(a)),
        ("batch_mean", 3, lambda t, a, k, f: batch_mean(a)),
        ("batch_sum", 2, lambda t, a, k, f: batch_sum(a)),
        ("mse", 2, lambda t, a, k, f: mse(a, [k, -k]) if f else mse(a[0], k)),
        ("bce", 1, lambda t, a, k, f: bce_with_logits(a[0], 1 if f else 0)),
        ("hinge", 1, lambda t, a, k, f: hinge(off_kink(t, a[0], 1.0 if f else -1.0), 1 if f else -1)),
        ("softmax ce", 3, lambda t, a, k, f: softmax_cross_entropy(a, 0 if f else 2)),
        ("l2", 2, lambda t, a, k, f: l2_penalty(a, k)),
    ]


OPS = _op_table()

instruction = st.tuples(
    st.sampled_from(range(len(OPS))),
    # which earlier nodes to use, counted back from the newest: small numbers make deep chains,
    # repeats make shared sub-expressions and ops applied to the same node twice
    st.lists(st.integers(0, 6), min_size=5, max_size=5),
    st.floats(0.5, 3.0),
    st.booleans(),
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
    for op_index, picks, k, flag in instructions:
        _, arity, fn = OPS[op_index]
        args = [nodes[-1 - (j % len(nodes))] for j in picks[:arity]]
        nodes.append(bounded(tape, fn(tape, args, k, flag)))
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
        assert_close(x.grad, central_difference(f, xs, i), f"input {i} of {[OPS[o][0] for o, *_ in program[1]]}")


@FUZZ
@given(programs)
def test_random_graphs_match_finite_differences(program):
    check_program(program)


@FUZZ
@given(st.sampled_from(range(len(OPS))), st.lists(st.floats(-2.0, 2.0), min_size=5, max_size=5),
       st.floats(0.5, 3.0), st.booleans())
def test_every_op_alone_matches_finite_differences(op_index, xs, k, flag):
    """Each op on its own, every argument a distinct input (so nothing else can hide an error)."""
    program = (xs, [(op_index, [4, 3, 2, 1, 0], k, flag)], 1)
    check_program(program)


def test_every_op_is_exercised():
    """The table really covers every operation of the engine and every loss."""
    names = {name for name, *_ in OPS}
    for needed in ["add", "sub", "mul", "div", "pow value", "const pow value", "exp", "log",
                   "tanh", "sigmoid", "relu", "softplus", "abs", "sqrt", "neg", "weighted_sum",
                   "logsumexp", "batch_mean", "batch_sum", "mse", "bce", "hinge", "softmax ce", "l2"]:
        assert needed in names


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


def test_very_deep_graph_needs_no_recursion():
    """200,000 nodes deep: an iterative backward gives d/dx of x + 1 + 1 + ... = 1 exactly."""
    x = Value(0.5)
    node = x
    for _ in range(100_000):
        node = (node + 1.0) * 1.0
    node.backward()
    assert x.grad == 1.0 and node.data == 100_000.5


# ---- models and batches ---------------------------------------------------------------------------

@settings(max_examples=max(10, EXAMPLES // 3), deadline=None)
@given(st.integers(1, 3), st.lists(st.integers(1, 3), min_size=1, max_size=3),
       st.sampled_from(["tanh", "sigmoid", "linear", "relu"]), st.sampled_from(["tanh", "linear"]),
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
        for p, v in zip(params, values):
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
    for got, want in zip(mean_of(each), [p.grad for p in params]):
        assert abs(got - want) <= 1e-12 * max(1.0, abs(want))
    # one example's gradient, against finite differences of that example's loss alone
    base = [p.data for p in params]

    def loss0(values):
        for p, v in zip(params, values):
            p.data = v
        return bce_with_logits(model(xs[0]), 0).data

    for i in range(len(params)):
        fd = central_difference(loss0, base, i)
        assert_close(each[0][i], fd, f"example 0, parameter {i}")
    loss0(base)


# ---- the checker itself can fail -----------------------------------------------------------------

def test_the_checker_catches_a_wrong_derivative(monkeypatch):
    """A tanh whose local derivative is off by a factor 1.001 must be caught by check_program."""
    real = Value.tanh

    def slightly_wrong(self):
        out = real(self)
        out._local_grads = (out._local_grads[0] * 1.001,)
        return out

    program = ([0.3, -0.4], [(next(i for i, o in enumerate(OPS) if o[0] == "tanh"), [0] * 5, 1.0, True)], 1)
    check_program(program)  # the real one passes
    monkeypatch.setattr(Value, "tanh", slightly_wrong)
    with pytest.raises(AssertionError, match="finite difference"):
        check_program(program)
