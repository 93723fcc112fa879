"""Data sets and mini-batches: seeded, complete, and checked."""

import pytest

from micrograd_batch import make_blobs, make_moons, minibatches


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


def test_make_moons_is_seeded_balanced_and_shaped():
    a, b = make_moons(50, noise=0.1, seed=3), make_moons(50, noise=0.1, seed=3)
    assert a == b and a != make_moons(50, noise=0.1, seed=4)
    assert len(a) == 50 and all(len(x) == 2 for x, _ in a)
    assert sorted({y for _, y in a}) == [-1, 1]
    assert sum(y == 1 for _, y in a) == 25
    assert {y for _, y in make_moons(10, signed=False)} == {0, 1}
    clean = make_moons(20, noise=0.0)
    assert all(abs(x[0] ** 2 + x[1] ** 2 - 1) < 1e-12 for x, y in clean if y == -1)


def test_make_blobs_labels_each_centre():
    data = make_blobs(30, seed=0)
    assert sorted({y for _, y in data}) == [0, 1, 2]
    with pytest.raises(ValueError, match="n_samples"):
        make_blobs(1)
