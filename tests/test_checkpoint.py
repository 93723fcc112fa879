"""Checkpoints: a run killed half-way resumes and ends bit for bit where the uninterrupted run ends.

The guarantee is tested with real processes: run B trains in a subprocess that SIGKILLs itself at
a point after epoch 3 (inside on_epoch, mid-epoch inside the loss, between writing a checkpoint
and renaming it, or from a timer at a random moment); a fresh process resumes it. Its final
parameters and every epoch's loss must equal run A's (uninterrupted, in this process) bit for
bit, its accuracies and step count exactly. History.seconds is wall-clock time and not compared.
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import checkpoint_run
from micrograd_batch import MLP, SGD, Adam, fit, hinge, make_moons, mse
from micrograd_batch import persist
from micrograd_batch.persist import ModelFileError, load_checkpoint, save_checkpoint

HERE = Path(__file__).resolve().parent


def uninterrupted(case):
    model, data, loss_fn, optimizer, kwargs = checkpoint_run.setup(case)
    return checkpoint_run.outcome(model, fit(model, data, loss_fn, optimizer, **kwargs))


def run_child(case, checkpoint, result, kill=""):
    """Run checkpoint_run.py in a new process group; afterwards kill whatever is left of that
    group (worker processes of a killed parent). Returns the exit code."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent), str(HERE)]))
    args = [sys.executable, str(HERE / "checkpoint_run.py"), case, str(checkpoint), str(result)]
    child = subprocess.Popen(args + ([kill] if kill else []), env=env, start_new_session=True,
                             stderr=subprocess.PIPE, text=True)
    try:
        _, err = child.communicate(timeout=60)
    finally:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        child.wait()
    return child.returncode, err


rng = random.Random(2026)  # the random kill points, the same on every run of the suite
KILLS = [
    ("sgd", f"loss_call:{rng.randint(3 * 48 + 1, 6 * 48)}"),  # mid-epoch, somewhere in epochs 4-6
    ("sgd", f"timer:{rng.random():.3f}"),
    ("sgd", "before_replace:4"),
    ("adam", "on_epoch:4"),
    ("adam", f"timer:{rng.random():.3f}"),
    ("micro", f"loss_call:{rng.randint(3 * 48 + 1, 6 * 48)}"),
    pytest.param("workers", "on_epoch:3", marks=pytest.mark.slow),  # (worker processes start in a second)
    pytest.param("workers", f"timer:{rng.random():.3f}", marks=pytest.mark.slow),
]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("case, kill", KILLS)
def test_a_run_killed_after_epoch_3_resumes_bit_for_bit(tmp_path, case, kill):
    checkpoint, result = tmp_path / "run.ckpt", tmp_path / "result.json"
    code, err = run_child(case, checkpoint, result, kill)
    assert code == -signal.SIGKILL, f"the run was not killed (exit {code}): {err}"
    assert not result.exists()
    killed_after = json.loads(checkpoint.read_text())["extra"]["epochs_done"]
    # the resumed process has epochs left to train (a timer may, on a machine that suddenly
    # speeds up, fire only after the last epoch: then resuming just returns the History)
    assert 3 <= killed_after <= (6 if kill.startswith("timer") else 5)
    code, err = run_child(case, checkpoint, result)  # a fresh process resumes
    assert code == 0, err
    assert json.loads(result.read_text()) == uninterrupted(case)


# ---- in one process: the same guarantee, the file, and what is refused ---------------------------

def sgd_setup(seed=3, hidden=6, lr=0.1, n=40):
    model = MLP(2, [hidden, 1], activation="tanh", seed=seed)
    return model, make_moons(n, noise=0.2, seed=1), SGD(model.parameters(), lr=lr, momentum=0.9)


def params(model):
    return [p.data.hex() for p in model.parameters()]


def whole_and_resumed(build, path, epochs, stop_after, batch_size):
    """Train a `build()` run for `epochs` in one go, and another in two calls of fit: up to
    `stop_after` with a checkpoint, then resumed by a fresh model and optimiser.
    Returns (whole model, its History, resumed model, its History)."""
    model, data, opt = build()
    whole = fit(model, data, hinge, opt, epochs=epochs, batch_size=batch_size)
    first, data, opt1 = build()
    fit(first, data, hinge, opt1, epochs=stop_after, batch_size=batch_size, checkpoint=path)
    second, data, opt2 = build()
    resumed = fit(second, data, hinge, opt2, epochs=epochs, batch_size=batch_size,
                  checkpoint=path, resume=True)
    return model, whole, second, resumed


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_resuming_after_epoch_3_equals_the_uninterrupted_run(tmp_path, optimizer):
    def build():
        model, data, sgd = sgd_setup()
        return model, data, sgd if optimizer == "sgd" else Adam(model.parameters(), lr=0.02)

    model, whole, second, resumed = whole_and_resumed(build, tmp_path / "c", 6, 3, batch_size=8)
    assert params(second) == params(model)
    assert (resumed.loss, resumed.accuracy, resumed.steps) == (whole.loss, whole.accuracy, whole.steps)


