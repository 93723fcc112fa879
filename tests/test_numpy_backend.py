"""The numpy backend: matrix code that agrees with the scalar path to 1e-12 relative, optimiser
steps that mirror optim.py exactly, parameters written back to the Values whatever ends an
epoch, and a clear refusal of every model, loss and input it does not handle."""

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

np = pytest.importorskip("numpy", reason="the numpy backend needs numpy (pip install 'micrograd_batch[fast]')")

from micrograd_batch import MLP, SGD, Adam, Value, bce_with_logits, hinge, mse, softmax_cross_entropy  # noqa: E402
from micrograd_batch.compile import NotCompilable  # noqa: E402
from micrograd_batch.nn import Layer, Neuron  # noqa: E402
from micrograd_batch.numpy_backend import MatrixLoss, Trainer  # noqa: E402

from gradcheck import numeric_gradient  # noqa: E402
from helpers import graph_path  # noqa: E402

ACTS = ["relu", "tanh", "sigmoid", "linear"]
LOSSES = [hinge, bce_with_logits, mse, softmax_cross_entropy]


def assert_agree(ours, reference, what, rtol=1e-12):
    """‖ours − reference‖∞ <= rtol · ‖reference‖∞ (exactly equal where the reference is all 0)."""
    scale = max((abs(r) for r in reference), default=0.0)
    worst = max((abs(o - r) for o, r in zip(ours, reference, strict=True)), default=0.0)
    assert worst <= rtol * scale, f"{what}: differs by {worst:.3g}, {worst / scale if scale else math.inf:.3g} relative"


def target(loss, k, rng):
    """A random target of the kind `loss` takes, for k outputs."""
    if loss is hinge:
        return rng.choice([-1, 1])
    if loss is bce_with_logits:
        return rng.choice([0, 1])
    if loss is softmax_cross_entropy:
        return rng.randrange(k)
    return rng.uniform(-2, 2) if k == 1 else [rng.uniform(-2, 2) for _ in range(k)]


def problem(loss, nin, hidden, k, activation, output_activation, m, seed):
    """A model, and a batch of m examples for it."""
    rng = random.Random(seed)
    model = MLP(nin, [*hidden, k], activation=activation, output_activation=output_activation, seed=seed)
    batch = [([rng.uniform(-3, 3) for _ in range(nin)], target(loss, k, rng)) for _ in range(m)]
    return model, batch


@given(loss=st.sampled_from(LOSSES), nin=st.integers(1, 4), hidden=st.lists(st.integers(1, 5), max_size=2),
       outputs=st.integers(1, 4), activation=st.sampled_from(ACTS), output_activation=st.sampled_from(ACTS),
       m=st.integers(1, 6), seed=st.integers(0, 10**6))
def test_losses_gradients_and_outputs_agree_with_the_scalar_path(loss, nin, hidden, outputs, activation,
                                                                 output_activation, m, seed):
    k = 1 if loss in (hinge, bce_with_logits) else max(outputs, 2) if loss is softmax_cross_entropy else outputs
    model, batch = problem(loss, nin, hidden, k, activation, output_activation, m, seed)
    compiled = MatrixLoss(model, loss)
    losses, grad, outs = compiled.run(batch)
    scalar_losses = [loss(model(x), y).data for x, y in batch]
    mean_loss, scalar_grad = graph_path(model, loss, batch)
    assert_agree(losses, scalar_losses, "per-example losses")
    assert_agree(grad, scalar_grad, "gradient")
    flat = [v for o in outs for v in (o if isinstance(o, list) else [o])]
    scalar_outs = [v.data for x, _ in batch for v in (model(x) if k > 1 else [model(x)])]
    assert_agree(flat, scalar_outs, "outputs")
    model.zero_grad()
    assert compiled.grad(batch) == pytest.approx(mean_loss, rel=1e-12, abs=1e-300)
    assert_agree([p.grad for p in model.parameters()], scalar_grad, "grad() into .grad")


