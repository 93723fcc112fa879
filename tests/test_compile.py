"""compile_loss: the generated straight-line code gives the graph path's numbers, bit for bit,
and refuses (falls back to the graph path, or raises when strict) whatever it cannot trace once."""

import itertools
import math
import operator
import random
import warnings
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from micrograd_batch import (
    MLP, SGD, Adam, CompiledLoss, Neuron, NotCompilable, Value, bce_with_logits,
    compile_loss, fit, hinge, l2_penalty, logsumexp, make_blobs, make_moons, mse,
    softmax_cross_entropy, train_step, weighted_sum,
)
from micrograd_batch import compile as compile_module
from micrograd_batch.compile import known_stable
from micrograd_batch.engine import Op
from micrograd_batch.nn import ACTIVATIONS, plain_scores

from gradcheck import numeric_gradient
from helpers import graph_path


def same(a, b):
    """Equal floats, NaN matching NaN (what 'bit for bit' means for our purposes)."""
    return len(a) == len(b) and all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b))


def graph_outputs(model, examples):
    """Each example's model output as numbers, by the model itself, flattened to one list."""
    return [v for x, _ in examples for v in numbers(plain_scores(model(x)))]


def numbers(scores):
    return scores if isinstance(scores, list) else [scores]


def compiled_outputs(compiled, examples):
    """`compiled.outputs(examples)`, flattened to one list."""
    return [v for scores in compiled.outputs(examples) for v in numbers(scores)]


def compiled_path(compiled, model, examples, start=None):
    params = model.parameters()
    for p, g in zip(params, start or [0.0] * len(params)):
        p.grad = g
    loss = compiled.grad(examples)
    return loss, [p.grad for p in params]


def kitchen_sink(out, y):
    """A custom loss that uses every operation the engine has (and a target-dependent constant)."""
    o = out[0] if isinstance(out, list) else out
    soft = (o * o + 1.0)
    terms = [
        (o - y).abs(), soft.log(), (o * 0.25).exp(), soft ** 0.5, soft ** (1 / 3), soft.sqrt() / 2.0,
        o.softplus(), (-o).tanh(), o.sigmoid(), (o - 0.1).relu(), 2.0 ** (o * 0.1), soft ** (o * 0.1),
        logsumexp([o, o * 2.0, o * 0.0 + 0.5]), bce_with_logits(o, 1 if y > 0 else 0),
        weighted_sum([o, o], [o * 0.5, soft], o), 3.0 / soft, 1.0 - o, -o,
    ]
    total = terms[0]
    for t in terms[1:]:
        total = total + t * 0.1
    return total


LOSSES = {
    "hinge": (hinge, 1, lambda rng, nout: rng.choice([-1, 1])),
    "mse": (mse, 2, lambda rng, nout: [rng.choice([-1.0, 0.5, 2.0]) for _ in range(nout)]),
    "bce": (bce_with_logits, 1, lambda rng, nout: rng.choice([0, 1])),
    "softmax": (softmax_cross_entropy, 3, lambda rng, nout: rng.randrange(nout)),
    "kitchen_sink": (kitchen_sink, 1, lambda rng, nout: rng.choice([-1.0, 1.0])),
}


@settings(max_examples=100)
@given(
    loss_name=st.sampled_from(sorted(LOSSES)),
    nin=st.integers(1, 3),
    hidden=st.lists(st.integers(1, 4), max_size=2),
    activation=st.sampled_from(sorted(ACTIVATIONS)),
    fused=st.booleans(),
    m=st.integers(1, 12),
    seed=st.integers(0, 10**6),
)
@example(loss_name="kitchen_sink", nin=2, hidden=[3], activation="relu", fused=True, m=5, seed=1)
def test_compiled_loss_and_gradients_equal_the_graphs_bit_for_bit(loss_name, nin, hidden, activation, fused, m,
                                                                  seed):
    loss_fn, nout, target = LOSSES[loss_name]
    rng = random.Random(seed)
    model = MLP(nin, [*hidden, nout], activation=activation, seed=seed, fused=fused)
    examples = [([rng.uniform(-2, 2) for _ in range(nin)], target(rng, nout)) for _ in range(m)]
    start = [rng.uniform(-1, 1) for _ in model.parameters()]  # .grad accumulates onto what is there
    compiled = compile_loss(model, loss_fn, strict=True)
    got = compiled_path(compiled, model, examples, start)
    want = graph_path(model, loss_fn, examples, start)
    assert got[0] == want[0] and same(got[1], want[1])
    grads = [p.grad for p in model.parameters()]
    assert same(compiled_outputs(compiled, examples), graph_outputs(model, examples))  # forward only
    assert [p.grad for p in model.parameters()] == grads  # ... and it changed no gradient
    assert compiled.fallback_reason is None