def test_a_checkpoint_holds_model_optimiser_and_progress_exactly(tmp_path):
    model, data, opt = sgd_setup()
    seen = []

    def on_epoch(epoch, history):  # the checkpoint of this epoch is already on disk
        saved = json.loads((tmp_path / "c").read_text())
        seen.append(saved["extra"]["epochs_done"])
        assert saved["optimizer"]["velocity"] == opt.velocity
        assert saved["extra"]["history"]["loss"] == history.loss

    history = fit(model, data, hinge, opt, epochs=3, batch_size=8, seed=5,
                  checkpoint=tmp_path / "c", on_epoch=on_epoch)
    assert seen == [1, 2, 3]
    saved = json.loads((tmp_path / "c").read_text())
    assert saved["format"] == "micrograd_batch.checkpoint" and saved["format_version"] == 2
    assert saved["optimizer"]["kind"] == "SGD"
    assert {k: saved["optimizer"][k] for k in ("lr", "momentum", "weight_decay")} == {"lr": 0.1, "momentum": 0.9,
                                                                                     "weight_decay": 0.0}
    assert saved["extra"]["run"]["seed"] == 5 and saved["extra"]["history"]["steps"] == history.steps
    fresh, _, fresh_opt = sgd_setup(seed=9)
    load_checkpoint(tmp_path / "c", fresh, fresh_opt)
    assert params(fresh) == params(model) and fresh_opt.velocity == opt.velocity


def test_adam_state_round_trips_exactly(tmp_path):
    model, data, _ = sgd_setup()
    adam = Adam(model.parameters(), lr=0.01, betas=(0.8, 0.99), eps=1e-7, weight_decay=1e-4)
    fit(model, data, hinge, adam, epochs=2, batch_size=8)
    save_checkpoint(tmp_path / "c", model, adam, {"note": [1, 2.5, None]})
    fresh, _, _ = sgd_setup(seed=8)
    fresh_adam = Adam(fresh.parameters(), lr=0.01, betas=(0.8, 0.99), eps=1e-7, weight_decay=1e-4)
    assert load_checkpoint(tmp_path / "c", fresh, fresh_adam) == {"note": [1, 2.5, None]}
    assert (fresh_adam.m, fresh_adam.v, fresh_adam.t) == (adam.m, adam.v, adam.t) and adam.t == 10
    assert params(fresh) == params(model)


def test_seed_none_is_drawn_once_and_kept_in_the_checkpoint(tmp_path):
    model, data, opt = sgd_setup()
    fit(model, data, hinge, opt, epochs=2, batch_size=8, seed=None, checkpoint=tmp_path / "c")
    seed = json.loads((tmp_path / "c").read_text())["extra"]["run"]["seed"]
    resumed, data, opt2 = sgd_setup()
    fit(resumed, data, hinge, opt2, epochs=4, batch_size=8, seed=None,
        checkpoint=tmp_path / "c", resume=True)
    reference, data, opt3 = sgd_setup()
    fit(reference, data, hinge, opt3, epochs=4, batch_size=8, seed=seed)
    assert params(resumed) == params(reference)


def test_resume_without_a_file_starts_from_scratch(tmp_path):
    model, data, opt = sgd_setup()
    plain = fit(model, data, hinge, opt, epochs=2, batch_size=8)
    other, data, opt2 = sgd_setup()
    resumed = fit(other, data, hinge, opt2, epochs=2, batch_size=8,
                  checkpoint=tmp_path / "new.ckpt", resume=True)
    assert params(other) == params(model) and resumed.loss == plain.loss
    assert (tmp_path / "new.ckpt").exists()


def test_resuming_a_finished_run_trains_no_more(tmp_path):
    model, data, opt = sgd_setup()
    fit(model, data, hinge, opt, epochs=3, batch_size=8, checkpoint=tmp_path / "c")
    again, data, opt2 = sgd_setup()
    history = fit(again, data, hinge, opt2, epochs=3, batch_size=8,
                  checkpoint=tmp_path / "c", resume=True)
    assert params(again) == params(model) and len(history.loss) == 3
    shorter, data, opt3 = sgd_setup()
    with pytest.raises(ModelFileError, match="3 epochs done, for a run of epochs=2"):
        fit(shorter, data, hinge, opt3, epochs=2, batch_size=8, checkpoint=tmp_path / "c",
            resume=True)


