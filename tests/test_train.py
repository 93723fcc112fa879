"""The training loop: it learns two-moons, reports progress, stops cleanly on a NaN, measures
accuracy by the rule the output calls for, and micro-batches to the same parameters."""

import math
import random
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from micrograd_batch import (
    MLP, SGD, Adam, TrainingDiverged, Value, accuracy, bce_with_logits, fit, hinge, make_moons, mse,
    softmax_cross_entropy,
)
from helpers import make_blobs
from micrograd_batch import train
from micrograd_batch.engine import Op
from micrograd_batch.compile import NotCompilable
from micrograd_batch.nn import Layer, Neuron
from micrograd_batch.parallel import WorkerDied
from state import assert_unchanged, snapshot


def not_compilable(model, loss_fn):
    """Stands for compile_loss refusing a model: fit then builds the graphs."""
    raise NotCompilable("switched off by the test")


def test_two_moons_reaches_97_percent_training_accuracy_in_seconds():
    data = make_moons(100, noise=0.1, seed=0)
    model = MLP(2, [16, 16, 1], seed=1)
    started = time.perf_counter()
    history = fit(model, data, hinge, SGD(model.parameters(), lr=0.1, momentum=0.9),
                  epochs=30, batch_size=16, l2=1e-4)
    assert time.perf_counter() - started < 20
    assert accuracy(model, data) >= 0.97
    assert len(history.loss) == 30 and history.steps == 30 * 7
    assert history.loss[-1] < history.loss[0] / 5


@pytest.mark.parametrize("loss_fn,data,nout", [
    (bce_with_logits, make_moons(60, noise=0.1, seed=2, signed=False), 1),
    (softmax_cross_entropy, make_blobs(60, seed=2), 3),
])
def test_other_losses_learn_their_tasks(loss_fn, data, nout):
    model = MLP(2, [16, 16, nout], seed=0)
    history = fit(model, data, loss_fn, Adam(model.parameters(), lr=0.02), epochs=40,
                  batch_size=10)
    assert history.accuracy[-1] >= 0.9  # fit knows the loss: a logit is right above 0
    assert accuracy(model, data, threshold=0.0 if nout == 1 else None) == history.accuracy[-1]


def test_fit_prints_nothing_and_reports_through_on_epoch(capsys):
    model = MLP(2, [4, 1], seed=0)
    seen = []
    history = fit(model, make_moons(20, seed=0), hinge, epochs=3, batch_size=5,
                  on_epoch=lambda epoch, h: seen.append((epoch, h.loss[-1], h.accuracy[-1])))
    assert capsys.readouterr() == ("", "")
    assert seen == list(zip([1, 2, 3], history.loss, history.accuracy, strict=True))


def test_nan_loss_stops_naming_epoch_and_step_and_keeps_last_good_parameters():
    data = make_moons(40, noise=0.1, seed=0)
    model = MLP(2, [4, 1], seed=0)
    calls = {"n": 0}  # examples seen so far; 10 per step, 4 steps per epoch
    snapshot = {}

    def loss_fn(score, y):
        n = calls["n"]
        if n % 10 == 0:
            snapshot["params"] = [p.data for p in model.parameters()]
        calls["n"] = n + 1
        if n >= 70:  # the 8th step (0-based example 70): epoch 2, step 4
            return score * math.nan
        return hinge(score, y)

    with pytest.raises(TrainingDiverged, match="epoch 2, step 4") as info:
        fit(model, data, loss_fn, SGD(model.parameters(), lr=0.1), epochs=3, batch_size=10)
    assert (info.value.epoch, info.value.step) == (2, 4)
    assert "nan" in str(info.value)
    assert [p.data for p in model.parameters()] == snapshot["params"]


def test_exploding_training_stops_with_a_clear_error():
    data = [([1e60, 1e60], 1.0), ([-1e60, 1e60], -1.0)]
    model = MLP(2, [4, 1], seed=0)
    with pytest.raises(TrainingDiverged, match=r"epoch [1-5], step 1: .*(inf|nan)"):
        fit(model, data, mse, SGD(model.parameters(), lr=1.0), epochs=5, batch_size=2)
    assert all(math.isfinite(p.data) for p in model.parameters())


