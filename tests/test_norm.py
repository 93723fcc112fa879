"""BatchNorm and LayerNorm: PyTorch's semantics, gradients against central differences, NumPy and
closed forms, the coupling of examples, MLP(norm=...), fit, persist, the picture, bad input."""

from __future__ import annotations

import math
import random
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gradcheck import numeric_gradient
from micrograd_batch import (
    MLP, SGD, BatchNorm, LayerNorm, Value, accuracy, batch_mean, clip_per_example, fit, make_moons, mse,
    per_example_grads,
)
from micrograd_batch.batch import mean_of
from micrograd_batch.engine import Op
from micrograd_batch import persist, viz
from micrograd_batch.persist import ModelFileError, load_model, load_parameters_into, save_model

finite = st.floats(-10.0, 10.0, allow_nan=False)


def random_batch(m: int, n: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.uniform(-2.0, 2.0) for _ in range(n)] for _ in range(m)]


def bn_with(n: int, seed: int, **kwargs) -> BatchNorm:
    """A BatchNorm whose γ, β and running statistics are not the defaults."""
    rng = random.Random(seed)
    bn = BatchNorm(n, **kwargs)
    for g, b in zip(bn.gamma, bn.beta, strict=True):
        g.data, b.data = rng.uniform(0.5, 2.0), rng.uniform(-1.0, 1.0)
    bn.running_mean = [rng.uniform(-1.0, 1.0) for _ in range(n)]
    bn.running_var = [rng.uniform(0.5, 2.0) for _ in range(n)]
    return bn


def weighted_loss(outputs: list[list[Value]], seed: int) -> Value:
    """Σ c_ij y_ij² with fixed random c: a loss whose gradient reaches every output."""
    rng = random.Random(seed)
    total = Value(0.0)
    for row in outputs:
        for y in row:
            total = total + rng.uniform(-1.0, 1.0) * y * y
    return total


# ---- PyTorch's BatchNorm1d semantics --------------------------------------------------------------


def test_initial_state_parameters_and_modes():
    bn = BatchNorm(3)
    assert [p.data for p in bn.parameters()] == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert bn.parameters() == bn.gamma + bn.beta
    assert bn.running_mean == [0.0] * 3 and bn.running_var == [1.0] * 3
    assert all(type(r) is float for r in bn.running_mean + bn.running_var)
    assert (bn.eps, bn.momentum, bn.training) == (1e-5, 0.1, True)
    assert bn.eval() is bn and not bn.training and not bn.couples_examples
    assert bn.train() is bn and bn.training and bn.couples_examples
    ln = LayerNorm(2)
    assert [p.data for p in ln.parameters()] == [1.0, 1.0, 0.0, 0.0]
    assert ln.eval() is ln and ln.train() is ln and not ln.couples_examples


@settings(max_examples=40, deadline=None)
@given(m=st.integers(2, 7), n=st.integers(1, 3), seed=st.integers(0, 10**6))
def test_training_outputs_have_mean_beta_and_variance_gamma_squared_v_over_v_plus_eps(m, n, seed):
    bn = bn_with(n, seed, eps=1e-3)
    xs = random_batch(m, n, seed)
    ys = bn(xs)
    for j in range(n):
        column = [x[j] for x in xs]
        v = math.fsum((x - math.fsum(column) / m) ** 2 for x in column) / m
        out = [row[j].data for row in ys]
        mean = math.fsum(out) / m
        variance = math.fsum((y - mean) ** 2 for y in out) / m
        g, b = bn.gamma[j].data, bn.beta[j].data
        assert mean == pytest.approx(b, abs=1e-12)
        assert variance == pytest.approx(g * g * v / (v + 1e-3), rel=1e-10, abs=1e-14)


def test_eval_mode_uses_the_running_statistics_and_leaves_them_alone():
    bn = bn_with(3, seed=5).eval()
    before = (list(bn.running_mean), list(bn.running_var))
    xs = random_batch(4, 3, seed=1)
    ys = bn(xs)
    for x, y in zip(xs, ys, strict=True):
        for j in range(3):
            expected = (bn.gamma[j].data * (x[j] - bn.running_mean[j]) / math.sqrt(bn.running_var[j] + bn.eps)
                        + bn.beta[j].data)
            assert y[j].data == pytest.approx(expected, rel=1e-14, abs=1e-15)
    assert (bn.running_mean, bn.running_var) == before
    assert [v.data for v in bn([xs[2]])[0]] == [v.data for v in ys[2]]  # one example is fine in eval mode


