"""The test helpers themselves can fail: the injector really interrupts, snapshots see changes."""

import gc

import pytest
from faults import count_line_events, interrupt_everywhere
from state import assert_unchanged, snapshot

from micrograd_batch import MLP, Value


def test_injector_interrupts_every_line_of_an_operation():
    seen = []

    def setup():
        return [Value(2.0) * Value(3.0)]

    def check(state, interrupted):
        seen.append(interrupted)
        gc.enable()  # an interrupt in gc_paused's own cleanup may leave it off (tested below)

    state = setup()
    total = count_line_events(lambda: state[0].backward())
    runs = interrupt_everywhere(setup, lambda s: s[0].backward(), check)
    assert runs == total > 3
    assert all(seen)  # every run was interrupted somewhere inside backward


def test_snapshot_sees_a_changed_grad_deep_in_the_graph():
    model = MLP(2, [3, 1], seed=0)
    out = model([1.0, -2.0])
    before = snapshot(out)
    assert_unchanged(before, snapshot(out))
    model.parameters()[0].grad = 1e-300
    with pytest.raises(AssertionError, match="a Value changed"):
        assert_unchanged(before, snapshot(out))


def test_gc_paused_reenables_the_collector_when_interrupted_inside_the_block():
    from micrograd_batch import _checks
    from micrograd_batch._checks import gc_paused

    def paused():
        with gc_paused():
            x = Value(1.0)
            x = x * 2.0
        return x

    left_disabled = []

    def check(state, interrupted):
        if not gc.isenabled():  # a Ctrl-C in the cleanup leaves its block counted as open
            left_disabled.append(interrupted)
            _checks._open_pauses.clear()
            gc.enable()

    # every interrupt except one landing in the cleanup itself (its line events) leaves the collector on
    runs = interrupt_everywhere(lambda: None, lambda s: paused(), check)
    assert runs > 5 and len(left_disabled) <= 4