def test_the_compiled_gradient_is_the_central_difference_gradient():
    model = MLP(2, [4, 1], activation="tanh", seed=3)
    examples = make_moons(10, seed=3)
    compiled = compile_loss(model, kitchen_sink, strict=True)
    params = model.parameters()
    _, grads = compiled_path(compiled, model, examples)

    def loss_at(values):
        for p, v in zip(params, values):
            p.data = v
        return graph_path(model, kitchen_sink, examples)[0]

    values = [p.data for p in params]
    numeric = numeric_gradient(loss_at, values)
    for p, v in zip(params, values):
        p.data = v
    assert all(abs(g - n) <= 1e-6 * max(1.0, abs(n)) for g, n in zip(grads, numeric))


def test_fits_step_with_l2_equals_the_graph_step_bit_for_bit():
    data = make_moons(64, noise=0.1, seed=4)
    a, b = MLP(2, [16, 16, 1], seed=4), MLP(2, [16, 16, 1], seed=4)
    opt_a, opt_b = SGD(a.parameters(), lr=0.05, momentum=0.9), SGD(b.parameters(), lr=0.05, momentum=0.9)
    compiled = compile_loss(a, hinge, strict=True)
    for step in range(5):
        batch = data[step * 12:(step + 1) * 12]
        got = train_step(a, batch, hinge, opt_a, l2=1e-4, compiled=compiled)
        want = train_step(b, batch, hinge, opt_b, l2=1e-4)
        assert got == want
        assert [p.data for p in a.parameters()] == [p.data for p in b.parameters()]
        assert [p.grad for p in a.parameters()] == [p.grad for p in b.parameters()]


@pytest.mark.parametrize("loss_fn,data,nout,make_optimizer", [
    (hinge, make_moons(60, noise=0.1, seed=5), 1, lambda ps: SGD(ps, lr=0.1, momentum=0.9)),
    (bce_with_logits, make_moons(40, noise=0.1, seed=6, signed=False), 1, lambda ps: Adam(ps, lr=0.02)),
    (softmax_cross_entropy, make_blobs(45, seed=7), 3, lambda ps: Adam(ps, lr=0.02)),
])
def test_fit_with_and_without_compilation_gives_the_same_history_and_model(loss_fn, data, nout, make_optimizer):
    runs = []
    for compiled in (True, False):
        model = MLP(2, [8, 8, nout], seed=8)
        results = []

        def recording(self, *args, **kwargs):
            results.append(original(self, *args, **kwargs))
            return results[-1]

        def recording_outputs(self, examples):
            outputs.append(original_outputs(self, examples))
            return outputs[-1]

        original, original_outputs, outputs = CompiledLoss.loss_and_grads, CompiledLoss.outputs, []
        with mock.patch.object(CompiledLoss, "loss_and_grads", recording), \
                mock.patch.object(CompiledLoss, "outputs", recording_outputs):
            history = fit(model, data, loss_fn, make_optimizer(model.parameters()), epochs=3, batch_size=16,
                          l2=1e-4, verbose=False, compiled=compiled)
        assert len(results) == (history.steps if compiled else 0)
        assert all(r is not None for r in results)  # every step ran the compiled code
        assert len(outputs) == (3 if compiled else 0)
        assert all(o is not None for o in outputs)  # every accuracy pass ran the compiled forward code
        runs.append((history.loss, history.accuracy, history.steps, [p.data for p in model.parameters()]))
    assert runs[0] == runs[1]  # exactly: every number equal


