"""Lesson 4: two moons trained with batch size 1, 16 and the full batch, on the same number
of examples seen, each batch size at its own learning rate (tuned on a grid by training loss)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Sequence

from . import by_hand
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
    lr: float
    examples_seen: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    model: MLP | None = None


def _evaluate(model: MLP, examples: Sequence[tuple]) -> tuple[float, float]:
    """(mean bce loss, accuracy) of `model` on `examples` with labels 0/1, on plain floats
    (by_hand.forward: the engine's numbers without building a graph)."""
    layers = by_hand.read_weights(model)
    losses, right = [], 0
    for x, y in examples:
        logit = by_hand.forward(layers, x)[1][-1]
        losses.append(by_hand.loss_named("bce_with_logits")[0](logit, y))
        right += (logit[0] > 0.0) == (y == 1)
    return math.fsum(losses) / len(losses), right / len(examples)


def _moons(n: int, seed: int) -> Batch:
    """Two moons with labels 0/1: the training set (seed) or the held-out test set (seed + 1000)."""
    return make_moons(n, noise=0.15, seed=seed, signed=False)


def _start(hidden: Sequence[int], seed: int) -> MLP:
    """The initial network every run starts from: MLP(2, [*hidden, 1]) with tanh."""
    return MLP(2, [*hidden, 1], activation="tanh", seed=seed)


def _train(model: MLP, train: Batch, m: int, lr: float, epochs: int, seed: int,
           on_epoch: Callable[[int, History | None], None] | None = None) -> History:
    """Train `model` by plain SGD with batch size m (epoch e shuffled with seed + e)."""
    return fit(model, train, bce_with_logits, SGD(model.parameters(), lr=lr), epochs=epochs,
               batch_size=m, seed=seed, on_epoch=on_epoch)


LEARNING_RATES = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
"""The grid each batch size picks its own learning rate from (a factor of 2 apart)."""


def tune_learning_rates(
    batch_sizes: Sequence[int | None] = (1, 16, None), rates: Sequence[float] = LEARNING_RATES,
    n_train: int = 200, epochs: int = 40, hidden: Sequence[int] = (8, 8), seed: int = 0,
) -> dict[tuple[int, float], float]:
    """The final training-set loss of every (batch size, learning rate) pair of the grid: the
    full-batch run is keyed by n_train. The test set plays no part in the choice."""
    train = _moons(n_train, seed)
    final = {}
    for size in batch_sizes:
        m = size or n_train
        for lr in rates:
            model = _start(hidden, seed)
            _train(model, train, m, lr, epochs, seed)
            loss = _evaluate(model, train)[0]
            final[m, lr] = loss if math.isfinite(loss) else math.inf
    return final


def best_rates(grid: dict[tuple[int, float], float]) -> dict[int, float]:
    """Each batch size's learning rate with the lowest final training loss in `grid`."""
    best: dict[int, float] = {}
    for (m, lr), loss in grid.items():
        if m not in best or loss < grid[m, best[m]]:
            best[m] = lr
    return best


def two_moons_runs(
    batch_sizes: Sequence[int | None] = (1, 16, None), n_train: int = 200, n_test: int = 200,
    epochs: int = 40, lr: float | Sequence[float] = 0.1, hidden: Sequence[int] = (8, 8), seed: int = 0,
) -> tuple[list[TrainingRun], Batch, Batch]:
    """Train the same initial MLP(2, [*hidden, 1], tanh) with plain SGD for the same number of
    epochs (so the same number of examples seen) at each batch size (None = the full batch), on
    two moons with labels 0/1 and bce_with_logits; `lr` is one rate for all or one per batch size.
    Returns the runs, the training set and the test set."""
    train, test = _moons(n_train, seed), _moons(n_test, seed + 1000)
    rates = [lr] * len(batch_sizes) if isinstance(lr, (int, float)) else list(lr)
    if len(rates) != len(batch_sizes):
        raise ValueError(f"expected one learning rate per batch size ({len(batch_sizes)}), got {len(rates)}")
    runs = []
    for size, rate in zip(batch_sizes, rates, strict=True):
        m = size or n_train
        model = _start(hidden, seed)
        run = TrainingRun("full batch" if size is None else f"batch size {m}", m, rate, model=model)

        def record(epoch: int, history: History | None, run: TrainingRun = run, model: MLP = model) -> None:
            run.examples_seen.append(epoch * n_train)
            run.loss.append(_evaluate(model, train)[0])
            run.test_accuracy.append(_evaluate(model, test)[1])

        record(0, None)
        started = time.perf_counter()
        history = _train(model, train, m, rate, epochs, seed, on_epoch=record)
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
    """Print demo 4 (a learning-rate grid, then each batch size at its own best rate) and write
    loss and accuracy curves and the decision boundaries as SVG."""
    epochs = 15 if quick else 40
    sizes = (1, 16, None)
    say(f"Two moons, 200 training examples, MLP 2-8-8-1 (tanh), bce loss, plain SGD, {epochs} epochs")
    say(f"= {epochs * 200} examples seen by every run. A fair comparison gives each batch size its own")
    say("learning rate: final training-set loss for each rate of the grid (the test set is not used):")
    grid = tune_learning_rates(sizes, epochs=epochs)
    best = best_rates(grid)
    say(f"  {'batch size':>10}" + "".join(f"{f'lr {lr:g}':>10}" for lr in LEARNING_RATES))
    for m in best:
        say(f"  {m:>10}" + "".join(f"{grid[m, lr]:>10.4f}" for lr in LEARNING_RATES))
    runs, train, test = two_moons_runs(sizes, epochs=epochs, lr=list(best.values()))
    say("Each batch size at its own best rate:")
    say(f"  {'run':<14}{'lr':>5}{'steps':>7}{'final loss':>12}{'test accuracy':>15}{'seconds':>9}")
    for r in runs:
        say(f"  {r.label:<14}{r.lr:>5g}{r.steps:>7}{r.loss[-1]:>12.4f}{r.test_accuracy[-1]:>15.1%}{r.seconds:>9.1f}")
    order = sorted(runs, key=lambda r: r.loss[-1])
    say("Every run computed the same number of per-example gradients. Batch size 1 turns them into")
    say("many small noisy steps, the full batch into a few exact, averaged ones. Here, each at its")
    say(f"own best rate, the lowest training loss per example seen came from {order[0].label},")
    say(f"then {order[1].label}, then {order[2].label}. One shared rate would decide the ranking")
    say("by whose rate it suits (see the grid): compare batch sizes at their own tuned rates.")
    if not have_matplotlib():
        say(f"  (no charts: {INSTALL_HINT})")
        return []
    out = Path(out_dir)
    files = [
        save_svg(line_chart([Series(f"{r.label}, lr {r.lr:g}", r.examples_seen, r.loss) for r in runs],
                            title="Training loss vs examples seen, each batch size at its best rate",
                            x_label="examples seen",
                            y_label="mean bce loss (training set)"), out / "two_moons_loss.svg"),
        save_svg(line_chart([Series(f"{r.label}, lr {r.lr:g}", r.examples_seen, r.test_accuracy) for r in runs],
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
