"""Lesson 10: a real data set -- handwritten digits, one example at a time, then as matrices.

scikit-learn ships 1,797 handwritten digits (8 × 8 grey pixels, classes 0-9) inside its package:
no download. An MLP 64-32-10 (ReLU hidden layer) learns them with softmax cross-entropy and SGD
with momentum, batch 32, twice from the same weights:

  * per example: `fit`'s compiled scalar path, every example its own forward and backward pass,
    joined by batch_mean (the δ recursion once per example);
  * as matrices: `fit(..., backend="numpy")`, the batch one 32 × 64 matrix and one matmul per
    layer: Δˡ = (Δˡ⁺¹ Wˡ⁺¹) ⊙ g'(Zˡ) and ∇Wˡ = Δˡᵀ Aˡ⁻¹, the matrix-form lesson's maths, generated
    from the model (`compile_loss(model, softmax_cross_entropy, backend="numpy").source`).

After one epoch the two sets of weights agree to rounding (a matmul adds in another order); the
matrices are much faster and train on to 96 % test accuracy and more. Needs scikit-learn and
numpy (`pip install 'micrograd_batch[digits,fast]'`); without them it says so in one line.
"""

from __future__ import annotations

import importlib.util
import random
import time
from dataclasses import dataclass
from pathlib import Path

from .common import PathLike, say
from ..compile import compile_loss
from ..losses import softmax_cross_entropy
from ..nn import MLP
from ..optim import SGD
from ..metrics import accuracy
from ..train import History, fit

MISSING = "skipped: the digits lesson needs scikit-learn and numpy: pip install 'micrograd_batch[digits,fast]'"
Examples = list[tuple[list[float], int]]


def missing() -> str | None:
    """Why the lesson cannot run here (a one-line reason), or None when it can."""
    have = all(importlib.util.find_spec(name) is not None for name in ("sklearn", "numpy"))
    return None if have else MISSING


def digits(seed: int = 4, test_fraction: float = 0.2) -> tuple[Examples, Examples]:
    """scikit-learn's bundled digits as (train, test) examples (64 pixels scaled to [0, 1], label
    0-9), shuffled with `random.Random(seed)`; the last `test_fraction` are the test set. (The
    split matters: with 359 test images one image is 0.3 %, and the lesson's recipe reaches 96-98 %
    on most splits, 95 % on some.)"""
    from sklearn.datasets import load_digits  # the optional `digits` extra; no network

    data = load_digits()
    pairs = zip(data.data.tolist(), data.target.tolist(), strict=True)
    examples = [([v / 16.0 for v in row], int(label)) for row, label in pairs]
    random.Random(seed).shuffle(examples)
    cut = round(len(examples) * (1.0 - test_fraction))
    return examples[:cut], examples[cut:]


@dataclass
class DigitsLesson:
    """The two runs from the same start: their weights' largest difference after epoch 1, the
    seconds each took for epoch 2 (no first-call setup in it), and the numpy run's History and
    test accuracy after `epochs` epochs."""

    max_difference: float
    per_example_seconds: float
    matrix_seconds: float
    epochs: int
    history: History
    test_accuracy: float
    source: str


def _train(train: Examples, epochs: int, backend: str) -> tuple[MLP, History, list[float], float]:
    """A fresh MLP 64-32-10 (always the same weights) trained for `epochs`: the model, its History,
    its weights after epoch 1 (read in on_epoch: numpy's arrays are back in the Values there) and
    the seconds epoch 2 took."""
    model = MLP(64, [32, 10], seed=0)
    after_one: list[float] = []
    stamps: list[float] = []

    def on_epoch(epoch: int, history: History) -> None:
        stamps.append(time.perf_counter())
        if epoch == 1:
            after_one.extend(p.data for p in model.parameters())

    history = fit(model, train, softmax_cross_entropy, SGD(model.parameters(), lr=0.05, momentum=0.9),
                  epochs=epochs, batch_size=32, backend=backend, on_epoch=on_epoch)
    return model, history, after_one, stamps[1] - stamps[0]


def digits_lesson(epochs: int = 20) -> DigitsLesson:
    """Two epochs per example (compiled) and `epochs` as matrices, from the same weights."""
    train, test = digits()
    _, _, per_example, per_example_seconds = _train(train, 2, "python")
    model, history, matrices, matrix_seconds = _train(train, epochs, "numpy")
    difference = max(abs(a - b) for a, b in zip(per_example, matrices, strict=True))
    source = compile_loss(model, softmax_cross_entropy, backend="numpy").source
    return DigitsLesson(difference, per_example_seconds, matrix_seconds, epochs, history, accuracy(model, test),
                        source)


def demo_digits(out_dir: PathLike = "out", quick: bool = False) -> list[Path]:
    """Print lesson 10: both runs' first epoch, their agreement, and the accuracy reached."""
    reason = missing()
    if reason:
        say(reason)
        return []
    lesson = digits_lesson(epochs=15 if quick else 20)
    train, test = digits()
    say(f"scikit-learn's digits: {len(train)} training and {len(test)} test images of 8 × 8 pixels, classes 0-9.")
    say("MLP 64-32-10 (ReLU), softmax cross-entropy, SGD lr 0.05 with momentum 0.9, batches of 32.\n")
    say("Epoch 2 (epoch 1 also compiles, or converts the examples to arrays, once):")
    say(f"  per example (fit, compiled)         {lesson.per_example_seconds:7.3f} s")
    say(f"  as matrices (fit, backend='numpy')  {lesson.matrix_seconds:7.3f} s"
        f"   {lesson.per_example_seconds / lesson.matrix_seconds:.0f}x faster")
    say(f"From the same weights, max |difference| of the weights after epoch 1 = {lesson.max_difference:.1e}")
    say("  (not 0: a matmul adds the examples' shares in its own order; each is the same sum Σᵢ δᵢ aᵢ / m)\n")
    say("The matrix code, generated from the model (compile_loss(..., backend='numpy').source):\n")
    say("\n".join("    " + line for line in lesson.source.splitlines()))
    say(f"\nAfter {lesson.epochs} epochs as matrices ({lesson.history.seconds:.2f} s): training accuracy "
        f"{lesson.history.accuracy[-1]:.1%}, test accuracy {lesson.test_accuracy:.1%}")
    return []