def test_a_seed_scales_the_gradient_and_params_replace_the_models():
    model, batch = problem(softmax_cross_entropy, 3, [4], 3, "tanh", "linear", 5, 1)
    compiled = MatrixLoss(model, softmax_cross_entropy)
    _, grad, _ = compiled.run(batch)
    _, summed, _ = compiled.run(batch, seed=1.0)
    assert_agree([g * len(batch) for g in grad], summed, "seed 1 = m times the mean's gradient")
    before = [p.data for p in model.parameters()]
    theta = [v + 0.25 for v in before]

    def loss_at(params):
        losses, _, _ = compiled.run(batch, params=params)
        return sum(losses) / len(losses)

    numeric = numeric_gradient(loss_at, theta)  # central differences: an independent reference
    _, at_theta, _ = compiled.run(batch, params=theta)
    assert max(abs(a - b) for a, b in zip(at_theta, numeric, strict=True)) < 1e-7
    assert [p.data for p in model.parameters()] == before  # run touches no Value
    with pytest.raises(ValueError, match="params must be"):
        compiled.run(batch, params=theta[:-1])


def test_the_source_is_the_matrix_form():
    source = MatrixLoss(MLP(2, [3, 1], seed=0), hinge).source
    for line in ["Z1 = A0 @ W1.T + b1", "A1 = np.maximum(Z1, 0.0)", "gW2[...] = D2.T @ A1",
                 "D1 = (D2 @ W2) * (Z1 > 0.0)", "gW1[...] = D1.T @ A0", "gb1[...] = D1.sum(axis=0)"]:
        assert line in source
    assert source.count("@") == 5  # forward 2, backward 2 + 1: one matmul per layer each way


@pytest.mark.parametrize("model, loss, message", [
    (MLP(2, [3, 1], norm="batch"), hinge, "norm layers"),
    (MLP(2, [3, 1], norm="layer"), hinge, "norm layers"),
    (type("MyMLP", (MLP,), {})(2, [1]), hinge, "not MyMLP"),
    (MLP(2, [3, 1]), lambda out, y: (out - y) ** 2, "library's losses"),
    (MLP(2, [3, 2]), hinge, "hinge does not take this model's 2 output"),
    (MLP(2, [3, 2]), bce_with_logits, "does not take this model's 2 output"),
    (MLP(2, [3, 1]), softmax_cross_entropy, "does not take this model's 1 output"),
])
def test_models_and_losses_it_cannot_write_as_matrices_are_refused(model, loss, message):
    with pytest.raises(NotCompilable, match=message):
        MatrixLoss(model, loss)


def test_a_layer_of_mixed_activations_is_refused():
    model = MLP(2, [3, 1], seed=0)
    model.layers[0].neurons[1]._act = Value.tanh  # no longer one matrix of the same activation
    with pytest.raises(NotCompilable, match="one activation per layer"):
        MatrixLoss(model, hinge)


@pytest.mark.parametrize("model", [Layer(3, 2, activation="tanh"), Neuron(3, activation="sigmoid")])
def test_a_layer_or_a_neuron_alone_is_a_model_too(model):
    rng = random.Random(0)
    batch = [([rng.uniform(-2, 2) for _ in range(3)], [1.0, -1.0] if type(model) is Layer else 0.5) for _ in range(5)]
    losses, grad, _ = MatrixLoss(model, mse).run(batch)
    assert_agree(grad, graph_path(model, mse, batch)[1], "gradient")


def test_a_model_changed_after_compiling_is_refused():
    model = MLP(2, [3, 1], seed=0)
    compiled = MatrixLoss(model, hinge)
    model.layers[0] = Layer(2, 3)
    with pytest.raises(NotCompilable, match="changed"):
        compiled.run([([0.0, 1.0], 1)])