def test_fits_accuracy_pass_builds_no_graph_when_compiled():
    data = make_moons(60, noise=0.1, seed=5)
    for compiled in (True, False):
        model = MLP(2, [8, 1], seed=8)
        calls, call = [], MLP.__call__
        with mock.patch.object(MLP, "__call__", lambda self, x: calls.append(x) or call(self, x)):
            fit(model, data, hinge, epochs=4, batch_size=20, verbose=False, compiled=compiled)
        # compiled: the model runs only to trace each target (a few times); else once per example
        # per step and once per example per epoch's accuracy pass
        assert len(calls) < 12 if compiled else len(calls) == 2 * 4 * len(data)


def test_outputs_fall_back_with_a_warning_when_the_model_changed():
    model = MLP(2, [3, 1], seed=20)
    data = make_moons(12, seed=20)
    compiled = compile_loss(model, hinge)
    compiled.grad(data)
    _change_an_activation(model)
    with pytest.warns(UserWarning, match="graph path from now on"):
        assert compiled.outputs(data) is None
    assert compiled.fallback_reason is not None and compiled.outputs(data) is None


def test_outputs_of_a_custom_loss_are_checked_and_equal_the_models():
    model = MLP(2, [3, 2], seed=21)
    data = [(x, (1 if y > 0 else 0)) for x, y in make_moons(12, seed=21)]
    compiled = compile_loss(model, lambda out, y: softmax_cross_entropy(out, y) * 0.5, strict=True)
    calls, patch = counting_rechecks()
    with patch:
        assert compiled_outputs(compiled, data) == graph_outputs(model, data)  # targets traced on first use
    assert len(calls) == 1  # a custom loss: one example re-traced per call, also here


def test_fit_compiles_library_models_and_losses_only():
    model = MLP(2, [3, 1], seed=0)
    assert known_stable(model, hinge) and known_stable(model, softmax_cross_entropy)
    assert not known_stable(model, lambda out, y: hinge(out, y))
    assert not known_stable(lambda x: x[0], hinge)


def test_source_compiles_names_every_parameter_and_marks_forward_backward_and_layers():
    model = MLP(2, [3, 1], seed=0)
    compiled = compile_loss(model, hinge, example=([0.5, -0.5], 1))
    source = compiled.source
    compile(source, "<test>", "exec")
    for p in model.parameters():
        assert p.label.replace(".", "_") in source
    for marker in ("# ---- forward: layer L1", "# ---- forward: layer L2", "# ---- forward: the loss",
                   "# ---- backward: the loss", "# ---- backward: layer L2", "# ---- backward: layer L1"):
        assert marker in source
    assert "g_L1_n1_w1 += x1 * g_L1_n1_z" in source  # a weight's share: δ times its input
    assert "g_L1_n1_z = (g_L1_n1_a if L1_n1_z > 0.0 else 0.0 * g_L1_n1_a" in source  # ReLU'(z): an expression


def test_source_before_anything_is_traced_says_how_to_get_it():
    with pytest.raises(RuntimeError, match="nothing traced yet"):
        compile_loss(MLP(2, [1], seed=0), hinge).source
    with pytest.raises(RuntimeError, match="nothing was compiled: .*reads a Value's .data"):
        compile_loss(MLP(2, [1], seed=0), branchy, example=([1.0, 2.0], 1)).source


def test_parameters_changed_between_calls_are_picked_up():
    model = MLP(2, [4, 1], seed=9)
    data = make_moons(16, seed=9)
    compiled = compile_loss(model, hinge, strict=True)
    compiled_path(compiled, model, data)
    for p in model.parameters():
        p.data = p.data * 0.5 + 0.1
    assert compiled_path(compiled, model, data) == graph_path(model, hinge, data)


def branchy(out, y):
    """A data-dependent graph: a Python `if` on a value."""
    return out * 2.0 if out.data > 0 else (out * -1.0).relu()


def test_a_loss_that_branches_on_a_value_is_detected():
    model = MLP(2, [4, 1], seed=10)
    data = make_moons(20, seed=10)
    with pytest.raises(NotCompilable, match=r"test_compile\.py:\d+ \(branchy\) reads a Value's \.data"):
        compile_loss(model, branchy, strict=True).grad(data)
    compiled = compile_loss(model, branchy)
    assert compiled_path(compiled, model, data) == graph_path(model, branchy, data)  # the graph path
    assert "reads a Value's .data" in compiled.fallback_reason


