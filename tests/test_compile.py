"""compile_loss: code generated from a library model's structure gives the graph path's numbers
bit for bit, and everything it does not compile is refused loudly with NotCompilable."""

import ast
import math
import pickle
import random
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from micrograd_batch import (
    MLP, Neuron, NotCompilable, Value, batch_mean, bce_with_logits, compile_loss, hinge, mse,
    softmax_cross_entropy,
)
from micrograd_batch import compile as compile_module
from micrograd_batch.nn import Layer

from gradcheck import numeric_gradient
from helpers import graph_path


def same(a, b):
    """Equal floats, NaN matching NaN."""
    return len(a) == len(b) and all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True))


def plain_scores(output):
    """A model output (one Value or a list of them) as plain numbers."""
    return output.data if isinstance(output, Value) else [o.data for o in output]


def targets(loss_fn, nout, rng):
    """A random valid target for `loss_fn` on a model with `nout` outputs."""
    if loss_fn is hinge:
        return rng.choice([-1, 1, -1.0, 1.0])
    if loss_fn is bce_with_logits:
        return rng.choice([0, 1, 0.0, 1.0])
    if loss_fn is softmax_cross_entropy:
        return rng.randrange(nout)
    values = [rng.uniform(-2, 2) for _ in range(nout)]
    return values[0] if nout == 1 and rng.random() < 0.5 else values


def compiled_path(compiled, model, examples, start):
    """compiled.grad from the given starting gradients: (loss, the parameters' grads)."""
    params = model.parameters()
    for p, g in zip(params, start, strict=True):
        p.grad = g
    loss = compiled.grad(examples)
    return loss, [p.grad for p in params]


MODELS = st.fixed_dictionaries({
    "nin": st.integers(1, 4), "hidden": st.lists(st.integers(1, 4), max_size=2),
    "activation": st.sampled_from(["relu", "tanh", "sigmoid", "linear"]),
    "output_activation": st.sampled_from(["linear", "relu", "tanh", "sigmoid"]),
    "fused": st.booleans(), "seed": st.integers(0, 10**6),
})


@settings(max_examples=150)
@given(model=MODELS, loss_fn=st.sampled_from([hinge, mse, bce_with_logits, softmax_cross_entropy]),
       m=st.integers(1, 6), kind=st.sampled_from(["MLP", "Layer", "Neuron"]))
def test_losses_gradients_and_outputs_equal_the_graph_paths_bit_for_bit(model, loss_fn, m, kind):
    rng = random.Random(model["seed"])
    single = loss_fn in (hinge, bce_with_logits)
    nout = 1 if single else (3 if loss_fn is softmax_cross_entropy else rng.randint(1, 3))
    if kind == "MLP":
        net = MLP(model["nin"], [*model["hidden"], nout], activation=model["activation"],
                  output_activation=model["output_activation"], seed=model["seed"], fused=model["fused"])
    elif kind == "Layer":
        net = Layer(model["nin"], nout, activation=model["activation"], rng=rng, fused=model["fused"])
    else:
        nout = 1
        net = Neuron(model["nin"], activation=model["activation"], rng=rng, fused=model["fused"])
    if loss_fn is softmax_cross_entropy and nout == 1:
        return
    for p in net.parameters():
        p.data = rng.uniform(-2, 2)
    examples = [([rng.uniform(-3, 3) for _ in range(model["nin"])], targets(loss_fn, nout, rng)) for _ in range(m)]
    start = [rng.choice([0.0, rng.uniform(-1, 1)]) for _ in net.parameters()]
    compiled = compile_loss(net, loss_fn)

    want_loss, want_grads = graph_path(net, loss_fn, examples, start)
    loss, grads = compiled_path(compiled, net, examples, start)
    assert same([loss], [want_loss]) and same(grads, want_grads)

    graphs = [loss_fn(net(x), y) for x, y in examples]
    losses, gradient, outputs = compiled.run(examples, seed=0.25)
    assert same(losses, [g.data for g in graphs])
    node = batch_mean(graphs)
    for p in net.parameters():
        p.grad = 0.0
    node.backward(0.25 * m)  # the batch node's local derivative 1/m times this seed is 0.25
    assert same(gradient, [p.grad for p in net.parameters()])
    assert outputs == compiled.outputs(examples) == [plain_scores(net(x)) for x, _ in examples]


def test_the_gradient_is_the_central_difference_gradient():
    model = MLP(2, [3, 2], activation="tanh", seed=3)
    examples = [([0.3, -0.7], 1), ([1.1, 0.2], 0), ([-0.4, 0.9], 1)]
    compiled = compile_loss(model, softmax_cross_entropy)
    compiled.grad(examples)
    params = model.parameters()

    def mean_loss(values):
        return sum(compiled.run(examples, params=values)[0]) / len(examples)

    numeric = numeric_gradient(mean_loss, [p.data for p in params])
    assert [p.grad for p in params] == pytest.approx(numeric, rel=1e-6, abs=1e-8)