def test_fit_argument_errors():
    model = MLP(2, [2, 1], seed=0)
    data = make_moons(10, seed=0)
    with pytest.raises(ValueError, match="epochs"):
        fit(model, data, hinge, epochs=0)
    with pytest.raises(ValueError, match="batch_size"):
        fit(model, data, hinge, batch_size=0)
    with pytest.raises(ValueError, match="no examples"):
        fit(model, [], hinge)
    with pytest.raises(ValueError, match="no examples"):
        accuracy(model, [])


@pytest.mark.slow
def test_fit_with_worker_processes_follows_the_serial_run():
    data = make_moons(64, noise=0.1, seed=5)
    serial, parallel = MLP(2, [8, 1], seed=3), MLP(2, [8, 1], seed=3)
    runs = []
    for model, workers in ((serial, 1), (parallel, 2)):
        runs.append(fit(model, data, hinge, SGD(model.parameters(), lr=0.1, momentum=0.9),
                        epochs=3, batch_size=16, l2=1e-3, workers=workers))
    # the same averaged gradient, summed in another order: equal to rounding, step after step
    assert runs[1].loss == pytest.approx(runs[0].loss, rel=0, abs=1e-12)
    assert runs[1].accuracy == runs[0].accuracy
    assert runs[1].steps == runs[0].steps == 12
    assert [p.data for p in parallel.parameters()] == pytest.approx(
        [p.data for p in serial.parameters()], rel=0, abs=1e-12)
    with pytest.raises(ValueError, match="workers"):
        fit(serial, data, hinge, workers=0)


# ---- accuracy: the decision rule follows the output ----------------------------------------------

def by_hand(model, data, threshold):
    """The fraction right, counted here: a one-output model's score above `threshold` means 1."""
    return sum((model(x).data > threshold) == (y == 1) for x, y in data) / len(data)


def test_accuracy_of_a_probability_output_uses_one_half():
    """Issue 9: a sigmoid output trained with mse on 0/1 labels was reported at 0.5 (score > 0
    is always true for a probability); its real accuracy at 0.5 is far higher."""
    data = make_moons(200, noise=0.1, seed=0, signed=False)
    model = MLP(2, [8, 1], activation="tanh", output_activation="sigmoid", seed=0)
    history = fit(model, data, mse, Adam(model.parameters(), lr=0.05), epochs=30, batch_size=20,)
    assert by_hand(model, data, 0.0) == 0.5  # the old rule: every probability is > 0
    assert accuracy(model, data) == by_hand(model, data, 0.5) >= 0.95
    assert history.accuracy[-1] == accuracy(model, data)


@pytest.mark.parametrize("output_activation, threshold", [("linear", 0.0), ("tanh", 0.0), ("sigmoid", 0.5)])
@pytest.mark.parametrize("signed", [True, False])
def test_accuracy_threshold_by_output_activation(output_activation, threshold, signed):
    """A score with labels -1/+1 is right above 0, a probability above 0.5; a linear or tanh score
    with 0/1 labels may be a logit (0) or a regression onto the labels (0.5): it needs threshold=."""
    data = make_moons(40, noise=0.3, seed=1, signed=signed)
    model = MLP(2, [5, 1], output_activation=output_activation, seed=4)
    if output_activation != "sigmoid" and not signed:
        with pytest.raises(ValueError, match=r"pass threshold= \(0: score or logit, 0.5: else\)"):
            accuracy(model, data)
    else:
        assert accuracy(model, data) == by_hand(model, data, threshold)
    assert accuracy(model, data, threshold=0.25) == by_hand(model, data, 0.25)