MISMATCHES = {
    "architecture": (dict(hidden=7), {}, "sizes"),
    "optimiser settings": (dict(lr=0.2), {}, "lr = 0.1"),
    "data size": (dict(n=44), {}, "examples is 40"),
    "data content": (dict(n=40), dict(data_seed=2), "the examples differ"),
    "batch size": ({}, dict(batch_size=4), "batch_size is 8"),
    "seed": ({}, dict(seed=1), "seed is 0"),
    "l2": ({}, dict(l2=1e-3), "l2 is 0.0"),
    "micro-batches": ({}, dict(micro_batch_size=2), "micro_batch_size is None"),
    "loss function": ({}, dict(loss_fn=mse), "loss_fn is 'micrograd_batch.losses.hinge', "
                                             "this run has 'micrograd_batch.losses.mse'"),
}


@pytest.mark.parametrize("name", sorted(MISMATCHES) + ["optimiser kind"])
def test_a_checkpoint_of_another_run_is_refused_naming_the_mismatch(tmp_path, name):
    model, data, opt = sgd_setup()
    fit(model, data, hinge, opt, epochs=2, batch_size=8, checkpoint=tmp_path / "c")
    before = (tmp_path / "c").read_bytes()
    if name == "optimiser kind":
        other, other_data, _ = sgd_setup()
        other_opt, kwargs, problem = Adam(other.parameters()), {}, "'SGD' optimiser, this one is 'Adam'"
    else:
        setup_kwargs, kwargs, problem = MISMATCHES[name]
        other, other_data, other_opt = sgd_setup(**setup_kwargs)
    if "data_seed" in kwargs:
        other_data = make_moons(40, noise=0.2, seed=kwargs.pop("data_seed"))
    start, state = params(other), list(other_opt.velocity) if isinstance(other_opt, SGD) else None
    loss_fn = kwargs.pop("loss_fn", hinge)
    with pytest.raises(ModelFileError, match=problem):
        fit(other, other_data, loss_fn, other_opt, **{**dict(epochs=4, batch_size=8), **kwargs},
            checkpoint=tmp_path / "c", resume=True)
    assert params(other) == start  # nothing was loaded into the model
    assert state is None or other_opt.velocity == state
    assert (tmp_path / "c").read_bytes() == before  # nor was the checkpoint touched


class Margin:
    """A loss given as a callable object (named by its class)."""

    def __call__(self, score, y):
        return hinge(score, y)


@pytest.mark.parametrize("loss_fn,name", [
    (hinge, "micrograd_batch.losses.hinge"),
    (functools.partial(hinge), "functools.partial(micrograd_batch.losses.hinge)"),
    (Margin(), f"{__name__}.Margin"),
])
def test_the_checkpoint_names_the_loss_function(tmp_path, loss_fn, name):
    model, data, opt = sgd_setup()
    fit(model, data, loss_fn, opt, epochs=1, batch_size=8, checkpoint=tmp_path / "c")
    assert json.loads((tmp_path / "c").read_text())["extra"]["run"]["loss_fn"] == name


def test_resume_without_a_checkpoint_is_refused(tmp_path):
    model, data, opt = sgd_setup()
    start = params(model)
    with pytest.raises(ValueError, match="resume=True needs checkpoint="):
        fit(model, data, hinge, opt, epochs=2, resume=True)
    assert params(model) == start


@pytest.mark.parametrize("resume", [False, True])
@pytest.mark.parametrize("where", ["a directory", "a missing folder"])
def test_a_checkpoint_path_that_cannot_be_written_is_refused_before_training(tmp_path, where, resume):
    model, data, opt = sgd_setup()
    start, epochs_seen = params(model), []
    if where == "a directory":
        path, error, named = tmp_path, IsADirectoryError, str(tmp_path)
    else:
        path, error, named = tmp_path / "no" / "c.json", FileNotFoundError, os.path.realpath(tmp_path / "no")
    with pytest.raises(error) as info:
        fit(model, data, hinge, opt, epochs=2, checkpoint=path, resume=resume,
            on_epoch=lambda epoch, history: epochs_seen.append(epoch))
    assert info.value.filename == named and ".tmp" not in str(info.value)
    assert params(model) == start and epochs_seen == [] and os.listdir(tmp_path) == []


