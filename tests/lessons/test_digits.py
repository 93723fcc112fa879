"""Lesson 10, digits: one epoch per example and one as matrices agree from the same weights, the
matrices reach 96 % test accuracy, and without scikit-learn the lesson skips in one line. Under
CI=true scikit-learn and numpy must be there (CI installs the `digits` and `fast` extras)."""

import importlib
import os
from unittest import mock

import pytest

from micrograd_batch.lessons import digits


@pytest.fixture(scope="module")
def lesson():
    for name in ("sklearn", "numpy"):
        if os.environ.get("CI") == "true":
            importlib.import_module(name)
        else:
            pytest.importorskip(name, reason="the digits lesson needs pip install '.[digits,fast]'")
    return digits.digits_lesson(epochs=20)


@pytest.mark.slow
def test_one_epoch_per_example_and_as_matrices_agree_from_the_same_weights(lesson):
    assert 0.0 < lesson.max_difference < 1e-12  # rounding only: a matmul adds in its own order


def test_the_matrices_are_faster_and_reach_96_percent(lesson):
    assert lesson.matrix_seconds < lesson.per_example_seconds
    assert lesson.test_accuracy >= 0.96
    assert lesson.history.accuracy[-1] > lesson.test_accuracy - 0.05 and len(lesson.history.loss) == 20


def test_the_split_is_the_whole_data_set_once():
    pytest.importorskip("sklearn", reason="the digits lesson needs pip install '.[digits]'")
    train, test = digits.digits()
    assert (len(train), len(test)) == (1438, 359)
    assert len({tuple(x) for x, _ in train + test}) > 1700 and all(0.0 <= v <= 1.0 for x, _ in train for v in x)


def test_without_scikit_learn_the_lesson_says_so_in_one_line(capsys):
    with mock.patch("importlib.util.find_spec", return_value=None):
        assert digits.demo_digits() == []
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1 and "pip install 'micrograd_batch[digits,fast]'" in printed


def test_the_demo_prints_both_epochs_the_code_and_the_accuracy(lesson, capsys):
    with mock.patch.object(digits, "digits_lesson", return_value=lesson):
        digits.demo_digits(quick=True)
    printed = capsys.readouterr().out
    assert "gW1[...] = D1.T @ A0" in printed and "faster" in printed
    assert f"test accuracy {lesson.test_accuracy:.1%}" in printed