def test_fit_measures_mse_on_0_1_labels_midway_and_logits_at_0():
    """Issue 21, 16b: a linear output trained with mse on 0/1 labels regresses onto them, and was
    measured against 0 (a wrong number: here 0.5 instead of 0.95); its rule is 0.5. The same output
    trained with bce_with_logits is a logit, measured against 0."""
    data = make_moons(60, noise=0.1, seed=3, signed=False)
    model = MLP(2, [8, 1], activation="tanh", seed=3)
    history = fit(model, data, mse, Adam(model.parameters(), lr=0.05), epochs=20, batch_size=10)
    assert history.accuracy[-1] == by_hand(model, data, 0.5) == accuracy(model, data, threshold=0.5) >= 0.9
    assert by_hand(model, data, 0.0) < history.accuracy[-1] - 0.2  # the old rule: far off
    logits = MLP(2, [8, 1], activation="tanh", seed=3)
    history = fit(logits, data, bce_with_logits, Adam(logits.parameters(), lr=0.05), epochs=5, batch_size=10)
    assert history.accuracy[-1] == by_hand(logits, data, 0.0) == accuracy(logits, data, threshold=0.0)


def test_accuracy_of_neurons_and_layers_follows_their_activation():
    data = make_moons(30, noise=0.3, seed=2, signed=False)
    random.seed(0)
    neuron, layer = Neuron(2, activation="sigmoid"), Layer(2, 1, activation="sigmoid")
    assert accuracy(neuron, data) == by_hand(neuron, data, 0.5)
    assert accuracy(layer, data) == by_hand(layer, data, 0.5)


def test_accuracy_with_several_outputs_is_argmax_and_refuses_a_label_out_of_range():
    data = make_blobs(30, seed=3)
    model = MLP(2, [4, 3], seed=3)
    right = sum(max(range(3), key=lambda j: model(x)[j].data) == y for x, y in data) / len(data)
    assert accuracy(model, data) == right
    with pytest.raises(ValueError, match="label 7 is not a class of a model with 3 outputs"):
        accuracy(model, data + [([0.0, 0.0], 7)])
    with pytest.raises(ValueError, match="label -1"):
        accuracy(model, [([0.0, 0.0], -1)])


def test_accuracy_without_a_rule_asks_for_a_threshold():
    model = MLP(2, [3, 1], output_activation="relu", seed=0)  # a ReLU output: no known threshold
    data = make_moons(20, seed=0, signed=False)
    with pytest.raises(ValueError, match="pass threshold="):
        accuracy(model, data)
    assert accuracy(model, data, threshold=0.1) == by_hand(model, data, 0.1)
    def custom(x):  # a model that is just a function: no rule either
        return Value(x[0])

    with pytest.raises(ValueError, match="threshold="):
        accuracy(custom, [([1.0], 1)])
    assert accuracy(custom, [([1.0], 1), ([-1.0], 0)], threshold=0.0) == 1.0
    for bad in (math.nan, math.inf, "0.5"):
        with pytest.raises((TypeError, ValueError), match="threshold|real number"):
            accuracy(model, data, threshold=bad)


@pytest.mark.parametrize("nout", [1, 3])
def test_accuracy_and_fit_refuse_nan_inputs(nout):
    model = MLP(2, [3, nout], seed=0)
    data = [([0.5, 0.5], 1), ([math.nan, 0.0], 0)]
    before = [p.data for p in model.parameters()]
    with pytest.raises(ValueError, match=r"example 1 \(\(\[nan, 0.0\], 0\)\) holds a NaN or an infinity"):
        accuracy(model, data)
    with pytest.raises(ValueError, match=r"example 1 .* holds a NaN or an infinity"):
        fit(model, data, mse if nout == 1 else softmax_cross_entropy, epochs=1)
    assert [p.data for p in model.parameters()] == before


NON_FINITE = {  # an example placed at index 3, and how the error spells it
    "NaN target": (([0.1, 1.0], math.nan), r"nan"),
    "infinite target": (([0.1, 1.0], -math.inf), r"-inf"),
    "NaN in a list target": (([0.1, 1.0], [0.0, math.nan]), r"\[0.0, nan\]"),
    "infinite input": (([math.inf, 1.0], 1), r"\[inf, 1.0\]"),
    "infinite Value input": (([0.5, Value(-math.inf)], 1), r"Value\(data=-inf"),
}