@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0, 0.0])
def test_running_statistics_after_k_steps_match_the_closed_form(momentum):
    xs = random_batch(5, 2, seed=3)
    bn = BatchNorm(2, momentum=momentum)
    k = 7
    for _ in range(k):
        bn(xs)
    keep = (1.0 - momentum) ** k  # r_k = keep·r_0 + (1 - keep)·s for a statistic s seen k times
    for j in range(2):
        column = np.array([x[j] for x in xs])
        assert bn.running_mean[j] == pytest.approx((1 - keep) * column.mean(), rel=1e-13, abs=1e-15)
        assert bn.running_var[j] == pytest.approx(keep + (1 - keep) * column.var(ddof=1), rel=1e-13)


def test_running_statistics_follow_different_batches_with_the_unbiased_variance():
    bn = BatchNorm(1, momentum=0.25)
    batches = [random_batch(m, 1, seed=m) for m in (2, 3, 6)]
    mean, var = 0.0, 1.0
    for batch in batches:
        bn(batch)
        column = np.array([x[0] for x in batch])
        mean = 0.75 * mean + 0.25 * column.mean()
        var = 0.75 * var + 0.25 * column.var(ddof=1)
    assert bn.running_mean[0] == pytest.approx(mean, rel=1e-13)
    assert bn.running_var[0] == pytest.approx(var, rel=1e-13)


# ---- gradients -----------------------------------------------------------------------------------


def numpy_batch_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float, dy: np.ndarray):
    """Forward and the textbook backward of batch norm (Ioffe & Szegedy 2015, §3), vectorised."""
    m = x.shape[0]
    mu, var = x.mean(axis=0), x.var(axis=0)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mu) * inv_std
    y = gamma * x_hat + beta
    d_hat = dy * gamma
    dx = inv_std / m * (m * d_hat - d_hat.sum(axis=0) - x_hat * (d_hat * x_hat).sum(axis=0))
    return y, dx, (dy * x_hat).sum(axis=0), dy.sum(axis=0)


