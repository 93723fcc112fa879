"""The demos' working parts: each lesson is a function that computes its claim and returns the
numbers (tested in tests/test_demos.py), and a `demo_*` function that prints the story and
writes its pictures. `demos/*.py` and `python -m micrograd_batch tour` call the `demo_*` ones.

    batch_by_hand          the δ recursion per example, averaged, equals autograd via batch_mean
    average_activations    averaging a and g'(z) over the batch first gives a different gradient
    delta_recursion        the δ recursion on a deeper MLP, layer by layer, equals autograd
    two_moons_runs         mini-batch SGD with batch sizes 1, 16 and the full batch
    estimator_variance     a mini-batch gradient is unbiased and its variance falls like 1/m

The learner's questions this answers: "in batch training do you average the activations?",
"does the δ recursion still hold?", and "is there an example without tensors?".
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

from . import manual
from .batch import batch_mean
from .data import make_moons
from .engine import Value
from .losses import bce_with_logits, hinge, mse, softmax_cross_entropy
from .nn import MLP
from .optim import SGD
from .plot import Series, save_decision_boundary, save_line_chart
from .train import History, fit

PathLike = Union[str, Path]
Batch = Sequence[tuple[Sequence[float], Any]]

LOSS_FUNCTIONS: dict[str, Callable[..., Value]] = {
    "mse": mse,
    "hinge": hinge,
    "bce_with_logits": bce_with_logits,
    "bce": bce_with_logits,
    "softmax_cross_entropy": softmax_cross_entropy,
}
"""The autograd losses of `losses.py` under the names `manual.LOSSES` uses."""


def autograd_batch_loss(model: MLP, batch: Sequence[tuple], loss: str = "mse") -> Value:
    """batch_mean of the per-example losses: one graph per example, joined by one mean node."""
    loss_fn = LOSS_FUNCTIONS[loss]
    return batch_mean([loss_fn(model(x), y) for x, y in batch])


def autograd_batch_gradient(model: MLP, batch: Sequence[tuple], loss: str = "mse") -> tuple[Value, list[float]]:
    """The batch-loss node and the gradient that backward() from it leaves in the parameters
    (in `model.parameters()` order). The model's grads are zeroed first."""
    root = autograd_batch_loss(model, batch, loss)
    model.zero_grad()
    root.backward()
    return root, [p.grad for p in model.parameters()]


def _fmt_vec(v: Sequence[float], width: int = 8, digits: int = 4) -> str:
    """Numbers in fixed-width columns (a value that rounds to zero is shown without a sign)."""
    return " ".join(f"{x + 0.0 if round(x, digits) else 0.0:{width}.{digits}f}" for x in v)


def _say(text: str = "") -> None:
    print(text, flush=True)


def render_graph(root: Value, path: PathLike) -> list[Path]:
    """Draw `root`'s graph with viz.save_svg; returns the files written. When no Graphviz
    renderer is installed the .dot file is still written, and the reason is printed."""
    path = Path(path)
    try:
        from . import viz
    except ImportError as error:  # the graphviz package itself is missing
        _say(f"  (no picture of the graph: {error}; pip install graphviz)")
        return []
    try:
        return [viz.save_svg(root, path), path.with_suffix(".dot")]
    except viz.RendererNotFound as error:
        _say(f"  (the graph's DOT source is in {path.with_suffix('.dot')}, but no SVG: {error})")
        return [path.with_suffix(".dot")] if path.with_suffix(".dot").exists() else []


# =================================================================================================
# 1. a 2-2-1 network and a batch of three examples, by hand
# =================================================================================================

BY_HAND_BATCH: Batch = [([0.5, -1.0], 1.0), ([-0.3, 0.8], -0.5), ([1.2, 0.4], 0.2)]
"""Three examples (x, y) for the 2-2-1 network: two inputs, one regression target each."""

BY_HAND_SEED = 2
"""Seed of the 2-2-1 network's initial weights (chosen so no tanh is saturated)."""