def test_the_source_is_valid_python_ready_at_once_and_shows_the_delta_recursion():
    model = MLP(2, [3, 1], seed=0)
    source = compile_loss(model, hinge).source  # README: print(compile_loss(model, hinge).source)
    ast.parse(source)
    assert "2-3-1 (relu, linear), loss hinge" in source
    assert "g_a1_2 = w2_1_2 * g_z2_1" in source  # Σ_k w_k2 δ_k
    assert "g_z1_2 = (1.0 if z1_2 > 0.0" in source  # δ = g'(z) · dL/da
    assert "g_w1_2_1 += x1 * g_z1_2" in source  # a weight's share: δ · a_in


@pytest.mark.parametrize("label", ["g_sub1", "zip", "loss", "x1", "w1_1_1", "a\nimport os", "é"])
def test_labels_never_become_names(label):
    """Issue 20 bug 3: a parameter labelled g_sub1 trained to other weights, `zip` crashed."""
    model = MLP(2, [2, 1], seed=1)
    for p in model.parameters():
        p.label = label
    examples = [([0.5, -1.0], 1), ([1.5, 0.25], -1), ([-0.5, 2.0], 1)]
    compiled = compile_loss(model, hinge)
    assert compiled.source == compile_loss(MLP(2, [2, 1], seed=1), hinge).source
    start = [0.0] * len(model.parameters())
    assert compiled_path(compiled, model, examples, start) == graph_path(model, hinge, examples, start)


def try_log(out, y):
    try:
        d = (out - y).abs() + 1e-3
        return d.log()
    except ValueError:
        return (out - y) * (out - y)


class Branchy(MLP):
    """A model that branches on a value read through a library helper."""

    def __call__(self, x):
        out = super().__call__(x)
        return out if abs(plain_scores(out)) <= 1 else out * 0.5


@pytest.mark.parametrize("model,loss_fn,match", [
    (MLP(2, [1], seed=0), try_log, "library's losses"),  # issue 20 bug 1: try/except in a loss
    (Branchy(2, [1], seed=0), hinge, "not Branchy"),  # issue 20 bug 2: a branch through a helper
    (MLP(2, [3, 1], norm="layer", seed=0), hinge, "norm layers"),
    (MLP(2, [3, 1], norm="batch", seed=0), hinge, "norm layers"),
    (MLP(2, [3, 2], seed=0), hinge, "hinge does not take this model's 2 output"),
    (lambda x: x, hinge, "not function"),
])
def test_anything_but_a_library_model_and_loss_is_refused_naming_it(model, loss_fn, match):
    with pytest.raises(NotCompilable, match=match):
        compile_loss(model, loss_fn)


def test_a_changed_model_runs_new_code_or_is_refused_never_stale_code():
    model = MLP(2, [3, 1], seed=2)
    examples = [([0.5, -1.0], 1.5), ([1.5, 0.25], -0.5)]
    compiled = compile_loss(model, mse)
    start = [0.0] * len(model.parameters())
    model.layers[0].neurons[1]._act = Value.tanh  # an activation changed
    model.layers[1].neurons[0].w[0] = Value(0.75)  # a parameter replaced
    assert compiled_path(compiled, model, examples, start) == graph_path(model, mse, examples, start)
    model.layers.append(Layer(1, 1, activation="tanh"))  # an appended layer
    start = [0.0] * len(model.parameters())
    assert compiled_path(compiled, model, examples, start)[1] == graph_path(model, mse, examples, start)[1]
    model.layers[0].neurons[0].w[1] = model.layers[0].neurons[0].w[0]  # tied weights
    with pytest.raises(NotCompilable, match="tied"):
        compiled.grad(examples)
    model.layers[0].neurons[0].w[1] = Value(0.5)
    model.layers[1].neurons[0].w.append(Value(0.5))  # more weights than inputs
    with pytest.raises(NotCompilable, match="one per input"):
        compiled.grad(examples)
    model.layers[1].neurons[0].w.pop()
    model.layers[0].forward = lambda inputs: inputs  # an instance's own method
    with pytest.raises(NotCompilable, match="forward"):
        compiled.grad(examples)


def test_the_code_is_built_once_per_structure():
    compile_module._program.cache_clear()
    first = compile_loss(MLP(3, [4, 2], seed=1), softmax_cross_entropy)
    second = compile_loss(MLP(3, [4, 2], seed=2), softmax_cross_entropy)
    assert compile_module._program.cache_info().misses == 1
    assert first.source == second.source


