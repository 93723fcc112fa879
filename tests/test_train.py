"""The training loop: it learns two-moons, reports progress, and stops cleanly on a NaN."""

import math
import time

import pytest

from micrograd_batch import (
    MLP, SGD, Adam, TrainingDiverged, accuracy, bce_with_logits, fit, hinge, make_blobs,
    make_moons, mse, softmax_cross_entropy,
)


def test_two_moons_reaches_97_percent_training_accuracy_in_seconds():
    data = make_moons(100, noise=0.1, seed=0)
    model = MLP(2, [16, 16, 1], seed=1)
    started = time.perf_counter()
    history = fit(model, data, hinge, SGD(model.parameters(), lr=0.1, momentum=0.9),
                  epochs=30, batch_size=16, l2=1e-4, verbose=False)
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
                  batch_size=10, verbose=False)
    assert history.accuracy[-1] >= 0.9
    assert accuracy(model, data) >= 0.9


def test_verbose_prints_one_line_per_epoch(capsys):
    model = MLP(2, [4, 1], seed=0)
    fit(model, make_moons(20, seed=0), hinge, epochs=3, batch_size=5)
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert "accuracy" in lines[-1]
    fit(model, make_moons(20, seed=0), hinge, epochs=2, batch_size=5, verbose=False)
    assert capsys.readouterr().err == ""


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
        fit(model, data, loss_fn, SGD(model.parameters(), lr=0.1), epochs=3, batch_size=10,
            verbose=False)
    assert (info.value.epoch, info.value.step) == (2, 4)
    assert "nan" in str(info.value)
    assert [p.data for p in model.parameters()] == snapshot["params"]


def test_exploding_training_stops_with_a_clear_error():
    data = [([1e60, 1e60], 1.0), ([-1e60, 1e60], -1.0)]
    model = MLP(2, [4, 1], seed=0)
    with pytest.raises(TrainingDiverged, match=r"epoch [1-5], step 1: .*(inf|nan)"):
        fit(model, data, mse, SGD(model.parameters(), lr=1.0), epochs=5, batch_size=2,
            verbose=False)
    assert all(math.isfinite(p.data) for p in model.parameters())


def test_fit_argument_errors():
    model = MLP(2, [2, 1], seed=0)
    data = make_moons(10, seed=0)
    with pytest.raises(ValueError, match="epochs"):
        fit(model, data, hinge, epochs=0)
    with pytest.raises(ValueError, match="batch_size"):
        fit(model, data, hinge, batch_size=0, verbose=False)
    with pytest.raises(ValueError, match="no examples"):
        fit(model, [], hinge, verbose=False)


def test_fit_with_worker_processes_follows_the_serial_run():
    data = make_moons(64, noise=0.1, seed=5)
    serial, parallel = MLP(2, [8, 1], seed=3), MLP(2, [8, 1], seed=3)
    runs = []
    for model, workers in ((serial, 1), (parallel, 2)):
        runs.append(fit(model, data, hinge, SGD(model.parameters(), lr=0.1, momentum=0.9),
                        epochs=3, batch_size=16, l2=1e-3, verbose=False, workers=workers))
    # the same averaged gradient, summed in another order: equal to rounding, step after step
    assert runs[1].loss == pytest.approx(runs[0].loss, rel=0, abs=1e-12)
    assert runs[1].accuracy == runs[0].accuracy
    assert runs[1].steps == runs[0].steps == 12
    assert [p.data for p in parallel.parameters()] == pytest.approx(
        [p.data for p in serial.parameters()], rel=0, abs=1e-12)
    with pytest.raises(ValueError, match="workers"):
        fit(serial, data, hinge, workers=0, verbose=False)