@pytest.mark.parametrize("name", sorted(NON_FINITE))
@pytest.mark.parametrize("compiled", [True, False])
def test_fit_and_accuracy_refuse_non_finite_inputs_and_targets_naming_the_example(name, compiled, monkeypatch):
    if not compiled:
        monkeypatch.setattr(train, "compile_loss", not_compilable)
    bad, spelling = NON_FINITE[name]
    nout = len(bad[1]) if isinstance(bad[1], list) else 1
    data = [(x, [float(y)] * nout if nout > 1 else y) for x, y in make_moons(10, seed=0)]
    data.insert(3, bad)
    model = MLP(2, [3, nout], seed=0)
    before = [p.data for p in model.parameters()]
    with pytest.raises(ValueError, match=rf"^fit: example 3 \(.*{spelling}.*\) holds a NaN or an infinity; "):
        fit(model, data, mse, epochs=1)
    assert [p.data for p in model.parameters()] == before  # refused before any step
    if nout == 1:
        with pytest.raises(ValueError, match=rf"^accuracy: example 3 \(.*{spelling}.*\) holds a NaN or an inf"):
            accuracy(model, data)


def not_pairs():
    """Data given in the wrong shape, and the index of the first example that is not (x, y)."""
    data = make_moons(10, seed=0)
    xs, ys = [x for x, _ in data], [y for _, y in data]
    yield (xs, ys), 0  # inputs and targets side by side instead of zipped
    yield [*data[:4], (xs[4],), *data[5:]], 4
    yield [*data[:2], (xs[2], ys[2], 0.5), *data[3:]], 2
    yield [*data[:7], 7.0, *data[8:]], 7


@pytest.mark.parametrize("compiled", [True, False])
def test_fit_and_accuracy_want_x_y_pairs_and_name_the_first_that_is_not(compiled, monkeypatch):
    if not compiled:
        monkeypatch.setattr(train, "compile_loss", not_compilable)
    for examples, index in not_pairs():
        model = MLP(2, [3, 1], seed=0)
        before = [p.data for p in model.parameters()]
        problem = rf"each example must be an \(x, y\) pair; got .* at index {index} .*zip\(xs, ys\)"
        with pytest.raises(ValueError, match=problem):
            fit(model, examples, hinge, epochs=1)
        with pytest.raises(ValueError, match=problem):
            accuracy(model, examples)
        assert [p.data for p in model.parameters()] == before


def test_fit_refuses_an_optimiser_that_does_not_hold_exactly_the_models_parameters():
    data = make_moons(20, seed=0)
    model = MLP(2, [4, 1], seed=0)
    params = model.parameters()
    before = [p.data for p in params]
    others = MLP(2, [4, 1], seed=0).parameters()  # equal numbers, other Values: the reported no-op
    for wrong in (others, params[:-1], params + params[:1], params + [Value(0.0)], others[:1] + params[1:]):
        with pytest.raises(ValueError, match=r"exactly model.parameters\(\)"):
            fit(model, data, hinge, SGD(wrong, lr=0.1), epochs=3)
    assert [p.data for p in params] == before
    twin = MLP(2, [4, 1], seed=0)  # any order will do, and gives the same steps
    fit(model, data, hinge, SGD(params[::-1], lr=0.1), epochs=3)
    fit(twin, data, hinge, SGD(twin.parameters(), lr=0.1), epochs=3)
    assert [p.data for p in params] == [p.data for p in twin.parameters()] != before


@settings(max_examples=20, deadline=None)
@given(nout=st.integers(1, 3), output_activation=st.sampled_from(["linear", "tanh", "sigmoid"]),
       grads=st.lists(st.floats(-5, 5), min_size=1, max_size=40), seed=st.integers(0, 9))
