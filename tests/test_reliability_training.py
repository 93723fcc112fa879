"""Long runs: memory stays flat over 10,000 steps, graphs are freed, and divergence stops cleanly.

Memory is measured with `tracemalloc` (every Python allocation, traced) at the end of epoch 1
(after 1,000 steps) and epoch 10 (after 10,000 steps) of one `fit` call. Each step builds and
drops a graph of ~60 Values (~10 KB); a leak of even one small object per step would add
>= 9,000 objects, hundreds of KB, between the two measurements. What may legitimately grow is
`History` (two numbers per epoch, nine epochs: well under 2 KB).
"""

from __future__ import annotations

import gc
import math
import tracemalloc
import weakref

import pytest

from micrograd_batch import MLP, SGD, Adam, TrainingDiverged, Value, fit, hinge, make_moons, minibatches, mse
from micrograd_batch.persist import load_model, save_model
from micrograd_batch.engine import Op

STEPS_PER_EPOCH = 1_000
EPOCHS = 10
BATCH = 2
GROWTH_LIMIT = 16 * 1024  # bytes allowed between step 1,000 and step 10,000


class Tracked(Value):
    """A Value that can be weakly referenced (Value itself has __slots__ without __weakref__)."""


def tracked_loss(refs, every, until):
    """A hinge loss passed through a Tracked node; a weak reference to every `every`-th of the
    first `until` kept (none later, so that the references themselves do not grow memory)."""
    calls = [0]

    def loss_fn(output, y):
        loss = hinge(output, y)
        node = Tracked(loss.data, "", (loss,), (1.0,), Op.CONST)
        if calls[0] % every == 0 and calls[0] < until:
            refs.append(weakref.ref(node))
        calls[0] += 1
        return node

    return loss_fn


def count_values():
    return sum(isinstance(o, Value) for o in gc.get_objects())