@pytest.mark.parametrize("loss, batch, error, message", [  # the scalar path's own errors
    (hinge, [([0.0, 1.0], 0)], ValueError, r"hinge needs labels in \(-1.0, 1.0\)"),
    (bce_with_logits, [([0.0, 1.0], -1)], ValueError, r"labels in \(0.0, 1.0\)"),
    (softmax_cross_entropy, [([0.0, 1.0], 3)], ValueError, r"class label must be an int in \[0, 3\)"),
    (softmax_cross_entropy, [([0.0, 1.0], 1.0)], ValueError, "class label must be an int"),
    (mse, [([0.0, 1.0], [1.0, 2.0])], ValueError, "expected 1 targets"),
    (hinge, [([0.0, 1.0, 2.0], 1)], ValueError, "expected 2 inputs"),
    (hinge, [(["0", "1"], 1)], TypeError, "real number"),
    (hinge, [([Value(0.0), Value(1.0)], 1)], TypeError, "not Values"),
    (hinge, [], ValueError, "empty batch"),
])
def test_bad_examples_raise_a_clear_error(loss, batch, error, message):
    model = MLP(2, [3, 3 if loss is softmax_cross_entropy else 1], seed=0)
    with pytest.raises(error, match=message):
        MatrixLoss(model, loss).run(batch)


# ---- the trainer --------------------------------------------------------------------------------

OPTIMISERS = [
    lambda ps: SGD(ps, lr=0.1),
    lambda ps: SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3),
    lambda ps: Adam(ps, lr=0.01, weight_decay=1e-3),
]


@pytest.mark.parametrize("make", OPTIMISERS)
def test_a_step_on_arrays_is_the_optimisers_step_bit_for_bit(make):
    model, batch = problem(softmax_cross_entropy, 3, [4], 3, "relu", "linear", 6, 2)
    twin = MLP(3, [4, 3], seed=2)  # the same weights
    compiled = MatrixLoss(model, softmax_cross_entropy)
    optimizer, reference = make(model.parameters()), make(list(reversed(twin.parameters())))  # any order
    trainer = Trainer(compiled, batch, optimizer, l2=1e-3)
    for _ in range(3):
        with trainer.epoch() as step:
            step(batch)
        # the reference: this step's gradient (from the same arrays) given to the real optimiser
        _, grad, _ = MatrixLoss(twin, softmax_cross_entropy).run(batch)
        for p, g in zip(twin.parameters(), grad, strict=True):
            p.grad = g + 2.0 * 1e-3 * p.data
        reference.step()
        assert [p.data for p in model.parameters()] == [p.data for p in twin.parameters()]
    for name in ("velocity", "m", "v", "t"):
        if hasattr(reference, name):
            mine, theirs = getattr(optimizer, name), getattr(reference, name)
            assert (mine == theirs[::-1] if isinstance(mine, list) else mine == theirs), name


def test_an_epoch_of_steps_agrees_with_the_graph_path():
    model, batch = problem(hinge, 2, [5, 5], 1, "relu", "linear", 12, 3)
    twin = MLP(2, [5, 5, 1], seed=3)
    trainer = Trainer(MatrixLoss(model, hinge), batch, SGD(model.parameters(), lr=0.1, momentum=0.5), l2=1e-4)
    reference = SGD(twin.parameters(), lr=0.1, momentum=0.5)
    with trainer.epoch() as step:
        for start in range(0, 12, 4):
            loss = step(batch[start:start + 4])
            mean, _ = graph_path(twin, hinge, batch[start:start + 4])
            mean += 1e-4 * math.fsum(p.data ** 2 for p in twin.parameters())
            for p in twin.parameters():
                p.grad += 2.0 * 1e-4 * p.data
            reference.step()
            assert loss == pytest.approx(mean, rel=1e-12)
    assert_agree([p.data for p in model.parameters()], [p.data for p in twin.parameters()], "parameters", 1e-11)


def test_an_exception_in_the_epoch_writes_the_arrays_back():
    model, batch = problem(mse, 2, [3], 1, "tanh", "linear", 4, 4)
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = Trainer(MatrixLoss(model, mse), batch, optimizer)
    before = [p.data for p in model.parameters()]
    with pytest.raises(KeyboardInterrupt), trainer.epoch() as step:
        step(batch)
        step(batch)
        assert [p.data for p in model.parameters()] == before  # the steps so far live in the arrays
        raise KeyboardInterrupt
    assert [p.data for p in model.parameters()] == trainer.S[0].tolist() != before
    assert optimizer.velocity == trainer.S[1].tolist() and any(optimizer.velocity)