def test_accuracy_changes_no_state(nout, output_activation, grads, seed):
    """Every Value reachable from the parameters and the inputs keeps its data and grad (tests/state.py),
    and the global random state is left alone."""
    model = MLP(2, [4, nout], output_activation=output_activation, seed=seed)
    for p, g in zip(model.parameters(), (grads * 40)[:len(model.parameters())], strict=True):
        p.grad = g
    xs = [[Value(0.3), Value(-0.2)], [0.1, 0.9], [Value(-1.5), 2.0]]
    xs[0][0].grad = 7.0
    labels = [0, 1, 0] if nout > 1 else [1, -1, 1] if output_activation != "sigmoid" else [1, 0, 0]
    roots = [*model.parameters(), *(v for x in xs for v in x if isinstance(v, Value))]
    before, state = snapshot(*roots), random.getstate()
    accuracy(model, list(zip(xs, labels, strict=True)))
    assert_unchanged(before, snapshot(*roots))
    assert random.getstate() == state


def test_fit_reports_the_accuracy_of_the_model_at_the_end_of_each_epoch():
    """History.accuracy[e] is the model as it stands after epoch e, not a running count."""
    data = make_moons(60, noise=0.2, seed=4)
    model = MLP(2, [8, 1], seed=2)
    measured = []
    history = fit(model, data, hinge, SGD(model.parameters(), lr=0.2, momentum=0.9), epochs=6,
                  batch_size=8, on_epoch=lambda e, h: measured.append(accuracy(model, data)))
    assert history.accuracy == measured
    assert len(set(measured)) > 1  # it changed, so a running count would have differed somewhere


@pytest.mark.parametrize("l2", [-1.0, math.nan, math.inf, -1e-300])
def test_fit_refuses_a_negative_or_non_finite_l2(l2):
    model = MLP(2, [3, 1], seed=0)
    with pytest.raises(ValueError, match="l2 must be a finite number >= 0"):
        fit(model, make_moons(10, seed=0), hinge, l2=l2)


def test_fit_names_an_l2_of_the_wrong_type():
    model = MLP(2, [3, 1], seed=0)
    with pytest.raises(TypeError, match=r"^l2 must be a real number \(int or float\), got str: 'x'"):
        fit(model, make_moons(10, seed=0), hinge, l2="x")


def test_fit_takes_its_options_by_keyword():
    model = MLP(2, [3, 1], seed=0)
    with pytest.raises(TypeError):
        fit(model, make_moons(10, seed=0), hinge, None, 3)  # epochs=3, positionally: refused


# ---- micro-batches -------------------------------------------------------------------------------

def train_run(micro_batch_size, m, epochs=2, optimizer="sgd", l2=0.0, workers=1, n=None):
    data = make_moons(n or 2 * m + 1, noise=0.2, seed=m)
    model = MLP(2, [5, 1], activation="tanh", seed=1)
    opt = (SGD(model.parameters(), lr=0.1, momentum=0.9) if optimizer == "sgd"
           else Adam(model.parameters(), lr=0.01))
    history = fit(model, data, hinge, opt, epochs=epochs, batch_size=m, l2=l2,
                  micro_batch_size=micro_batch_size, workers=workers)
    return [p.data for p in model.parameters()], history


@settings(max_examples=25, deadline=None)
@given(m=st.integers(1, 12), k=st.integers(1, 13), optimizer=st.sampled_from(["sgd", "adam"]),
       l2=st.sampled_from([0.0, 1e-3]))
def test_micro_batches_give_the_whole_batch_parameters(m, k, optimizer, l2):
    """Each batch of m from micro-batches of at most k (k need not divide m): the parameters
    after training equal whole-batch training to 1e-12 (only the order of additions differs)."""
    whole, whole_history = train_run(None, m, optimizer=optimizer, l2=l2)
    micro, micro_history = train_run(k, m, optimizer=optimizer, l2=l2)
    assert micro == pytest.approx(whole, rel=0, abs=1e-12)
    assert micro_history.loss == pytest.approx(whole_history.loss, rel=0, abs=1e-12)
    assert micro_history.steps == whole_history.steps