def by_hand_model(seed: int = BY_HAND_SEED, activation: str = "tanh") -> MLP:
    """The small network of the first demos: 2 inputs, 2 hidden neurons, 1 linear output."""
    return MLP(2, [2, 1], activation=activation, seed=seed)


@dataclass
class BatchByHand:
    """Demo 1's numbers: each example's δ-recursion record, their gradients, the mean, and
    the gradient autograd gives through batch_mean; `max_abs_difference` compares the two."""

    model: MLP
    batch: Batch
    records: list[manual.ExampleBackprop]
    per_example: list[list[float]]
    mean: list[float]
    autograd: list[float]
    max_abs_difference: float
    root: Value


def batch_by_hand(model: Optional[MLP] = None, batch: Optional[Batch] = None, loss: str = "mse") -> BatchByHand:
    """Backpropagate each example of `batch` by the δ recursion, average the gradients, and
    compare with autograd's gradient of batch_mean(losses). Defaults: the 2-2-1 tanh network
    and BY_HAND_BATCH with squared error."""
    model = model or by_hand_model()
    batch = list(batch or BY_HAND_BATCH)
    records = [manual.backprop_example(model, x, y, loss) for x, y in batch]
    per_example = [r.flat() for r in records]
    mean = [math.fsum(col) / len(per_example) for col in zip(*per_example)]
    root, auto = autograd_batch_gradient(model, batch, loss)
    return BatchByHand(model, batch, records, per_example, mean, auto,
                       manual.max_abs_difference(mean, auto), root)


def demo_batch_by_hand(out_dir: PathLike = "out", quick: bool = False) -> list[Path]:
    """Print demo 1 (per-example forward values, δs and gradients; their mean; autograd's
    gradient) and draw the batch graph to out_dir/batch_graph.svg. Returns the files written."""
    r = batch_by_hand()
    names = [p.label for p in r.model.parameters()]
    _say("A 2-2-1 network (tanh hidden layer, linear output), squared error, a batch of 3.")
    _say("Each example goes forward and backward ON ITS OWN, with its own z, a, g'(z) and δ:")
    for i, ((x, y), rec) in enumerate(zip(r.batch, r.records), start=1):
        _say(f"\nexample {i}: x = {x}, y = {y}")
        _say(f"  z1 = {_fmt_vec(rec.z[1])}    a1 = tanh(z1) = {_fmt_vec(rec.a[1])}")
        _say(f"  output a2 = {rec.a[2][0]:.4f}    loss (a2 - y)² = {rec.loss:.4f}")
        _say(f"  δ2 = 2(a2 - y)·1 = {_fmt_vec(rec.delta[2])}")
        _say(f"  δ1 = W2ᵀ δ2 ⊙ (1 - a1²) = {_fmt_vec(rec.delta[1])}")
    _say("\nGradients ∂L_i/∂θ, one column per parameter (L1.n2.w1: layer 1, neuron 2, weight 1):")
    _say(" " * 11 + " ".join(f"{n:>9}" for n in names))
    for i, g in enumerate(r.per_example, start=1):
        _say(f"{'example ' + str(i):<11}{_fmt_vec(g, 9)}")
    _say(f"{'mean of 3':<11}{_fmt_vec(r.mean, 9)}")
    _say(f"{'autograd':<11}{_fmt_vec(r.autograd, 9)}")
    _say(f"\nbatch loss = mean of the 3 losses = {r.root.data:.6f}")
    _say(f"max |mean of per-example gradients - autograd through batch_mean| = {r.max_abs_difference:.1e}")
    _say("So: nothing is averaged on the way forward. Each example is backpropagated with its")
    _say("own activations, and only the resulting GRADIENTS are averaged (the 1/m of the mean).")
    files = render_graph(r.root, Path(out_dir) / "batch_graph.svg")
    if files:
        _say(f"The batch graph (one box per example, shared parameters once): {files[0]}")
        _say("  In it, each parameter's box lists what each example adds to its grad: 1/3 of that")
        _say("  example's gradient in the table above (the mean node's local derivative is 1/3).")
    return files