def test_a_non_finite_step_changes_nothing_and_the_last_good_state_is_written_back():
    model, batch = problem(mse, 2, [3], 1, "relu", "linear", 4, 5)
    optimizer = SGD(model.parameters(), lr=1e300)
    trainer = Trainer(MatrixLoss(model, mse), batch, optimizer)
    with pytest.raises(FloatingPointError, match="no parameter was updated"), trainer.epoch() as step:
        step(batch)  # parameters near 1e300 now
        good = trainer.S.copy()
        try:
            step(batch)  # the squares overflow
        finally:
            assert (trainer.S == good).all()
    assert [p.data for p in model.parameters()] == good[0].tolist()


def test_an_interrupted_write_back_is_finished():
    model, batch = problem(hinge, 2, [3], 1, "relu", "linear", 4, 6)
    trainer = Trainer(MatrixLoss(model, hinge), batch, SGD(model.parameters(), lr=0.1))
    writes = []

    class Interrupting(Trainer):
        def _write_back(self):
            writes.append(1)
            super()._write_back()
            if len(writes) == 1:
                raise KeyboardInterrupt  # as if Ctrl-C came after the first write

    trainer.__class__ = Interrupting
    with pytest.raises(KeyboardInterrupt), trainer.epoch() as step:
        step(batch)
    assert len(writes) == 2 and [p.data for p in model.parameters()] == trainer.S[0].tolist()


def test_the_trainer_refuses_other_optimisers_and_foreign_parameters():
    model, batch = problem(hinge, 2, [3], 1, "relu", "linear", 4, 7)
    compiled = MatrixLoss(model, hinge)
    with pytest.raises(NotCompilable, match="SGD and Adam"):
        Trainer(compiled, batch, type("MySGD", (SGD,), {})(model.parameters()))
    with pytest.raises(ValueError, match="exactly the model's parameters"):
        Trainer(compiled, batch, SGD(model.parameters()[1:]))


def test_the_matrix_form_lesson_shows_the_generated_code(capsys):
    from micrograd_batch.lessons import matrix_form

    matrix_form._say_numpy_code(MLP(2, [2, 1], activation="tanh", seed=2))
    printed = capsys.readouterr().out
    assert "D1 = (D2 @ W2) * (1.0 - A1 * A1)" in printed and "gW1[...] = D1.T @ A0" in printed


# ---- compile_loss(backend="numpy") and fit(backend="numpy") ---------------------------------------

def test_compile_loss_and_fit_take_a_backend_and_refuse_unknown_ones():
    from micrograd_batch import compile_loss, fit

    model, batch = problem(hinge, 2, [3], 1, "relu", "linear", 8, 8)
    assert isinstance(compile_loss(model, hinge, backend="numpy"), MatrixLoss)
    with pytest.raises(ValueError, match="backend must be"):
        compile_loss(model, hinge, backend="torch")
    with pytest.raises(ValueError, match="backend"):
        fit(model, batch, hinge, epochs=1, backend="torch")
    with pytest.raises(ValueError, match="workers or micro_batch_size"):
        fit(model, batch, hinge, epochs=1, backend="numpy", micro_batch_size=2)
    with pytest.raises(NotCompilable, match="library's losses"):
        fit(model, batch, lambda out, y: hinge(out, y), epochs=1, backend="numpy")


def test_without_numpy_the_backend_is_a_one_line_error(monkeypatch):
    import sys
    from unittest import mock

    import micrograd_batch
    from micrograd_batch import compile_loss

    monkeypatch.delattr(micrograd_batch, "numpy_backend")  # as if never imported ...
    with mock.patch.dict(sys.modules, {"numpy": None}):  # ... and numpy not installed
        del sys.modules["micrograd_batch.numpy_backend"]
        with pytest.raises(ModuleNotFoundError) as error:
            compile_loss(MLP(2, [1]), hinge, backend="numpy")
    assert str(error.value) == "backend='numpy' needs numpy: pip install 'micrograd_batch[fast]'"