def test_tracing_restores_the_value_class_even_when_the_loss_raises():
    data_slot, power = Value.__dict__["data"], Value.__dict__["__pow__"]

    def broken(out, y):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        compile_loss(MLP(2, [1], seed=0), broken).grad([([1.0, 2.0], 1)])
    assert Value.__dict__["data"] is data_slot and Value.__dict__["__pow__"] is power


def test_a_loss_that_changes_between_traces_is_detected():
    calls = [0]

    def alternating(out, y):  # a different graph on every other call: a counter, not the data
        calls[0] += 1
        return hinge(out, y) if calls[0] % 2 else hinge(out, y) * 1.0

    model = MLP(2, [3, 1], seed=11)
    with pytest.raises(NotCompilable, match="different graphs"):
        compile_loss(model, alternating, strict=True).grad(make_moons(8, seed=11))


def test_a_loss_whose_constant_changes_between_calls_falls_back_with_a_warning():
    settings_ = {"scale": 1.0}

    def scaled(out, y):
        return hinge(out, y) * settings_["scale"]

    model = MLP(2, [3, 1], seed=12)
    data = make_moons(10, seed=12)
    compiled = compile_loss(model, scaled)
    assert compiled_path(compiled, model, data) == graph_path(model, scaled, data)
    assert compiled.fallback_reason is None
    settings_["scale"] = 3.0  # an annealed weight: the compiled constant is stale now
    with pytest.warns(UserWarning, match="graph path from now on"):
        got = compiled_path(compiled, model, data)
    assert got == graph_path(model, scaled, data)
    assert compiled.fallback_reason is not None


def test_values_outside_the_model_unknown_ops_and_the_l2_node_are_refused():
    model = MLP(2, [2, 1], seed=13)
    data = make_moons(6, seed=13)
    temperature = Value(2.0, "temperature")  # trainable, but not a parameter of the model

    def tempered(out, y):
        return hinge(out * temperature, y)

    def custom_op(out, y):
        return Value(out.data ** 3, "", (out,), (3 * out.data ** 2,), "cube")

    def with_l2(out, y):
        return hinge(out, y) + l2_penalty(model.parameters(), 1e-3)

    for loss_fn, reason in [(tempered, "neither a parameter"), (with_l2, "αΣp²")]:
        with pytest.raises(NotCompilable, match=reason):
            compile_loss(model, loss_fn, strict=True).grad(data)
        compiled = compile_loss(model, loss_fn)
        assert compiled_path(compiled, model, data) == graph_path(model, loss_fn, data)
    with pytest.raises(NotCompilable, match="reads a Value's"):  # custom ops read .data to build
        compile_loss(model, custom_op, strict=True).grad(data)


def test_many_distinct_targets_run_on_the_graph_path():
    model = MLP(1, [3, 1], seed=14)
    data = [([i / 10], i / 7) for i in range(30)]
    compiled = compile_loss(model, mse)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # expected, and the numbers are the same: no warning
        assert compiled_path(compiled, model, data) == graph_path(model, mse, data)
    assert "distinct targets" in compiled.fallback_reason


def identity_neuron():
    neuron = Neuron(1, nonlin=False)
    neuron.w[0].data, neuron.b.data = 1.0, 0.0
    return neuron


@pytest.mark.parametrize("loss_fn,bad_x,error", [
    (lambda o, y: (o + 1.0).log(), -2.0, ValueError),
    (lambda o, y: 1.0 / o, 0.0, ZeroDivisionError),
    (lambda o, y: (o + 1.0) ** 0.5, -3.0, ValueError),
    (lambda o, y: 2.0 ** o * (o + 1.0) ** o, -3.0, ValueError),
])
def test_the_compiled_code_raises_the_engines_error(loss_fn, bad_x, error):
    model = identity_neuron()
    compiled = compile_loss(model, loss_fn, strict=True)
    compiled.grad([([1.0], 0), ([2.0], 0)])  # compiled on good examples
    with pytest.raises(error):
        graph_path(model, loss_fn, [([bad_x], 0)])
    with pytest.raises(error):
        compiled.grad([([1.0], 0), ([bad_x], 0)])