# =================================================================================================
# 2. the shortcut "average the activations first" -- and when it happens to work
# =================================================================================================


@dataclass
class ShortcutComparison:
    """The true batch gradient next to the averaged-activation shortcut, for one case."""

    case: str
    true: list[float]
    shortcut: list[float]
    relative_difference: float
    max_abs_difference: float


def compare_shortcut(model: MLP, batch: Batch, case: str = "", loss: str = "mse") -> ShortcutComparison:
    """The true mean-of-per-example-gradients vs `manual.averaged_activation_gradient`."""
    true = manual.batch_gradient(model, batch, loss)
    shortcut = manual.averaged_activation_gradient(model, batch, loss)
    return ShortcutComparison(case, true, shortcut, manual.relative_difference(shortcut, true),
                              manual.max_abs_difference(shortcut, true))


def average_activations() -> list[ShortcutComparison]:
    """Four cases: the shortcut is wrong for the tanh network on BY_HAND_BATCH, wrong for a
    purely linear network too (it is about products, not only the nonlinearity), and exact
    for a batch of one example and for a batch whose examples share the same input."""
    tanh_net = by_hand_model()
    linear_net = by_hand_model(activation="linear")
    same_input = [([0.5, -1.0], 1.0), ([0.5, -1.0], -0.5), ([0.5, -1.0], 0.2)]
    return [
        compare_shortcut(tanh_net, BY_HAND_BATCH, "tanh net, 3 different examples"),
        compare_shortcut(linear_net, BY_HAND_BATCH, "linear net, 3 different examples"),
        compare_shortcut(tanh_net, BY_HAND_BATCH[:1], "tanh net, a batch of 1"),
        compare_shortcut(tanh_net, same_input, "tanh net, 3 examples, same x"),
    ]


def demo_average_activations(out_dir: PathLike = "out", quick: bool = False) -> list[Path]:
    """Print demo 2: the averaged-activation gradient next to the true one, why they differ,
    and when they coincide. Writes nothing; returns []."""
    model = by_hand_model()
    r = batch_by_hand(model)
    wrong = manual.averaged_activation_backprop(model, BY_HAND_BATCH)
    _say("Same 2-2-1 tanh network and batch of 3. The shortcut: average a, g'(z) and the output")
    _say("error over the batch first, then use the one-example formulas once.")
    _say(f"  mean a1 = {_fmt_vec(wrong.a[1])}   mean g'(z1) = {_fmt_vec(wrong.g_prime[1])}")
    _say(f"  shortcut δ2 = {_fmt_vec(wrong.delta[2])}   shortcut δ1 = {_fmt_vec(wrong.delta[1])}")
    names = [p.label for p in model.parameters()]
    _say("\n" + " " * 11 + " ".join(f"{n:>9}" for n in names))
    _say(f"{'true':<11}{_fmt_vec(r.mean, 9)}")
    _say(f"{'shortcut':<11}{_fmt_vec(wrong.flat(), 9)}")
    # one weight, worked out: output weight from hidden neuron 1, index 6 in parameters()
    d2 = [rec.delta[2][0] for rec in r.records]
    a1 = [rec.a[1][0] for rec in r.records]
    products = [d * a for d, a in zip(d2, a1)]
    _say("\nWhy, for the output weight from hidden neuron 1 (∂L/∂w = δ2·a1 per example):")
    _say("  δ2_i·a1_i = " + ", ".join(f"{d:.4f}×{a:.4f} = {p:.4f}" for d, a, p in zip(d2, a1, products)))
    _say(f"  mean of the products  = {sum(products) / 3:.4f}   (the true gradient)")
    _say(f"  product of the means  = {sum(d2) / 3:.4f} × {sum(a1) / 3:.4f} = {sum(d2) / 3 * sum(a1) / 3:.4f}"
         "   (the shortcut)")
    _say("The mean of a product is not the product of the means unless the factors do not vary")
    _say("together over the batch; and g'(z) of a nonlinearity adds more such products (δ1 = w·δ2·g'(z1)).")
    _say("\nRelative difference ‖shortcut - true‖ / ‖true‖ in four cases:")
    for c in average_activations():
        verdict = "coincide" if c.relative_difference < 1e-12 else "DIFFER"
        _say(f"  {c.case:<34} {c.relative_difference:10.3g}   {verdict}")
    _say("The shortcut is exact only when nothing varies across the batch that multiplies the")
    _say("error (one example, or one shared input); a linear network does NOT rescue it.")
    return []


