"""Fuzzed inputs to training and persistence: junk gives a correct result or a clear, documented
error (see tests/junk.py for what counts as documented), and a call that fails leaves the model
and the optimiser exactly as they were.

The fuzz tests of the core modules live beside each module's other tests (test_engine.py,
test_batch.py, test_nn.py, test_losses.py, test_optim.py, test_data.py); these belong in
test_train.py and test_persist.py, which other branches are changing at the moment.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from junk import FUZZ, attempt, junk
from state import parameter_state

from micrograd_batch import MLP, SGD, TrainingDiverged, accuracy, fit, hinge, mse
from micrograd_batch.persist import ModelFileError, load_model, load_parameters_into, save_model


@FUZZ
@given(junk)
def test_accuracy_with_junk(examples):
    ok, acc = attempt(accuracy, MLP(2, [2], seed=0), examples)
    if ok:
        assert 0.0 <= acc <= 1.0


# ---- training ----------------------------------------------------------------------------------------

GOOD = [([0.5, -0.5], 1), ([-0.3, 0.8], -1), ([0.1, 0.1], 1)]


class RecordingSGD(SGD):
    """SGD that remembers the parameters after each completed step."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.after = [[p.data for p in self.params]]

    def step(self):
        super().step()
        self.after.append([p.data for p in self.params])


@FUZZ
@given(st.lists(st.one_of(st.sampled_from(GOOD), junk), min_size=0, max_size=8),
       st.one_of(st.integers(1, 4), junk), st.one_of(st.integers(1, 2), junk), junk, junk)
@example([GOOD[0]] * 4 + [([1e200, 1e200], 1)], 2, 1, 0.0, 0)
def test_fit_with_junk(examples, batch_size, epochs, l2, seed):
    model = MLP(2, [3, 1], seed=3)
    opt = RecordingSGD(model.parameters(), lr=0.1)
    ok, history = attempt(fit, model, examples, hinge, opt, epochs=epochs,
                          batch_size=batch_size, l2=l2, seed=seed)
    # success or not, the model holds the parameters of the last completed step
    assert [p.data for p in model.parameters()] == opt.after[-1]
    if ok:
        assert history.steps == len(opt.after) - 1 >= 1
    elif isinstance(history, (FloatingPointError, OverflowError)):
        assert isinstance(history, TrainingDiverged), f"fit let {history!r} escape"


@pytest.mark.parametrize("kwargs", [
    dict(model=None), dict(model="mlp"), dict(loss_fn=None), dict(loss_fn=3),
    dict(optimizer="sgd"), dict(optimizer=[1]), dict(on_epoch=5), dict(epochs=2.5),
])
def test_fit_refuses_junk_arguments_up_front(kwargs):
    model = MLP(2, [3, 1], seed=3)
    args = dict(model=model, examples=GOOD, loss_fn=hinge)
    args.update(kwargs)
    before = parameter_state(model)
    with pytest.raises(TypeError if "epochs" not in kwargs else ValueError):
        fit(**args)
    assert parameter_state(model) == before  # refused before any step


def test_fit_regression_with_several_outputs_reports_no_accuracy():
    model = MLP(2, [3, 2], seed=0)
    history = fit(model, [([0.1, 0.2], [0.5, -0.5]), ([0.3, -0.1], [0.2, 0.1])], mse,
                  epochs=1)
    assert history.accuracy == [None]


# ---- saving and loading ----------------------------------------------------------------------------

@FUZZ
@given(junk)
@example(3)  # once taken as file descriptor 3: read and closed (pytest's saved stdin)
@example(True)  # == 1: stdout
@example(0)
def test_save_and_load_with_junk(thing):
    is_path = isinstance(thing, (str, bytes, os.PathLike))
    fds = sorted(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    with tempfile.TemporaryDirectory() as d:
        target = Path(d) / "m.json"
        ok, _ = attempt(save_model, thing, target)
        assert ok == isinstance(thing, MLP) and target.exists() == ok
        for fn in (load_model, lambda p: load_parameters_into(MLP(2, [1], seed=0), p)):
            try:
                fn(thing)
            except (TypeError, ValueError, OSError) as error:
                assert str(error)
                assert is_path or isinstance(error, TypeError), f"{thing!r} is not a path: {error!r}"
            else:
                assert is_path
        if isinstance(thing, (str, bytes)) and thing:
            with pytest.raises((ModelFileError, OSError)):
                load_model(Path(d) / "absent")
    if fds is not None:  # nothing opened and left open, nothing of ours closed
        assert sorted(os.listdir("/proc/self/fd")) == fds