@settings(max_examples=30, deadline=None)
@given(m=st.integers(2, 6), n=st.integers(1, 3), seed=st.integers(0, 10**6))
def test_forward_and_backward_match_numpy(m, n, seed):
    bn = bn_with(n, seed, eps=1e-4)
    xs = [[Value(v) for v in row] for row in random_batch(m, n, seed)]
    ys = bn(xs)
    rng = random.Random(seed + 1)
    dy = np.array([[rng.uniform(-1, 1) for _ in range(n)] for _ in range(m)])
    total = Value(0.0)
    for row, d_row in zip(ys, dy, strict=True):
        for y, d in zip(row, d_row, strict=True):
            total = total + float(d) * y  # dL/dy = dy
    total.backward()
    gamma = np.array([g.data for g in bn.gamma])
    beta = np.array([b.data for b in bn.beta])
    y_np, dx_np, dgamma, dbeta = numpy_batch_norm(np.array([[v.data for v in r] for r in xs]), gamma, beta, 1e-4, dy)
    np.testing.assert_allclose([[v.data for v in r] for r in ys], y_np, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose([[v.grad for v in r] for r in xs], dx_np, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose([g.grad for g in bn.gamma], dgamma, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose([b.grad for b in bn.beta], dbeta, rtol=1e-10, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(m=st.integers(2, 6), n=st.integers(1, 3), seed=st.integers(0, 10**6))
def test_input_gradients_of_each_feature_sum_to_zero_over_the_batch(m, n, seed):
    xs = [[Value(v) for v in row] for row in random_batch(m, n, seed)]
    weighted_loss(bn_with(n, seed)(xs), seed).backward()
    for j in range(n):
        grads = [row[j].grad for row in xs]
        assert math.fsum(grads) == pytest.approx(0.0, abs=1e-10 * max(1.0, max(map(abs, grads))))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradients_match_central_differences_in_both_modes(training, seed):
    m, n = 4, 3
    xs0 = random_batch(m, n, seed)
    template = bn_with(n, seed, eps=1e-3).train(training)

    def loss_of(flat):  # inputs, then γ, then β, all as plain numbers
        bn = BatchNorm(n, eps=1e-3).train(training)
        bn.running_mean, bn.running_var = list(template.running_mean), list(template.running_var)
        inputs = [[Value(flat[i * n + j]) for j in range(n)] for i in range(m)]
        for p, v in zip(bn.parameters(), flat[m * n:], strict=True):
            p.data = v
        return bn, inputs, weighted_loss(bn(inputs), seed)

    flat = [v for row in xs0 for v in row] + [p.data for p in template.parameters()]
    bn, inputs, loss = loss_of(flat)
    loss.backward()
    autograd = [v.grad for row in inputs for v in row] + [p.grad for p in bn.parameters()]
    numeric = numeric_gradient(lambda f: loss_of(f)[2].data, flat, h=1e-5)
    np.testing.assert_allclose(autograd, numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("seed", [0, 1])
def test_layer_norm_gradients_match_central_differences(seed):
    n = 4

    def loss_of(flat):
        ln = LayerNorm(n, eps=1e-3)
        x = [Value(v) for v in flat[:n]]
        for p, v in zip(ln.parameters(), flat[n:], strict=True):
            p.data = v
        return ln, x, weighted_loss([ln(x)], seed)

    rng = random.Random(seed)
    flat = [rng.uniform(-2, 2) for _ in range(n)] + [rng.uniform(0.5, 2) for _ in range(n)] + [0.3] * n
    ln, x, loss = loss_of(flat)
    loss.backward()
    autograd = [v.grad for v in x] + [p.grad for p in ln.parameters()]
    np.testing.assert_allclose(autograd, numeric_gradient(lambda f: loss_of(f)[2].data, flat, h=1e-5),
                               rtol=1e-6, atol=1e-7)
    out = LayerNorm(n)(flat[:n])  # γ = 1, β = 0: each example's features have mean 0
    assert math.fsum(v.data for v in out) == pytest.approx(0.0, abs=1e-12)


# ---- the coupling ----------------------------------------------------------------------------------


def cross_gradient(model: MLP, xs: list[list[float]]) -> float:
    """∂L_1/∂x_2 (first feature): does example 1's loss depend on example 2's input?"""
    inputs = [[Value(v) for v in x] for x in xs]
    outputs = model.forward_batch(inputs)
    mse(outputs[0], 1.0).backward()
    return inputs[1][0].grad


def test_batch_norm_couples_examples_and_eval_or_layer_norm_do_not():
    xs = random_batch(4, 2, seed=7)
    assert cross_gradient(MLP(2, [3, 1], norm="batch", seed=1), xs) != 0.0
    assert cross_gradient(MLP(2, [3, 1], norm="batch", seed=1).eval(), xs) == 0.0
    assert cross_gradient(MLP(2, [3, 1], norm="layer", seed=1), xs) == 0.0
    assert cross_gradient(MLP(2, [3, 1], seed=1), xs) == 0.0


# ---- MLP(norm=...) --------------------------------------------------------------------------------


def test_mlp_places_norms_between_weighted_sum_and_activation():
    model = MLP(2, [3, 2, 1], norm="batch", activation="tanh", seed=4)
    assert [type(n) for n in model.norms] == [BatchNorm, BatchNorm]
    assert [n.num_features for n in model.norms] == [3, 2]
    layer1, bn1 = model.layers[0], model.norms[0]
    assert model.parameters()[:len(layer1.parameters()) + 6] == layer1.parameters() + bn1.parameters()
    assert len(model.parameters()) == 9 + 6 + 8 + 4 + 3
    xs = random_batch(5, 2, seed=2)
    outs = model.forward_batch(xs)
    # by hand: z = Wx + b per example, batch-normalised per feature, then tanh; then layer 2 ...
    rows = [[n.pre_activation([Value(v) for v in x]) for n in layer1.neurons] for x in xs]
    a1 = [[z.tanh() for z in row] for row in BatchNorm(3)(rows)]
    a2 = [[z.tanh() for z in row] for row in BatchNorm(2)([[n.pre_activation(a) for n in model.layers[1].neurons]
                                                            for a in a1])]
    expected = [model.layers[2].forward(a)[0].data for a in a2]
    assert [o.data for o in outs] == expected


def test_forward_batch_equals_one_at_a_time_without_coupling():
    xs = random_batch(4, 2, seed=9)
    for model in (MLP(2, [3, 2], seed=1), MLP(2, [3, 1], norm="layer", seed=1),
                  MLP(2, [3, 1], norm="batch", seed=1).eval()):
        batch = model.forward_batch(xs)
        single = [model(x) for x in xs]
        flat = lambda outs: [v.data for o in outs for v in (o if isinstance(o, list) else [o])]  # noqa: E731
        assert flat(batch) == flat(single)


def test_one_example_through_a_training_batch_norm_model_says_to_pass_the_batch():
    model = MLP(2, [3, 1], norm="batch", seed=1)
    with pytest.raises(ValueError, match=r"forward_batch"):
        model([0.1, 0.2])
    with pytest.raises(ValueError, match="at least 2 examples"):
        model.forward_batch([[0.1, 0.2]])
    assert model.norms[0].running_mean == [0.0] * 3  # nothing was updated by the refused calls
    assert model.eval()([0.1, 0.2]).data == model.forward_batch([[0.1, 0.2]])[0].data


def test_batch_gradient_with_batch_norm_is_not_the_mean_of_one_at_a_time_gradients():
    xs, ys = random_batch(4, 2, seed=3), [1.0, -1.0, 0.5, 0.0]
    model = MLP(2, [3, 1], norm="batch", seed=2)
    losses = [mse(o, y) for o, y in zip(model.forward_batch(xs), ys, strict=True)]
    model.zero_grad()
    batch_mean(losses).backward()
    batch_grad = [p.grad for p in model.parameters()]
    # each example's own loss, differentiated through the shared statistics, still averages exactly
    assert np.allclose(mean_of(per_example_grads(losses, model.parameters())), batch_grad, atol=1e-14)
    # but one example at a time (eval mode, the only way to run one) gives a different gradient
    model.eval()
    alone = per_example_grads([mse(model(x), y) for x, y in zip(xs, ys, strict=True)], model.parameters())
    assert max(abs(a - b) for a, b in zip(mean_of(alone), batch_grad, strict=True)) > 1e-2


def test_unknown_norm_and_bad_batches_are_refused_clearly():
    with pytest.raises(ValueError, match="unknown norm 'group'"):
        MLP(2, [3, 1], norm="group")
    model = MLP(2, [3, 1], norm="batch", seed=1)
    with pytest.raises(ValueError, match="example 2: expected 2 inputs, got 3"):
        model.forward_batch([[0.1, 0.2], [0.1, 0.2, 0.3]])
    with pytest.raises(ValueError, match="non-empty list"):
        model.forward_batch([])


# ---- bad input to BatchNorm and LayerNorm -------------------------------------------------------


@pytest.mark.parametrize("batch, error, message", [
    ([[1.0, 2.0], [3.0]], ValueError, "example 2 has 1 features, expected 2"),
    ([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], ValueError, "example 1 has 3 features, expected 2"),
    ([[1.0, 2.0]], ValueError, "at least 2 examples"),
    ([[1.0, float("nan")], [0.0, 1.0]], ValueError, "example 1, feature 2 is nan"),
    ([[1.0, 2.0], [float("inf"), 1.0]], ValueError, "example 2, feature 1 is inf"),
    ([], ValueError, "empty batch"),
    ([1.0, 2.0], TypeError, "example 1 must be a list of 2 numbers"),
    ("ab", TypeError, "BatchNorm takes a batch"),
    ([[1.0, "x"], [1.0, 2.0]], TypeError, "real number"),
    ([{0: 1.0, 1: 2.0}, [1.0, 2.0]], TypeError, "example 1 must be a list of 2 numbers, got dict"),
])
def test_batch_norm_refuses_bad_batches_and_changes_nothing(batch, error, message):
    bn = BatchNorm(2)
    with pytest.raises(error, match=message):
        bn(batch)
    assert bn.running_mean == [0.0, 0.0] and bn.running_var == [1.0, 1.0]


@pytest.mark.parametrize("kwargs, message", [
    ({"num_features": 0}, "num_features"), ({"num_features": 2.0}, "num_features"),
    ({"num_features": 2, "eps": 0.0}, "eps"), ({"num_features": 2, "eps": float("nan")}, "eps"),
    ({"num_features": 2, "momentum": 1.5}, "momentum"), ({"num_features": 2, "momentum": -0.1}, "momentum"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BatchNorm(**kwargs)


def test_layer_norm_refuses_bad_examples():
    with pytest.raises(ValueError, match="has 3 features, expected 2"):
        LayerNorm(2)([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="feature 1 is nan"):
        LayerNorm(2)([float("nan"), 2.0])


def test_batch_statistics_nodes_have_their_own_kind():
    bn = BatchNorm(2)
    out = bn(random_batch(3, 2, seed=1))
    stats = {id(p): p for row in out for y in row for p in _ancestors(y) if p.op == Op.BATCH_STAT}
    assert sorted(p.label for p in stats.values()) == ["μ1", "μ2", "σ²1", "σ²2"]
    out_eval = bn.eval()(random_batch(3, 2, seed=1))
    assert not [p for row in out_eval for y in row for p in _ancestors(y) if p.op == Op.BATCH_STAT]
    constants = {p.label for row in out_eval for y in row for p in _ancestors(y) if p.op == Op.CONST}
    assert {"running μ1", "running σ²1", "running μ2", "running σ²2"} <= constants


def _ancestors(v: Value) -> list[Value]:
    seen, stack, out = set(), [v], []
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            out.append(node)
            stack.extend(node._parents)
    return out


# ---- fit, accuracy, persist --------------------------------------------------------------------


def test_fit_trains_a_batch_norm_model_and_accuracy_leaves_it_alone():
    data = make_moons(80, noise=0.1, seed=0)
    model = MLP(2, [8, 1], norm="batch", seed=0)
    history = fit(model, data, lambda out, y: mse(out, y), SGD(model.parameters(), lr=0.1),
                  epochs=6, batch_size=16)
    assert history.loss[-1] < history.loss[0]
    assert model.norms[0].running_mean != [0.0] * 8  # the statistics were tracked
    stats = (list(model.norms[0].running_mean), list(model.norms[0].running_var))
    acc = accuracy(model, data)
    assert acc > 0.7 and model.norms[0].training  # measured with the running statistics, mode restored
    assert stats == (model.norms[0].running_mean, model.norms[0].running_var)
    assert acc == accuracy(model.eval(), data)
    with pytest.raises(ValueError, match="workers=1"):
        fit(model.train(), data, lambda out, y: mse(out, y), epochs=1, workers=2)


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_models_with_norms_are_saved_and_reloaded_exactly(norm, tmp_path):
    model = MLP(2, [4, 3, 1], norm=norm, seed=3)
    xs = random_batch(6, 2, seed=4)
    for _ in range(3):  # move γ, β and the running statistics away from their defaults
        losses = [mse(o, 0.5) for o in model.forward_batch(xs)]
        model.zero_grad()
        batch_mean(losses).backward()
        for p in model.parameters():
            p.data -= 0.3 * p.grad
    model.norms[1].eps = 1e-3
    save_model(model, tmp_path / "m.json")
    loaded = load_model(tmp_path / "m.json")
    assert loaded.norm == norm and loaded.couples_examples == (norm == "batch")  # training mode
    assert [p.data.hex() for p in loaded.parameters()] == [p.data.hex() for p in model.parameters()]
    for mine, theirs in zip(model.norms, loaded.norms, strict=True):
        assert vars(mine).keys() == vars(theirs).keys()
        for key in ("eps", "momentum", "running_mean", "running_var"):
            assert getattr(mine, key, None) == getattr(theirs, key, None)
    for m in (model, loaded):
        m.eval()
    assert [o.data for o in loaded.forward_batch(xs)] == [o.data for o in model.forward_batch(xs)]
    target = MLP(2, [4, 3, 1], norm=norm, seed=9)
    load_parameters_into(target, tmp_path / "m.json")
    assert [p.data for p in target.parameters()] == [p.data for p in model.parameters()]


def test_norm_files_are_checked(tmp_path):
    model = MLP(2, [3, 1], norm="batch", seed=1)
    data = persist.model_to_dict(model)
    assert data["norms"] == [{"eps": 1e-5, "momentum": 0.1, "running_mean": [0.0] * 3, "running_var": [1.0] * 3}]
    assert data["norms"][0]["running_var"] is not model.norms[0].running_var
    norm = data["norms"][0]
    with pytest.raises(ModelFileError, match=r"norms\[0\].running_mean must be a list of 3 numbers"):
        persist.model_from_dict(dict(data, norms=[dict(norm, running_mean=[0.0, 0.0])]))
    with pytest.raises(ModelFileError, match="running_var >= 0"):
        persist.model_from_dict(dict(data, norms=[dict(norm, running_var=[1.0, -1.0, 1.0])]))
    with pytest.raises(ModelFileError, match="config.norm is 'group'"):
        persist.model_from_dict(dict(data, config=dict(data["config"], norm="group")))
    save_model(model, tmp_path / "m.json")
    plain = MLP(2, [3, 1], seed=1)
    with pytest.raises(ModelFileError, match=r"'norm': 'batch'}, this one .*'norm': None}; it was not changed"):
        load_parameters_into(plain, tmp_path / "m.json")
    model.norms[0].running_var[1] = math.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        save_model(model, tmp_path / "m.json")


# ---- the picture ---------------------------------------------------------------------------------


def test_picture_draws_batch_statistics_in_their_own_box_with_edges_into_every_example():
    model = MLP(2, [2, 1], norm="batch", seed=1)
    xs = [[Value(v, f"x{j + 1}") for j, v in enumerate(x)] for x in random_batch(3, 2, seed=1)]
    root = batch_mean([mse(o, y) for o, y in zip(model.forward_batch(xs), [1.0, -1.0, 0.5], strict=True)])
    root.backward()
    dot = viz.draw_dot(root)
    svg = ET.fromstring(viz.svg_from_dot(dot.source))
    ns = "{http://www.w3.org/2000/svg}"
    clusters = {}
    for group in svg.iter(f"{ns}g"):
        if group.get("class") == "cluster":
            title = "".join(t.text or "" for t in group.iter(f"{ns}text"))
            clusters[group.find(f"{ns}title").text] = title
    assert clusters["cluster_stats"].startswith("batch statistics (shared by every example)")
    assert {"cluster_1", "cluster_2", "cluster_3", "cluster_shared"} <= clusters.keys()
    assert "parameters (shared)" in clusters["cluster_shared"]
    owner = viz.example_membership(root)
    stats = [v for v in viz.topological_order(root) if owner.get(id(v)) == viz.STATS]
    assert sorted(v.label for v in stats) == ["μ1", "μ2", "σ²1", "σ²2"]
    # every input of every example is in its own example's box, not in the shared one
    assert [[owner[id(v)] for v in x] for x in xs] == [[1, 1], [2, 2], [3, 3]]
    # a line from each statistic into each example's box
    ids = {id(v): f"v{i}" for i, v in enumerate(viz.topological_order(root))}
    edges = [line.strip() for line in dot.source.splitlines() if "->" in line and "style=invis" not in line]
    for stat in stats:
        into = {owner[id(child)] for child in viz.topological_order(root) if stat in child._parents}
        assert into == {1, 2, 3}
        assert sum(line.startswith(ids[id(stat)] + " ->") for line in edges) == 3  # one per example
    assert "COUPLED" in dot.source
    # the per-example columns of each parameter still add up to its grad
    shares = viz.contributions(viz.topological_order(root), owner)
    for p in model.parameters():
        assert math.fsum(shares[id(p)].values()) == pytest.approx(p.grad, abs=1e-12)


def test_eval_picture_has_no_statistics_box_and_running_statistics_as_constants():
    model = MLP(2, [2, 1], norm="batch", seed=1).eval()
    root = batch_mean([mse(o, 0.0) for o in model.forward_batch(random_batch(2, 2, seed=1))])
    source = viz.draw_dot(root).source
    assert "batch statistics" not in source and "COUPLED" not in source
    assert "running μ1" in source
    owner = viz.example_membership(root)
    running = [v for v in viz.topological_order(root) if v.label.startswith("running")]
    assert running and all(v.op == Op.CONST and owner[id(v)] in (1, 2) for v in running)


# ---- per-example clipping ----------------------------------------------------------------------------


def test_clip_per_example_bounds_each_gradient_and_keeps_small_ones_exactly():
    model = MLP(2, [3, 1], seed=0)
    xs, ys = random_batch(5, 2, seed=2), [3.0, -2.0, 0.1, 0.0, 1.0]
    losses = [mse(model(x), y) for x, y in zip(xs, ys, strict=True)]
    raw = per_example_grads(losses, model.parameters())
    norms = [math.sqrt(math.fsum(g * g for g in grad)) for grad in raw]
    c = sorted(norms)[2]  # the median: some clipped, some not
    clipped = clip_per_example(losses, model.parameters(), max_norm=c)
    for grad, new, norm in zip(raw, clipped, norms, strict=True):
        if norm <= c:
            assert new == grad
        else:
            assert math.sqrt(math.fsum(g * g for g in new)) == pytest.approx(c, rel=1e-14)
            assert all(a * norm == pytest.approx(b * c, rel=1e-14) for a, b in zip(new, grad, strict=True))
    assert all(p.grad == 0.0 for p in model.parameters())
    with pytest.raises(ValueError, match="max_norm"):
        clip_per_example(losses, model.parameters(), max_norm=0.0)


def test_a_nan_computed_upstream_is_a_numerical_failure_and_fit_reports_divergence():
    with pytest.raises(FloatingPointError, match="example 2, feature 1 is nan"):
        BatchNorm(1)([[Value(1.0) * 2.0], [Value(1.0) * math.nan]])
    from micrograd_batch import TrainingDiverged
    model = MLP(1, [2, 1], norm="batch", seed=0)
    model.layers[0].neurons[0].w[0].data = 1e308
    before = [p.data for p in model.parameters()]
    with pytest.raises(TrainingDiverged, match="epoch 1, step 1"):
        fit(model, [([10.0], 1.0), ([-10.0], 0.0)], mse, epochs=1, batch_size=2)
    assert [p.data for p in model.parameters()] == before


def test_huge_inputs_whose_sums_overflow_are_normalised_without_overflow():
    # the mean: Σ x overflows, the mean does not; every output is β and every gradient finite
    bn = BatchNorm(1)
    out = bn([[1e308], [1e308]])
    assert [y.data for row in out for y in row] == [0.0, 0.0]
    assert bn.running_mean == [0.1 * 1e308] and bn.running_var == [0.9]
    assert [y.data for y in LayerNorm(2)([1e308, 1e308])] == [0.0, 0.0]
    # the variance: Σ (x - μ)² overflows, σ² does not (nor σ²·m/(m - 1) for the running variance)
    a = 1.2e154
    ln_out = LayerNorm(2)([a, -a])
    assert [y.data for y in ln_out] == pytest.approx([1.0, -1.0], rel=1e-12)
    (ln_out[0] * ln_out[0]).backward()
    bn = BatchNorm(1)
    out = bn([[a], [-a], [0.0]])
    assert [row[0].data for row in out] == pytest.approx([1.5 ** 0.5, -(1.5 ** 0.5), 0.0], rel=1e-12)
    assert bn.running_var == [pytest.approx(0.9 + 0.1 * a * a, rel=1e-12)]
    batch_mean([row[0] * row[0] for row in out]).backward()
    assert all(math.isfinite(p.grad) for p in bn.parameters())


def test_an_unknown_norm_is_refused_before_any_weight_is_drawn():
    random.seed(5)
    state = random.getstate()
    with pytest.raises(ValueError, match="unknown norm"):
        MLP(2, [3, 1], norm="instance")
    assert random.getstate() == state


def test_evaluating_restores_each_norms_own_mode():
    model = MLP(2, [3, 3, 1], norm="batch", seed=0)
    model.norms[1].eval()
    with model.evaluating() as same:
        assert same is model and not model.couples_examples
        model([0.1, 0.2])
    assert [n.training for n in model.norms] == [True, False]
    with pytest.raises(KeyboardInterrupt), model.evaluating():
        raise KeyboardInterrupt
    assert [n.training for n in model.norms] == [True, False]


def test_an_interrupted_call_leaves_the_running_statistics_all_old(monkeypatch):
    from micrograd_batch import norm as norm_module
    bn = BatchNorm(2)
    real, calls = norm_module._normalised, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(norm_module, "_normalised", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bn(random_batch(3, 2, seed=0))
    assert bn.running_mean == [0.0, 0.0] and bn.running_var == [1.0, 1.0]