# =================================================================================================
# 3. the δ recursion on a deeper network
# =================================================================================================


@dataclass
class DeltaRecursion:
    """Demo 3's numbers: per-example δ records for a deeper MLP, and manual vs autograd."""

    model: MLP
    batch: Batch
    loss: str
    records: list[manual.ExampleBackprop]
    manual: list[float]
    autograd: list[float]
    max_abs_difference: float


def random_batch(nin: int, n_examples: int, loss: str, nout: int, seed: int) -> Batch:
    """Seeded examples with inputs uniform in [-1, 1) and targets suited to `loss`."""
    rng = random.Random(seed)
    batch: list[tuple[Sequence[float], Any]] = []
    for _ in range(n_examples):
        x = [rng.uniform(-1, 1) for _ in range(nin)]
        if loss == "mse":
            y: object = [rng.uniform(-1, 1) for _ in range(nout)] if nout > 1 else rng.uniform(-1, 1)
        elif loss == "softmax_cross_entropy":
            y = rng.randrange(nout)
        elif loss == "hinge":
            y = rng.choice([-1, 1])
        else:
            y = rng.choice([0, 1])
        batch.append((x, y))
    return batch


def delta_recursion(
    sizes: Sequence[int] = (3, 4, 4, 2), activation: str = "tanh", n_examples: int = 4,
    loss: str = "mse", seed: int = 0,
) -> DeltaRecursion:
    """Run the δ recursion on MLP(sizes[0], sizes[1:], activation) for a seeded batch and
    compare the averaged gradient with autograd's."""
    model = MLP(sizes[0], list(sizes[1:]), activation=activation, seed=seed)
    batch = random_batch(sizes[0], n_examples, loss, sizes[-1], seed + 1)
    records = [manual.backprop_example(model, x, y, loss) for x, y in batch]
    grads = [r.flat() for r in records]
    mean = [math.fsum(col) / len(grads) for col in zip(*grads)]
    _, auto = autograd_batch_gradient(model, batch, loss)
    return DeltaRecursion(model, batch, loss, records, mean, auto, manual.max_abs_difference(mean, auto))


def demo_delta_recursion(out_dir: PathLike = "out", quick: bool = False) -> list[Path]:
    """Print demo 3: δ per layer per example for a 3-4-4-2 network, tanh with squared error
    and relu with softmax cross-entropy, each matching autograd. Writes nothing; returns []."""
    _say("The δ recursion, written with plain lists (micrograd_batch/manual.py), per example:")
    _say("  δ^L = ∂L/∂a^L ⊙ g'(z^L),   δ^l = (W^(l+1))ᵀ δ^(l+1) ⊙ g'(z^l),   ∂L/∂W^l = δ^l (a^(l-1))ᵀ")
    for activation, loss in (("tanh", "mse"), ("relu", "softmax_cross_entropy")):
        r = delta_recursion(activation=activation, loss=loss, n_examples=3 if quick else 4)
        _say(f"\nMLP 3-4-4-2, {activation} hidden layers, {loss}, {len(r.batch)} examples:")
        for i, rec in enumerate(r.records, start=1):
            _say(f"  example {i}:")
            for l in range(len(rec.delta) - 1, 0, -1):
                _say(f"    δ{l} = [{_fmt_vec(rec.delta[l], 7)} ]")
        _say(f"  {len(r.manual)} parameters; max |manual - autograd| = {r.max_abs_difference:.1e}")
    _say("\nThe recursion holds unchanged for every example; the batch only averages the results.")
    return []