@pytest.mark.parametrize("x", [math.nan, math.inf, -math.inf, 1e308])
def test_nan_and_inf_propagate_exactly_as_on_the_graph(x):
    model = MLP(2, [3, 1], seed=15)
    data = [([0.5, 0.5], 1), ([x, 0.5], -1), ([0.1, -0.2], 1)]
    compiled = compile_loss(model, kitchen_sink, strict=True)
    compiled.grad([([0.5, 0.5], 1), ([0.2, 0.1], -1)])  # both targets compiled on ordinary inputs
    got = compiled_path(compiled, model, data)
    want = graph_path(model, kitchen_sink, data)
    assert same([got[0]], [want[0]]) and same(got[1], want[1])
    assert same(compiled_outputs(compiled, data), graph_outputs(model, data))


@pytest.mark.parametrize("examples,error,match", [
    ([], ValueError, "non-empty"),
    ([([1.0, 2.0, 3.0], 1)], ValueError, "expected 2 inputs"),
    ([(["a", 2.0], 1)], TypeError, "real number"),
    ([([True, 2.0], 1)], TypeError, "real number"),
    ([([1.0, 2.0], 0)], ValueError, "labels in"),
    ([([1.0, 2.0], 1, 3)], ValueError, "unpack"),
])
def test_bad_input_gets_the_graph_paths_error(examples, error, match):
    model = MLP(2, [3, 1], seed=16)
    compiled = compile_loss(model, hinge)
    compiled.grad([([0.5, 0.5], 1)])
    with pytest.raises(error, match=match):
        compiled.grad(examples)


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="needs a model"):
        compile_loss("model", hinge)
    with pytest.raises(TypeError, match="loss_fn must be a function"):
        compile_loss(MLP(2, [1], seed=0), "hinge")


def test_a_nan_example_stops_training_at_the_same_step_with_the_same_parameters():
    # fit refuses NaN inputs up front, so drive train_step itself: the compiled step and the
    # graph step must fail at the same batch, leaving the same parameters behind
    data = make_moons(40, noise=0.1, seed=17)
    data[23] = ([math.nan, 0.0], 1)
    outcomes = []
    for use_compiled in (True, False):
        model = MLP(2, [4, 1], seed=17)
        optimizer = SGD(model.parameters(), lr=0.05)
        compiled = compile_loss(model, hinge) if use_compiled else None
        failed_at = None
        for step in range(5):
            try:
                train_step(model, data[step * 8:(step + 1) * 8], hinge, optimizer, l2=1e-3, compiled=compiled)
            except FloatingPointError:
                failed_at = step
                break
        outcomes.append((failed_at, [p.data for p in model.parameters()], [p.grad for p in model.parameters()]))
    (step, params, grads), (step_, params_, grads_) = outcomes
    assert step == step_ == 2 and params == params_
    assert same(grads, grads_)  # NaN where the graph has NaN (or untouched when the loss is NaN)


def test_a_replaced_parameter_is_noticed_by_the_per_call_check():
    model = MLP(2, [3, 1], seed=18)
    data = make_moons(10, seed=18)
    compiled = compile_loss(model, hinge)
    compiled.grad(data)
    neuron = model.layers[0].neurons[0]
    neuron.w[0] = Value(0.25, "L1.n1.w1")  # a new Value object the compiled code does not know
    with pytest.warns(UserWarning, match="different structure"):
        got = compiled_path(compiled, model, data)
    assert got == graph_path(model, hinge, data)


ENGINE_OPS = {  # every op with an inline form: its number of parents, and how the engine makes it
    Op.ADD: (2, operator.add), Op.SUB: (2, operator.sub), Op.MUL: (2, operator.mul), Op.NEG: (1, operator.neg),
    Op.DIV: (2, operator.truediv), Op.RELU: (1, Value.relu), Op.TANH: (1, Value.tanh), Op.ABS: (1, Value.abs),
    Op.WEIGHTED_SUM: (5, lambda w1, w2, x1, x2, b: weighted_sum([w1, w2], [x1, x2], b)),
}
SPECIAL = (-2.5, -0.0, 0.0, 0.1, 0.5, 1 / 3, 3.0, 1e-310, -1e308, 1e308, math.inf, -math.inf, math.nan)
UPSTREAMS = (1.0, -0.5, 0.0, math.inf, math.nan)