def test_micro_batch_graphs_are_freed_before_the_next_is_built():
    """With micro-batches of 3, no more than 3 examples' graphs are alive at any time; the whole
    batch of 12 keeps all 12 alive until its backward pass."""

    class Tracked(Value):
        pass

    def peak_alive(micro_batch_size):
        refs, peak = [], [0]

        def loss_fn(output, y):
            node = Tracked(0.0, "", (hinge(output, y),), (1.0,), Op.CONST)
            node.data = node._parents[0].data
            refs.append(weakref.ref(node))
            peak[0] = max(peak[0], sum(r() is not None for r in refs))
            return node

        model = MLP(2, [3, 1], seed=0)
        fit(model, make_moons(24, seed=0), loss_fn, epochs=1, batch_size=12,
            micro_batch_size=micro_batch_size)
        return peak[0]

    assert peak_alive(3) == 3
    assert peak_alive(None) == 12


def test_micro_batches_over_workers_match_too():
    whole, _ = train_run(None, 8, n=24)
    with ThreadPoolExecutor(2) as executor:
        micro, _ = train_run(3, 8, n=24, workers=executor)
    assert micro == pytest.approx(whole, rel=0, abs=1e-12)


def test_micro_batching_a_model_that_couples_examples_is_refused():
    model = MLP(2, [4, 1], norm="batch", seed=0)  # batch norm: each example's output needs the batch
    before = [p.data for p in model.parameters()]
    with pytest.raises(ValueError, match="micro-batching and workers need independent examples.*batch norm"):
        fit(model, make_moons(10, seed=0), hinge, micro_batch_size=2)
    assert [p.data for p in model.parameters()] == before
    fit(model, make_moons(10, seed=0), hinge, epochs=1)  # whole batches are fine
    layer_norm = MLP(2, [4, 1], norm="layer", seed=0)  # normalises within one example: allowed
    whole, micro = MLP(2, [4, 1], norm="layer", seed=0), layer_norm
    fit(whole, make_moons(12, seed=0), hinge, epochs=2, batch_size=6)
    fit(micro, make_moons(12, seed=0), hinge, epochs=2, batch_size=6, micro_batch_size=4)
    assert [p.data for p in micro.parameters()] == pytest.approx([p.data for p in whole.parameters()],
                                                                  rel=0, abs=1e-12)


@pytest.mark.parametrize("k", [0, -1, 2.5, "2", True])
def test_micro_batch_size_must_be_a_whole_number(k):
    with pytest.raises(ValueError, match="micro_batch_size"):
        fit(MLP(2, [3, 1], seed=0), make_moons(10, seed=0), hinge, micro_batch_size=k)


# ---- the compiled path and the graph path give the same numbers ----------------------------------

@pytest.mark.parametrize("loss_fn,data,nout,make_optimizer", [
    (hinge, make_moons(60, noise=0.1, seed=5), 1, lambda ps: SGD(ps, lr=0.1, momentum=0.9)),
    (bce_with_logits, make_moons(40, noise=0.1, seed=6, signed=False), 1, lambda ps: Adam(ps, lr=0.02)),
    (softmax_cross_entropy, make_blobs(45, seed=7), 3, lambda ps: Adam(ps, lr=0.02)),
])
def test_fit_compiled_and_on_the_graph_gives_the_same_history_and_model_bit_for_bit(loss_fn, data, nout,
                                                                                      make_optimizer, monkeypatch):
    runs, calls = [], []
    real_call = MLP.__call__
    monkeypatch.setattr(MLP, "__call__", lambda self, x: calls.append(x) or real_call(self, x))
    for compiled in (True, False):
        if not compiled:
            monkeypatch.setattr(train, "compile_loss", not_compilable)
        model = MLP(2, [8, 8, nout], seed=8)
        calls.clear()
        history = fit(model, data, loss_fn, make_optimizer(model.parameters()), epochs=3, batch_size=16, l2=1e-4)
        # compiled: the model runs only to trace (steps and the accuracy pass run the compiled code)
        assert len(calls) < 4 * 16 if compiled else len(calls) == 2 * 3 * len(data)
        runs.append((history.loss, history.accuracy, history.steps, [p.data for p in model.parameters()]))
    assert runs[0] == runs[1]  # exactly: every number equal