# =================================================================================================
# 4. two moons: batch size 1, 16 and the full batch, on the same number of examples seen
# =================================================================================================


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
                      batch_size=m, seed=seed, verbose=False, on_epoch=record)
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
    _say(f"Two moons, 200 training examples, MLP 2-8-8-1 (tanh), bce loss, plain SGD lr 0.1,")
    _say(f"{epochs} epochs = {epochs * 200} examples seen by every run:")
    runs, train, test = two_moons_runs(epochs=epochs)
    _say(f"  {'run':<14}{'steps':>7}{'final loss':>12}{'test accuracy':>15}{'seconds':>9}")
    for r in runs:
        _say(f"  {r.label:<14}{r.steps:>7}{r.loss[-1]:>12.4f}{r.test_accuracy[-1]:>15.1%}{r.seconds:>9.1f}")
    _say("Every run computed the same number of per-example gradients. Batch size 1 turned them")
    _say("into many small noisy steps; the full batch into a few exact, averaged ones. Per example")
    _say("seen, small batches make more progress here; per STEP the big batch is the better guess.")
    out = Path(out_dir)
    files = [
        save_line_chart(out / "two_moons_loss.svg", [Series(r.label, r.examples_seen, r.loss) for r in runs],
                        title="Training loss vs examples seen", x_label="examples seen",
                        y_label="mean bce loss (training set)"),
        save_line_chart(out / "two_moons_accuracy.svg",
                        [Series(r.label, r.examples_seen, r.test_accuracy) for r in runs],
                        title="Test accuracy vs examples seen", x_label="examples seen",
                        y_label="test accuracy", y_range=(0.4, 1.0), legend="bottom-right"),
        save_decision_boundary(out / "two_moons_boundary.svg", [(x[0], x[1], y) for x, y in train],
                               [(r.label, _score_of(r.model)) for r in runs if r.model is not None],
                               bounds=(-1.5, 2.5, -1.0, 1.5), resolution=30 if quick else 40,
                               title=f"Decision boundaries after {epochs * 200} examples seen"),
    ]
    for f in files:
        _say(f"  wrote {f}")
    return files


# =================================================================================================
# 5. the mini-batch gradient as an estimator: unbiased, variance ~ 1/m
# =================================================================================================


@dataclass
class VarianceRow:
    """For one batch size m: the relative error of the mean of the sampled mini-batch
    gradients (with the error expected from sampling noise alone), their total variance
    (mean squared distance to the full gradient) and the variance theory predicts."""

    m: int
    relative_error: float
    expected_error: float
    total_variance: float
    predicted_variance: float


@dataclass
class VarianceStudy:
    """Demo 5's table, and the least-squares slope of log(variance) against log(m)."""

    rows: list[VarianceRow]
    slope: float
    n_examples: int
    trials: int
    full_gradient_norm: float
    per_example_variance: float