def test_a_wide_neuron_compiles_and_gives_the_graphs_numbers():
    """Issue 20 bug 6: a 4,000-input neuron died with RecursionError."""
    model = Neuron(4000, activation="tanh", rng=random.Random(0))
    rng = random.Random(1)
    examples = [([rng.uniform(-1, 1) for _ in range(4000)], rng.choice([-1, 1])) for _ in range(3)]
    start = [0.0] * 4001
    compiled = compile_loss(model, hinge)
    assert compiled_path(compiled, model, examples, start) == graph_path(model, hinge, examples, start)


@pytest.mark.parametrize("x", [{1.0, 2.0}, "ab", [1.0], [1.0, "a"], [True, 1.0], [Value(1.0), 2.0]])
def test_bad_inputs_are_refused_as_on_the_graph_path(x):
    """Issue 20 bug 8: a set as an input trained on the compiled path; the graph refuses it."""
    model = MLP(2, [2, 1], seed=0)
    compiled = compile_loss(model, hinge)
    if not isinstance(x, list) or not any(isinstance(v, Value) for v in x):
        with pytest.raises((TypeError, ValueError)) as graph_error:
            model(x)
    with pytest.raises((TypeError, ValueError)) as error:
        compiled.grad([([0.0, 1.0], 1), (x, 1)])
    if isinstance(x, list) and any(isinstance(v, Value) for v in x):
        assert "not Values" in str(error.value)
    else:
        assert type(error.value) is type(graph_error.value) and str(error.value) == str(graph_error.value)
    assert all(p.grad == 0.0 for p in model.parameters())


@pytest.mark.parametrize("loss_fn,nout,y", [
    (hinge, 1, 0), (hinge, 1, True), (bce_with_logits, 1, -1), (softmax_cross_entropy, 3, 3),
    (softmax_cross_entropy, 3, 1.0), (mse, 2, [1.0]), (mse, 1, "a"),
])
def test_bad_targets_get_the_losses_own_error(loss_fn, nout, y):
    model = MLP(2, [nout], seed=0)
    with pytest.raises((TypeError, ValueError)) as graph_error:
        loss_fn(model([0.5, 0.5]), y)
    with pytest.raises(type(graph_error.value)) as error:
        compile_loss(model, loss_fn).grad([([0.5, 0.5], y)])
    assert str(error.value) == str(graph_error.value)


@pytest.mark.parametrize("x", [math.nan, math.inf, -math.inf, 1e308])
@pytest.mark.parametrize("loss_fn", [hinge, mse, bce_with_logits])
def test_nan_inf_and_overflow_propagate_exactly_as_on_the_graph(x, loss_fn):
    model = MLP(2, [2, 1], activation="tanh", seed=4)
    examples = [([x, 1.0], 1), ([0.5, x], 1)]
    start = [0.0] * len(model.parameters())
    want_loss, want = graph_path(model, loss_fn, examples, start)
    loss, grads = compiled_path(compile_loss(model, loss_fn), model, examples, start)
    assert same([loss], [want_loss]) and same(grads, want)


def test_threads_compile_and_run_at_once_with_nothing_patched():
    """Issue 20 bug 4: threads tracing at once left Value patched for good."""
    before = dict(vars(Value))
    models = [MLP(2, [4, 4, 1], seed=s) for s in range(4)]
    examples = [([i / 7, -i / 5], 1 if i % 2 else -1) for i in range(16)]
    results = {}

    def train(i):
        compiled = compile_loss(models[i], hinge)
        results[i] = [compiled.run(examples)[1] for _ in range(20)][-1]

    threads = [threading.Thread(target=train, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert dict(vars(Value)) == before
    for i, model in enumerate(models):
        assert results[i] == graph_path(model, hinge, examples)[1]


def test_a_compiled_loss_pickles_as_its_model_and_loss():
    model = MLP(2, [3, 2], seed=5)
    examples = [([0.5, -1.0], 1), ([1.5, 0.25], 0)]
    compiled = compile_loss(model, softmax_cross_entropy)
    again = pickle.loads(pickle.dumps(compiled))
    assert again.loss_fn is softmax_cross_entropy and again.source == compiled.source
    assert again.run(examples) == compiled.run(examples)


def test_bad_arguments_are_named():
    compiled = compile_loss(MLP(2, [1], seed=0), hinge)
    with pytest.raises(ValueError, match="empty batch"):
        compiled.grad([])
    with pytest.raises(ValueError, match="2 parameter values for a model of 3"):
        compiled.run([([0.0, 0.0], 1)], params=[1.0, 2.0])