def damaged_versions(text):
    """Truncations, flipped bytes and foreign files made from a good checkpoint's text."""
    data = json.loads(text)
    yield "empty", ""
    for cut in (1, len(text) // 3, len(text) // 2, len(text) - 2):
        yield f"cut at {cut}", text[:cut]
    yield "a model file", json.dumps(data["model"])
    yield "a list", "[1, 2, 3]"
    yield "newer version", text.replace('"format_version": 2', '"format_version": 3', 1)
    yield "version 1", text.replace('"format_version": 2', '"format_version": 1', 1)
    data["optimizer"]["velocity"] = data["optimizer"]["velocity"][:-1]
    yield "velocity too short", json.dumps(data)
    data = json.loads(text)
    data["extra"]["history"]["loss"].append("oops")
    yield "bad history", json.dumps(data)
    data = json.loads(text)
    data["extra"]["epochs_done"] = -1
    yield "negative epochs", json.dumps(data)
    for key, value in (("seconds", 10**400), ("seconds", 1e400), ("steps", 2.5), ("accuracy", [0.5, True])):
        # issue 20: a huge integer in history.seconds gave OverflowError instead of ModelFileError
        data = json.loads(text)
        data["extra"]["history"][key] = value
        yield f"history {key} = {value!r:.20}", json.dumps(data).replace("Infinity", "1e400")
    data = json.loads(text)
    data["extra"]["run"]["seed"] = 2.5
    yield "a seed that is not a whole number", json.dumps(data)


def test_a_damaged_or_foreign_checkpoint_is_refused_and_left_alone(tmp_path):
    model, data, opt = sgd_setup()
    fit(model, data, hinge, opt, epochs=2, batch_size=8, checkpoint=tmp_path / "good")
    text = (tmp_path / "good").read_text()
    for name, damaged in damaged_versions(text):
        path = tmp_path / "damaged"
        path.write_text(damaged)
        other, other_data, other_opt = sgd_setup()
        start = params(other)
        with pytest.raises(ModelFileError) as info:
            fit(other, other_data, hinge, other_opt, epochs=4, batch_size=8,
                checkpoint=path, resume=True)
        assert str(path) in str(info.value), name
        assert path.read_text() == damaged, name
        assert params(other) == start and other_opt.velocity == [0.0] * len(start), name


def test_only_what_can_be_restored_exactly_is_checkpointed(tmp_path):
    model, data, opt = sgd_setup()

    class MySGD(SGD):
        pass

    with pytest.raises(TypeError, match="SGD or Adam"):
        fit(model, data, hinge, MySGD(model.parameters()), epochs=1, checkpoint=tmp_path / "c")
    with pytest.raises(ValueError, match="exactly model.parameters"):
        fit(model, data, hinge, SGD(model.parameters()[:-1]), epochs=1, checkpoint=tmp_path / "c")
    with pytest.raises(TypeError, match="str, bytes or os.PathLike"):
        fit(model, data, hinge, opt, epochs=1, checkpoint=3)
    with pytest.raises(ValueError, match="JSON|serializ|NaN"):
        save_checkpoint(tmp_path / "c", model, opt, {"x": float("nan")})
    assert not (tmp_path / "c").exists()


def test_a_version_1_checkpoint_is_refused_with_a_pointer_to_the_docs(tmp_path):
    """Earlier versions wrote format_version 1 (docs/checkpoints.md: such a run starts afresh)."""
    model, data, opt = sgd_setup()
    fit(model, data, hinge, opt, epochs=2, batch_size=8, checkpoint=tmp_path / "new")
    saved = json.loads((tmp_path / "new").read_text())
    (tmp_path / "old").write_text(json.dumps({**saved, "format_version": 1}))
    other, _, other_opt = sgd_setup(seed=4)
    start, velocity = params(other), list(other_opt.velocity)
    with pytest.raises(ModelFileError, match="format_version 1 is not supported .written by an earlier version"):
        load_checkpoint(tmp_path / "old", other, other_opt)
    assert params(other) == start and other_opt.velocity == velocity


def test_a_kill_while_writing_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    """In-process stand-in for the subprocess test: the rename of epoch 3's checkpoint fails."""
    model, data, opt = sgd_setup()
    real_replace, calls = os.replace, [0]

    def replace(src, dst):
        calls[0] += 1
        if calls[0] == 4:  # (1: the checkpoint before epoch 1)
            raise OSError("disk gone")
        real_replace(src, dst)

    monkeypatch.setattr(persist.os, "replace", replace)
    with pytest.raises(OSError, match="disk gone"):
        fit(model, data, hinge, opt, epochs=5, batch_size=8, checkpoint=tmp_path / "c")
    assert json.loads((tmp_path / "c").read_text())["extra"]["epochs_done"] == 2
    assert os.listdir(tmp_path) == ["c"]


def test_a_batch_norm_model_resumes_with_its_running_statistics_bit_for_bit(tmp_path):
    def build():
        model = MLP(2, [5, 1], norm="batch", seed=4)
        return model, make_moons(30, noise=0.2, seed=2), Adam(model.parameters(), lr=0.02)

    def running(model):
        return [[v.hex() for v in n.running_mean + n.running_var] for n in model.norms]

    model, whole, second, resumed = whole_and_resumed(build, tmp_path / "c", 4, 2, batch_size=10)
    assert running(second) == running(model) and running(model) != running(build()[0])
    assert params(second) == params(model) and resumed.loss == whole.loss
    assert resumed.accuracy == whole.accuracy  # measured in eval mode, with the running statistics
