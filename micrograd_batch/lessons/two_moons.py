"""Lesson 4: two moons trained with batch size 1, 16 and the full batch, on the same number
of examples seen."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from .charts import INSTALL_HINT, Series, decision_boundary, have_matplotlib, line_chart, save_svg
from .common import Batch, PathLike, say
from ..data import make_moons
from ..engine import Value
from ..losses import bce_with_logits
from ..nn import MLP
from ..optim import SGD
from ..train import History, fit



@dataclass
class TrainingRun:
    """One training run of demo 4: after each epoch (n examples seen) the full training-set
    loss, and the accuracy on a held-out test set; index 0 is before training."""

    label: str
    batch_size: int
    examples_seen: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    model: Optional[MLP] = None


def _evaluate(model: MLP, examples: Sequence[tuple]) -> tuple[float, float]:
    """(mean bce loss, accuracy) of `model` on `examples` with labels 0/1."""
    losses, right = [], 0
    for x, y in examples:
        out = model(x)
        assert isinstance(out, Value), "a one-output model"
        losses.append(bce_with_logits(out, y).data)
        right += (out.data > 0.0) == (y == 1)
    return math.fsum(losses) / len(losses), right / len(examples)


def two_moons_runs(
    batch_sizes: Sequence[Optional[int]] = (1, 16, None), n_train: int = 200, n_test: int = 200,
    epochs: int = 40, lr: float = 0.1, hidden: Sequence[int] = (8, 8), seed: int = 0,
) -> tuple[list[TrainingRun], Batch, Batch]:
    """Train the same initial MLP(2, [*hidden, 1], tanh) with plain SGD (same `lr`) for the
    same number of epochs (so the same number of examples seen) at each batch size (None =
    the full batch), on two moons with labels 0/1 and bce_with_logits. Returns the runs, the
    training set and the test set."""
    train = make_moons(n_train, noise=0.15, seed=seed, signed=False)
    test = make_moons(n_test, noise=0.15, seed=seed + 1000, signed=False)
    runs = []
    for size in batch_sizes:
        m = size or n_train
        model = MLP(2, [*hidden, 1], activation="tanh", seed=seed)
        run = TrainingRun("full batch" if size is None else f"batch size {m}", m, model=model)

        def record(epoch: int, history: Optional[History], run: TrainingRun = run, model: MLP = model) -> None:
            loss, _ = _evaluate(model, train)
            _, acc = _evaluate(model, test)
            run.examples_seen.append(epoch * n_train)
            run.loss.append(loss)
            run.test_accuracy.append(acc)

        record(0, None)
        started = time.perf_counter()
        history = fit(model, train, bce_with_logits, SGD(model.parameters(), lr=lr), epochs=epochs,
                      batch_size=m, seed=seed, on_epoch=record)
        run.steps, run.seconds = history.steps, time.perf_counter() - started
        runs.append(run)
    return runs, train, test


def _score_of(model: MLP) -> Callable[[float, float], float]:
    """The model's score at a point (a, b), for drawing its decision boundary."""

    def score(a: float, b: float) -> float:
        out = model([a, b])
        assert isinstance(out, Value), "a one-output model"
        return out.data

    return score


def demo_two_moons(out_dir: PathLike = "out", quick: bool = False) -> list[Path]:
    """Print demo 4 and write loss and accuracy curves and the decision boundaries as SVG."""
    epochs = 15 if quick else 40
    say("Two moons, 200 training examples, MLP 2-8-8-1 (tanh), bce loss, plain SGD lr 0.1,")
    say(f"{epochs} epochs = {epochs * 200} examples seen by every run:")
    runs, train, test = two_moons_runs(epochs=epochs)
    say(f"  {'run':<14}{'steps':>7}{'final loss':>12}{'test accuracy':>15}{'seconds':>9}")
    for r in runs:
        say(f"  {r.label:<14}{r.steps:>7}{r.loss[-1]:>12.4f}{r.test_accuracy[-1]:>15.1%}{r.seconds:>9.1f}")
    say("Every run computed the same number of per-example gradients. Batch size 1 turned them")
    say("into many small noisy steps; the full batch into a few exact, averaged ones. Per example")
    say("seen, small batches make more progress here; per STEP the big batch is the better guess.")
    if not have_matplotlib():
        say(f"  (no charts: {INSTALL_HINT})")
        return []
    out = Path(out_dir)
    files = [
        save_svg(line_chart([Series(r.label, r.examples_seen, r.loss) for r in runs],
                            title="Training loss vs examples seen", x_label="examples seen",
                            y_label="mean bce loss (training set)"), out / "two_moons_loss.svg"),
        save_svg(line_chart([Series(r.label, r.examples_seen, r.test_accuracy) for r in runs],
                            title="Test accuracy vs examples seen", x_label="examples seen",
                            y_label="test accuracy", y_range=(0.4, 1.0)), out / "two_moons_accuracy.svg"),
        save_svg(decision_boundary([(x[0], x[1], y) for x, y in train],
                                   [(r.label, _score_of(r.model)) for r in runs if r.model is not None],
                                   bounds=(-1.5, 2.5, -1.0, 1.5), resolution=30 if quick else 40,
                                   title=f"Decision boundaries after {epochs * 200} examples seen"),
                 out / "two_moons_boundary.svg"),
    ]
    for f in files:
        say(f"  wrote {f}")
    return files