def inline_function(rule, arity):
    """A rule's generated code, as the compiler writes it, as a function (p0, ..., g) -> (value,
    (each parent's share of the upstream gradient g,))."""
    names = [f"p{i}" for i in range(arity)]
    statements, local_derivatives = rule("v", names)
    shares = ", ".join(compile_module._share(local, "g") for local in local_derivatives)
    source = "\n".join([f"def inline({', '.join(names)}, g):", *("    " + s for s in statements),
                        f"    return v, ({shares},)"])
    namespace = dict(compile_module._NAMESPACE)
    exec(source, namespace)
    return namespace["inline"]


def outcome(function, *args):
    """What `function` gives for `args`: its result, or the type of the arithmetic error it raises."""
    try:
        return function(*args)
    except (ArithmeticError, ValueError) as error:
        return type(error)


def disagreement(op, rule, args, g):
    """None if `rule`'s code gives exactly the engine's value and chain-rule shares (NaN matching
    NaN) or the same kind of error for parents `args` and upstream gradient g, else what differs."""
    arity, make = ENGINE_OPS[op]
    engine = outcome(lambda: make(*map(Value, args)))
    inline = outcome(inline_function(rule, arity), *args, g)
    if isinstance(engine, type) or isinstance(inline, type):
        return None if engine == inline else (args, g, engine, inline)
    want = [engine.data, *(local * g for local in engine._local_grads)]
    got = [inline[0], *inline[1]]
    return None if same(got, want) else (args, g, want, got)


def special_cases(arity):
    """Every pair of special numbers for one or two parents; 500 fixed random picks for more."""
    if arity <= 2:
        return list(itertools.product(SPECIAL, repeat=arity))
    rng = random.Random(arity)
    return [tuple(rng.choice(SPECIAL) for _ in range(arity)) for _ in range(500)]


def disagreements(op, rule):
    """Where `rule` differs from the engine on special numbers and upstream gradients."""
    cases = special_cases(ENGINE_OPS[op][0])
    return [d for args in cases for g in UPSTREAMS if (d := disagreement(op, rule, args, g)) is not None]


@pytest.mark.parametrize("op", list(ENGINE_OPS))
def test_each_inline_form_gives_the_engines_value_shares_and_errors_on_special_numbers(op):
    assert set(compile_module._RULES) == set(ENGINE_OPS)  # every inline form is checked here
    assert disagreements(op, compile_module._RULES[op]) == []


@settings(max_examples=300)
@given(op=st.sampled_from(list(ENGINE_OPS)), args=st.lists(st.floats(), min_size=5, max_size=5), g=st.floats())
def test_each_inline_form_gives_the_engines_numbers_on_any_floats(op, args, g):
    assert disagreement(op, compile_module._RULES[op], tuple(args[:ENGINE_OPS[op][0]]), g) is None


def identity_as_relu(v, a):  # right for positive numbers only
    return [f"{v} = {a[0]}"], ["1.0"]


def relu_zero_for_nan(v, a):  # ReLU(NaN) = 0 with derivative 0: not what the engine does
    return [f"{v} = {a[0]} if {a[0]} > 0.0 else 0.0"], [f"(1.0 if {a[0]} > 0.0 else 0.0)"]


def abs_zero_for_nan(v, a):  # sign(NaN) = 0: not what the engine does
    x = a[0]
    return [f"{v} = abs({x})"], [f"(1.0 if {x} > 0.0 else (-1.0 if {x} < 0.0 else 0.0))"]


def divide_by_inverse(v, a):  # a * (1/b): an ulp off a / b for some numbers
    return [f"inv_{v} = 1.0 / {a[1]}", f"{v} = {a[0]} * inv_{v}"], [f"inv_{v}", f"-{v} * inv_{v}"]


def tanh_unbracketed(v, a):  # its share would be written 1.0 - t * t * g
    return [f"{v} = _tanh({a[0]})"], [f"1.0 - {v} * {v}"]


@pytest.mark.parametrize("op,wrong_rule", [
    (Op.RELU, identity_as_relu), (Op.RELU, relu_zero_for_nan), (Op.ABS, abs_zero_for_nan),
    (Op.DIV, divide_by_inverse), (Op.TANH, tanh_unbracketed),
    (Op.WEIGHTED_SUM, lambda v, a: ([f"{v} = {a[0]} * {a[2]} + {a[1]} * {a[3]} + {a[4]}"],
                                    [a[2], a[3], a[0], a[1], "1.0"])),  # b added last
])
def test_the_check_of_the_inline_forms_catches_a_wrong_one(op, wrong_rule):
    assert disagreements(op, wrong_rule) != []