def fit_loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares line log10(y) = slope·log10(x) + intercept; returns (slope, intercept)."""
    lx = [math.log10(x) for x in xs]
    ly = [math.log10(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    sxx = math.fsum((a - mx) ** 2 for a in lx)
    if sxx == 0.0:
        raise ValueError("a slope needs at least two different x values")
    slope = math.fsum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sxx
    return slope, my - slope * mx


def estimator_variance(
    batch_sizes: Sequence[int] = (1, 2, 4, 8, 16, 32, 64), trials: int = 400, n_examples: int = 2000,
    seed: int = 0,
) -> VarianceStudy:
    """For a fixed MLP 2-8-8-1 on `n_examples` two-moons examples (bce loss): draw `trials`
    mini-batches of each size m (without replacement inside a batch), and compare their
    gradients with the full-batch gradient.

    The mini-batch gradient is the mean of its examples' gradients (demo 1), so every
    per-example gradient is computed once (by the δ recursion) and batches just average them.
    Theory: E[ĝ] = g (unbiased) and E‖ĝ - g‖² = (σ²/m)·(N - m)/(N - 1), where σ² is the mean
    squared distance of a per-example gradient to g; the last factor, the finite-population
    correction, is ≥ 0.97 here because N is much larger than 64, so the slope is close to -1.
    """
    data = make_moons(n_examples, noise=0.2, seed=seed, signed=False)
    model = MLP(2, [8, 8, 1], activation="tanh", seed=seed)
    grads = manual.per_example_gradients(model, data, "bce_with_logits")
    n = len(grads)
    full = [math.fsum(col) / n for col in zip(*grads)]
    sigma2 = math.fsum(math.fsum((a - b) ** 2 for a, b in zip(g, full)) for g in grads) / n
    norm = math.sqrt(math.fsum(v * v for v in full))
    rng = random.Random(seed)
    rows = []
    for m in batch_sizes:
        if not 1 <= m <= n:
            raise ValueError(f"batch size {m} is not between 1 and {n}")
        total = [0.0] * len(full)
        squared = 0.0
        for _ in range(trials):
            chosen = [grads[i] for i in rng.sample(range(n), m)]
            estimate = [sum(col) / m for col in zip(*chosen)]
            squared += sum((a - b) ** 2 for a, b in zip(estimate, full))
            total = [t + e for t, e in zip(total, estimate)]
        mean_estimate = [t / trials for t in total]
        variance = squared / trials
        predicted = sigma2 / m * (n - m) / (n - 1)
        rows.append(VarianceRow(m, manual.relative_difference(mean_estimate, full),
                                math.sqrt(predicted / trials) / norm, variance, predicted))
    slope, _ = fit_loglog_slope([r.m for r in rows], [r.total_variance for r in rows])
    return VarianceStudy(rows, slope, n, trials, norm, sigma2)


def demo_estimator_variance(out_dir: PathLike = "out", quick: bool = False) -> list[Path]:
    """Print demo 5's table and write the log-log plot out_dir/variance.svg."""
    trials = 500 if quick else 2000
    study = estimator_variance(trials=trials)
    _say(f"A fixed MLP 2-8-8-1 and {study.n_examples} two-moons examples; the full-batch gradient g")
    _say(f"has norm {study.full_gradient_norm:.4f}. For each batch size m, {trials} random mini-batches:")
    _say(f"  {'m':>4} {'‖mean ĝ - g‖/‖g‖':>18} {'(noise alone)':>14} {'E‖ĝ - g‖²':>12} {'σ²/m·fpc':>12}")
    for r in study.rows:
        _say(f"  {r.m:>4} {r.relative_error:>18.4f} {r.expected_error:>14.4f} "
             f"{r.total_variance:>12.5f} {r.predicted_variance:>12.5f}")
    _say(f"Fitted slope of log variance against log m: {study.slope:.3f} (theory: -1).")
    _say("The average of many mini-batch gradients lands on the full gradient: what error is left")
    _say("is of the size that sampling noise alone explains, and it shrinks with more trials, so")
    _say("the estimate is unbiased. Its variance falls like 1/m: 4x the batch halves its spread.")
    rows = study.rows
    fitted = [rows[0].total_variance * (r.m / rows[0].m) ** study.slope for r in rows]
    path = save_line_chart(
        Path(out_dir) / "variance.svg",
        [Series("measured E‖ĝ - g‖²", [r.m for r in rows], [r.total_variance for r in rows], markers=True),
         Series("theory σ²/m · (N-m)/(N-1)", [r.m for r in rows], [r.predicted_variance for r in rows],
                dashed=True),
         Series(f"fitted slope {study.slope:.2f}", [r.m for r in rows], fitted, dashed=True, width=1.0)],
        title="Variance of the mini-batch gradient", x_label="batch size m",
        y_label="mean squared distance to full gradient", log_x=True, log_y=True,
        x_ticks=[r.m for r in rows])
    _say(f"  wrote {path}")
    return [path]


DEMOS = {
    "batch-by-hand": demo_batch_by_hand,
    "average-activations": demo_average_activations,
    "delta-recursion": demo_delta_recursion,
    "two-moons": demo_two_moons,
    "estimator-variance": demo_estimator_variance,
}
"""Every demo by its command-line name, in the order of the tour."""