def test_a_dead_worker_in_fit_is_worker_died():
    with ThreadPoolExecutor(1) as executor:
        executor.shutdown()  # (a broken executor stands for a dead worker: BrokenExecutor)
        broken = mock.Mock(spec=executor)
        from concurrent.futures import BrokenExecutor
        broken.submit.side_effect = BrokenExecutor("gone")
        model = MLP(2, [3, 1], seed=0)
        before = [p.data for p in model.parameters()]
        with pytest.raises(WorkerDied, match="a worker process died.*unchanged"):
            fit(model, make_moons(8, seed=0), hinge, epochs=1, batch_size=4, workers=broken)
        assert [p.data for p in model.parameters()] == before


def test_fits_l2_gradient_without_a_node_is_the_textbook_step_bit_for_bit():
    """Issue 22: fit adds 2·α·p into each gradient instead of building l2_penalty's node and
    backpropagating it. Every parameter equals the textbook loop's, (batch_mean(...) +
    l2_penalty(...)).backward() then SGD, exactly (a weight of -0.0 included)."""
    from micrograd_batch import batch_mean, minibatches
    from micrograd_batch.losses import l2_penalty

    data = make_moons(40, noise=0.1, seed=3)
    fitted, textbook = MLP(2, [6, 1], seed=2), MLP(2, [6, 1], seed=2)
    fitted.parameters()[0].data = textbook.parameters()[0].data = -0.0
    history = fit(fitted, data, hinge, SGD(fitted.parameters(), lr=0.1, momentum=0.5), epochs=2, batch_size=8,
                  l2=1e-2, seed=5)
    optimizer, losses = SGD(textbook.parameters(), lr=0.1, momentum=0.5), []
    for epoch in (1, 2):
        for batch in minibatches(data, 8, seed=5 + epoch):
            optimizer.zero_grad()
            total = batch_mean([hinge(textbook(x), y) for x, y in batch]) + l2_penalty(textbook.parameters(), 1e-2)
            total.backward()
            optimizer.step()
            losses.append(total.data)
    assert [p.data for p in fitted.parameters()] == [p.data for p in textbook.parameters()]
    assert history.loss[0] == pytest.approx(sum(losses[:5]) / 5, rel=1e-15)


def test_a_second_fit_on_the_same_model_generates_no_code_and_a_changed_structure_does(monkeypatch):
    """Issue 22: every fit() call re-traced the model (2.8 s on digits). The code is generated
    once per structure: a second fit on the same model, or on a new model of the same
    structure, generates nothing; a model whose structure changed gets its own code."""
    from micrograd_batch import compile as compile_module

    generated, real_sources = [], compile_module._sources
    monkeypatch.setattr(compile_module, "_sources", lambda structure: generated.append(structure)
                        or real_sources(structure))
    compile_module._program.cache_clear()
    data = make_blobs(30, seed=4)
    model = MLP(2, [5, 3], seed=1)
    for run in range(2):
        fit(model, data, softmax_cross_entropy, epochs=1, batch_size=10)
        assert len(generated) == 1, run
    fit(MLP(2, [5, 3], seed=2), data, softmax_cross_entropy, epochs=1, batch_size=10)
    assert len(generated) == 1
    model.layers.append(Layer(3, 3, activation="linear"))
    before = [p.data for p in model.parameters()]
    fit(model, data, softmax_cross_entropy, epochs=1, batch_size=10)
    assert len(generated) == 2 and generated[1][1][-1] == ("linear",) * 3
    assert [p.data for p in model.parameters()] != before  # the new layer was trained too
