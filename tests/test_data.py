"""Data sets and mini-batches: seeded, complete, and checked."""

import math

import numpy as np
import pytest
from hypothesis import example, given
from junk import FUZZ, attempt, junk, sizes

from micrograd_batch import make_moons, minibatches


def test_minibatches_cover_every_example_once_per_epoch():
    examples = list(range(23))
    batches = list(minibatches(examples, 5, shuffle=True, seed=1))
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    assert sorted(x for b in batches for x in b) == examples
    assert [x for b in batches for x in b] != examples  # shuffled


def test_minibatches_are_seeded_and_can_drop_the_last():
    examples = list(range(10))
    assert list(minibatches(examples, 3, seed=4)) == list(minibatches(examples, 3, seed=4))
    assert list(minibatches(examples, 3, seed=4)) != list(minibatches(examples, 3, seed=5))
    assert [len(b) for b in minibatches(examples, 3, drop_last=True)] == [3, 3, 3]
    assert list(minibatches(examples, 4, shuffle=False)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_minibatch_errors():
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            list(minibatches([1, 2], bad))
    with pytest.raises(ValueError, match="no examples"):
        list(minibatches([], 2))
    with pytest.raises(TypeError, match="list of examples"):
        list(minibatches(5, 2))



@pytest.mark.parametrize("examples, batch_size, error", [
    ([1, 2], 0, ValueError), ([], 2, ValueError), (5, 2, TypeError), ("ab", 1, TypeError)])
def test_minibatches_checks_its_arguments_when_called_not_at_the_first_batch(examples, batch_size, error):
    with pytest.raises(error):
        minibatches(examples, batch_size)  # no next(): the call itself refuses


def test_minibatches_makes_its_batches_one_at_a_time():
    examples = list(range(10))
    batches = minibatches(examples, 4, shuffle=False)
    examples[5] = "changed"  # read when its batch is made, not when minibatches was called
    assert next(batches) == [0, 1, 2, 3] and next(batches) == [4, "changed", 6, 7]

def test_make_moons_is_seeded_balanced_and_shaped():
    a, b = make_moons(50, noise=0.1, seed=3), make_moons(50, noise=0.1, seed=3)
    assert a == b and a != make_moons(50, noise=0.1, seed=4)
    assert len(a) == 50 and all(len(x) == 2 for x, _ in a)
    assert sorted({y for _, y in a}) == [-1, 1]
    assert sum(y == 1 for _, y in a) == 25
    assert {y for _, y in make_moons(10, signed=False)} == {0, 1}
    clean = make_moons(20, noise=0.0)
    assert all(abs(x[0] ** 2 + x[1] ** 2 - 1) < 1e-12 for x, y in clean if y == -1)


def test_numpy_integers_are_accepted_for_sizes_and_seeds():
    examples = list(range(10))
    assert list(minibatches(examples, np.int64(4), seed=np.int64(3))) == list(minibatches(examples, 4, seed=3))
    assert make_moons(np.int64(12), seed=np.int64(1)) == make_moons(12, seed=1)


# ---- junk -------------------------------------------------------------------------------------------

@FUZZ
@given(junk, sizes, junk, junk, junk)
@example({"a": 1, "b": 2}, 1, False, 0, False)  # a dict has a length but no positions
@example({1, 2, 3}, 2, True, 0, False)
def test_minibatches_with_junk(examples, batch_size, shuffle, seed, drop_last):
    ok, batches = attempt(lambda: list(minibatches(examples, batch_size, shuffle, seed, drop_last)))
    if ok:
        items = [e for b in batches for e in b]
        assert all(0 < len(b) <= batch_size for b in batches)
        if not drop_last:
            assert sorted(map(id, items)) == sorted(map(id, examples))


@FUZZ
@given(sizes, junk, junk, junk)
@example(10, math.nan, 0, True)
@example(10, math.inf, 0, True)
def test_make_moons_with_junk(n, noise, seed, signed):
    ok, data = attempt(make_moons, n, noise, seed, signed)
    if ok:
        assert len(data) == n
        assert all(len(x) == 2 and all(math.isfinite(v) for v in x) for x, _ in data)