def counting_rechecks():
    """Patch CompiledLoss's per-call re-trace to count its calls (it still runs)."""
    calls = []
    original = CompiledLoss._check_structure

    def counted(self, example):
        calls.append(example)
        return original(self, example)

    return calls, mock.patch.object(CompiledLoss, "_check_structure", counted)


def hinge_by_repr(out, y):
    """A data-dependent graph that tracing cannot see: the branch reads the value through repr()."""
    return hinge(out, y) * 1.0 if "data=-" in repr(out) else hinge(out, y)


def test_a_library_loss_skips_the_per_call_retrace_and_a_custom_loss_still_runs_and_needs_it():
    model = MLP(2, [3, 1], seed=19)
    data = make_moons(40, seed=19)
    calls, patch = counting_rechecks()
    with patch:
        library = compile_loss(model, hinge, strict=True)
        for batch in (data[:8], data[8:24], data[24:]):
            assert compiled_path(library, model, batch) == graph_path(model, hinge, batch)
        assert calls == []  # known_stable and unchanged: nothing a re-trace could find
        linear = MLP(2, [1], seed=19)  # its output changes sign with x (the bias starts at 0)
        positive = [(x if linear(x).data > 0 else [-v for v in x], y) for x, y in data[:8]]
        negative = [([-v for v in x], y) for x, y in positive]
        model = linear
        custom = compile_loss(model, hinge_by_repr)
        assert compiled_path(custom, model, positive) == graph_path(model, hinge_by_repr, positive)
        assert len(calls) == 1 and custom.fallback_reason is None  # one re-trace per call
        with pytest.warns(UserWarning, match="different structure"):  # the other branch: caught
            got = compiled_path(custom, model, negative)
    assert got == graph_path(model, hinge_by_repr, negative)
    assert len(calls) == 2 and custom.fallback_reason is not None


def _replace_a_weight(model):
    model.layers[0].neurons[0].w[0] = Value(0.25, "L1.n1.w1")


def _change_an_activation(model):
    neuron = model.layers[0].neurons[1]
    neuron.activation, neuron._act = "tanh", Value.tanh


@pytest.mark.parametrize("change", [
    _replace_a_weight,
    _change_an_activation,
    lambda model: model.layers[0].neurons[2].w.reverse(),  # same Values, another order
    lambda model: setattr(model.layers[1].neurons[0], "fused", False),
    lambda model: model.layers[0].neurons.pop(),  # one hidden neuron fewer
    lambda model: setattr(model.layers[0].neurons[0], "forward", lambda inputs: inputs[0]),
    "swap the loss",  # the compiled loss's own loss_fn replaced
])
def test_any_change_to_a_library_model_turns_the_per_call_retrace_back_on(change):
    model = MLP(2, [3, 1], seed=20)
    data = make_moons(12, seed=20)
    calls, patch = counting_rechecks()
    with patch:
        compiled = compile_loss(model, hinge)
        compiled.grad(data)
        assert calls == []
        loss_fn = hinge
        if change == "swap the loss":
            loss_fn = compiled.loss_fn = lambda out, y: hinge(out, y) * 2.0
        else:
            change(model)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = compiled_path(compiled, model, data)
    want = graph_path(model, loss_fn, data)
    assert len(calls) == 1
    assert got[0] == want[0] and same(got[1], want[1])
    assert compiled.fallback_reason is not None and any("graph path" in str(w.message) for w in caught)


def test_a_library_model_holding_user_code_keeps_the_per_call_retrace():
    model = MLP(2, [3, 1], seed=21)
    model.layers[0].neurons[0]._act = lambda z: z.relu()  # not the library's own function
    data = make_moons(10, seed=21)
    calls, patch = counting_rechecks()
    with patch:
        compiled = compile_loss(model, hinge, strict=True)
        for _ in range(3):
            assert compiled_path(compiled, model, data) == graph_path(model, hinge, data)
    assert len(calls) == 3