def fit_run(tmp_path, epochs, resume=False, on_epoch=None, make=OPTIMISERS[2], model=None):
    """A fit on the numpy backend, checkpointed in tmp_path; returns the model, optimiser and History."""
    from micrograd_batch import fit

    fresh, batch = problem(softmax_cross_entropy, 3, [4], 3, "tanh", "linear", 20, 9)
    model = model or fresh
    optimizer = make(model.parameters())
    history = fit(model, batch, softmax_cross_entropy, optimizer, epochs=epochs, batch_size=6, l2=1e-3,
                  checkpoint=tmp_path / "run.json", resume=resume, backend="numpy",
                  on_epoch=on_epoch)
    return model, optimizer, history


def test_on_epoch_and_checkpoints_see_the_arrays_written_back_and_resume_is_exact(tmp_path):
    from micrograd_batch.persist import load_checkpoint

    seen = []

    def on_epoch(epoch, history):
        model = MLP(3, [4, 3], activation="tanh", seed=9)
        optimizer = OPTIMISERS[2](model.parameters())
        load_checkpoint(tmp_path / "run.json", model, optimizer)  # saved before on_epoch
        assert [p.data for p in model.parameters()] == [p.data for p in killed.parameters()]  # the same numbers
        seen.append(optimizer.t)
        if epoch == 2:
            raise KeyboardInterrupt  # killed after epoch 2

    killed = problem(softmax_cross_entropy, 3, [4], 3, "tanh", "linear", 20, 9)[0]
    with pytest.raises(KeyboardInterrupt):
        fit_run(tmp_path, 4, on_epoch=on_epoch, model=killed)
    assert seen == [4, 8]  # 4 steps per epoch
    resumed, resumed_optimizer, history = fit_run(tmp_path, 4, resume=True)
    (tmp_path / "other").mkdir()
    straight, straight_optimizer, straight_history = fit_run(tmp_path / "other", 4)
    assert [p.data for p in resumed.parameters()] == [p.data for p in straight.parameters()]
    assert resumed_optimizer.m == straight_optimizer.m and resumed_optimizer.t == straight_optimizer.t == 16
    assert history.loss == straight_history.loss


def test_an_interrupted_fit_leaves_the_last_steps_numbers_in_the_model(tmp_path, monkeypatch):
    calls, written = [], []
    step, write_back = Trainer.step, Trainer._write_back

    def interrupted_step(self, batch):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C during the third step
        return step(self, batch)

    monkeypatch.setattr(Trainer, "step", interrupted_step)
    monkeypatch.setattr(Trainer, "_write_back", lambda self: (written.append(self.S.copy()), write_back(self)))
    model = problem(softmax_cross_entropy, 3, [4], 3, "tanh", "linear", 20, 9)[0]
    before = [p.data for p in model.parameters()]
    with pytest.raises(KeyboardInterrupt):
        fit_run(tmp_path, 3, make=OPTIMISERS[1], model=model)
    assert len(calls) == 3 and len(written) == 1  # written back once, by the interrupt
    assert [p.data for p in model.parameters()] == written[0][0].tolist() != before


def test_a_diverging_fit_keeps_the_last_good_numbers():
    from micrograd_batch import TrainingDiverged, fit

    model, batch = problem(mse, 2, [3], 1, "relu", "linear", 8, 10)
    with pytest.raises(TrainingDiverged, match="epoch 1, step 2"):
        fit(model, batch, mse, SGD(model.parameters(), lr=1e300), epochs=2, batch_size=4, backend="numpy")
    assert all(math.isfinite(p.data) for p in model.parameters())
    assert max(abs(p.data) for p in model.parameters()) > 1e250  # the first step's numbers, written back


def test_changes_on_epoch_makes_reach_the_next_epoch():
    from micrograd_batch import fit

    model, batch = problem(hinge, 2, [3], 1, "relu", "linear", 8, 11)
    optimizer = SGD(model.parameters(), lr=0.1)
    seen = []

    def on_epoch(epoch, history):
        seen.append([p.data for p in model.parameters()])
        for p in model.parameters():
            p.data = 0.5  # the next epoch starts from these numbers, and with this learning rate
        optimizer.lr = 1e-300

    fit(model, batch, hinge, optimizer, epochs=2, batch_size=8, on_epoch=on_epoch, backend="numpy")
    assert seen[0] != [0.5] * len(seen[0])
    assert seen[1] == pytest.approx([0.5] * len(seen[0]), abs=1e-290)