def our_cyclic_garbage() -> list:
    """The objects in reference cycles that this package made: Values, its own classes, and
    frames, functions or tracebacks of its code. Other libraries' background threads (a Dask
    cluster an earlier test started, say) may leave cycles of their own meanwhile; not ours."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return [o for o in gc.garbage if is_ours(o)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def is_ours(obj: object) -> bool:
    """Whether `obj` is a Value, an instance of a package class, or package code at work."""
    if isinstance(obj, Value) or type(obj).__module__.startswith("micrograd_batch"):
        return True
    code = getattr(obj, "f_code", None) or getattr(obj, "__code__", None) or getattr(
        getattr(obj, "tb_frame", None), "f_code", None)
    return code is not None and "micrograd_batch" in code.co_filename


@pytest.mark.slow
def test_ten_thousand_steps_keep_memory_flat_and_free_every_graph():
    examples = make_moons(STEPS_PER_EPOCH * BATCH, noise=0.1, seed=0)
    model = MLP(2, [4, 1], seed=0)
    refs: list[weakref.ref] = []
    readings = {}

    def on_epoch(epoch, history):
        if epoch in (1, EPOCHS):
            readings[epoch] = (tracemalloc.get_traced_memory()[0], count_values(),
                               sum(r() is not None for r in refs))

    gc.collect()
    values_before = count_values()  # the parameters, and whatever earlier tests left alive
    tracemalloc.start()
    gc.disable()  # anything freed from now on is freed by reference counting alone
    try:
        loss_fn = tracked_loss(refs, every=7, until=STEPS_PER_EPOCH * BATCH)
        history = fit(model, examples, loss_fn, SGD(model.parameters(), lr=0.05),
                      epochs=EPOCHS, batch_size=BATCH, on_epoch=on_epoch)
        cyclic_garbage = our_cyclic_garbage()
    finally:
        gc.enable()
        tracemalloc.stop()

    assert history.steps == STEPS_PER_EPOCH * EPOCHS
    (mem1, values1, alive1), (mem10, values10, alive10) = readings[1], readings[EPOCHS]
    print(f"traced memory after {STEPS_PER_EPOCH} steps: {mem1} B, after "
          f"{STEPS_PER_EPOCH * EPOCHS} steps: {mem10} B (growth {mem10 - mem1} B)")
    assert mem10 - mem1 < GROWTH_LIMIT
    # no Value survives a step: as many alive after 1,000 and 10,000 steps as before training
    assert values1 == values10 == values_before >= len(model.parameters())
    # every tracked loss node of every past step is gone, without the cyclic collector's help
    assert len(refs) > 100 and alive1 == alive10 == 0
    assert cyclic_garbage == [], f"training created reference cycles: {cyclic_garbage[:5]}"
    assert history.loss[-1] < history.loss[0]  # and it did train


@pytest.mark.slow
def test_a_leak_would_be_caught():
    """The measurement can fail: keep one small list per step alive and growth exceeds the limit."""
    kept = []
    model = MLP(2, [4, 1], seed=0)

    def leaky(output, y):
        kept.append([output.data, y])
        return hinge(output, y)

    tracemalloc.start()
    try:
        fit(model, make_moons(200, seed=1), leaky, epochs=1, batch_size=BATCH)
        before = tracemalloc.get_traced_memory()[0]
        fit(model, make_moons(2000, seed=1), leaky, epochs=1, batch_size=BATCH)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before > GROWTH_LIMIT


# ---- divergence -------------------------------------------------------------------------------------

def step_snapshots(model, batch_size, inner, poison_at=None, poison=None):
    """A loss_fn that records the parameters at the start of every step (its first call in a
    batch, before anything of that step is changed) and, at call `poison_at`, calls `poison`."""
    snaps = []
    calls = [0]

    def loss_fn(output, y):
        if calls[0] % batch_size == 0:
            snaps.append([p.data for p in model.parameters()])
        call = calls[0]
        calls[0] += 1
        loss = inner(output, y)
        return poison(output, y, loss) if call == poison_at else loss

    return loss_fn, snaps


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_nan_loss_mid_training_stops_with_last_good_parameters(opt, tmp_path):
    examples = make_moons(40, seed=3)  # 10 steps of 4 per epoch
    model = MLP(2, [6, 1], seed=3)
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9) if opt == "sgd" else Adam(model.parameters(), lr=0.01)
    start = [p.data for p in model.parameters()]
    poison_at = 4 * (10 + 6) + 2  # epoch 2, step 7, third example
    loss_fn, snaps = step_snapshots(model, 4, hinge, poison_at, lambda o, y, loss: loss * math.nan)
    with pytest.raises(TrainingDiverged, match="epoch 2, step 7") as info:
        fit(model, examples, loss_fn, optimizer, epochs=5, batch_size=4)
    assert (info.value.epoch, info.value.step) == (2, 7)
    assert len(snaps) == 17
    now = [p.data for p in model.parameters()]
    assert now == snaps[-1]  # exactly the parameters at the start of the failing step
    assert now != snaps[-2] and now != start  # which are not those of an earlier step
    # the last good model is finite, so it can be saved and reloaded exactly
    save_model(model, tmp_path / "last_good.json")
    assert [p.data for p in load_model(tmp_path / "last_good.json").parameters()] == now


def test_huge_data_point_diverges_at_its_step():
    """A data point of 1e300 makes the output and the squared error overflow to inf."""
    examples = [([0.1 * i, -0.05 * i], 0.5) for i in range(12)]
    order = [i for batch in minibatches(list(range(12)), 2, seed=0 + 1) for i in batch]  # fit's epoch 1
    examples[order[9]] = ([1e300, 1e300], 0.5)  # in step 5 of epoch 1 (batches of 2)
    model = MLP(2, [3, 1], activation="linear", seed=4)
    loss_fn, snaps = step_snapshots(model, 2, mse)
    with pytest.raises(TrainingDiverged, match="epoch 1, step 5"):
        fit(model, examples, loss_fn, epochs=3, batch_size=2)
    assert len(snaps) == 5 and [p.data for p in model.parameters()] == snaps[-1] != snaps[0]
    assert all(math.isfinite(p.data) for p in model.parameters())


def test_nan_gradient_with_a_finite_loss_is_caught():
    """sqrt(|o - o|) is 0, but its gradient is inf·0 = NaN: the optimiser refuses the step."""
    examples = make_moons(8, seed=5)
    model = MLP(2, [3, 1], seed=5)

    def poison(output, y, loss):
        return loss + (output - output).abs().sqrt()

    loss_fn, snaps = step_snapshots(model, 4, hinge, poison_at=4 * 3, poison=poison)
    with pytest.raises(TrainingDiverged, match="epoch 2, step 2.*gradient"):
        fit(model, examples, loss_fn, epochs=3, batch_size=4)
    assert [p.data for p in model.parameters()] == snaps[-1] != snaps[0]


def test_step_that_would_overflow_the_parameters_is_refused():
    """Finite gradients, but lr · grad overflows: the step is refused, nothing changes."""
    model = MLP(2, [3, 1], activation="tanh", seed=6)
    start = [p.data for p in model.parameters()]
    with pytest.raises(TrainingDiverged, match="epoch 1, step 1.*would make parameter"):
        fit(model, [([1.0, -1.0], 1e6)], mse, SGD(model.parameters(), lr=1e307), epochs=1,
            batch_size=1)
    assert [p.data for p in model.parameters()] == start


def test_infinite_logits_diverge_cleanly():
    from micrograd_batch import softmax_cross_entropy
    model = MLP(1, [2], seed=7)  # linear: logit_j = w_j x + b_j
    model.layers[0].neurons[0].w[0].data, model.layers[0].neurons[1].w[0].data = 2.0, -2.0
    examples = [([0.5], 0), ([1e308], 1)]  # the second's logits overflow to ±inf (an inf input is refused)
    if [i for batch in minibatches([0, 1], 1, seed=0 + 1) for i in batch] != [0, 1]:  # fit's epoch 1
        examples.reverse()
    with pytest.raises(TrainingDiverged, match="epoch 1, step 2"):
        fit(model, examples, softmax_cross_entropy, epochs=1, batch_size=1)
