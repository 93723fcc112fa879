"""The course: one module per question the learner asked, each computing its claim (tested in
tests/lessons/) and a `demo(out_dir, quick)` that prints the story and writes its pictures;
`python -m micrograd_batch tour` runs them in the order of `LESSONS`. The library never imports it.

    batch_by_hand          the δ recursion per example, averaged, equals autograd via batch_mean
    average_activations    averaging a and g'(z) over the batch first gives a different gradient
    delta_recursion        the δ recursion on a deeper MLP, layer by layer, equals autograd
    two_moons              mini-batch SGD with batch sizes 1, 16 and the full batch
    estimator_variance     a mini-batch gradient is unbiased and its variance falls like 1/m
    batch_norm             batch norm DOES average over the batch: the examples become coupled
    sum_or_mean            batch_sum vs batch_mean: the learning rate for SGD, eps for Adam
    per_example_clipping   DP-SGD clips each example's gradient: why per-example gradients matter
    matrix_form            the same batch gradient as matrix products, one row per example
    digits                 a real data set: per example and as numpy matrices, the same epoch
Support modules: `by_hand` (the δ recursion on plain lists), `charts` (pictures), `common`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..batch import batch_mean
from ..explore import save_html
from ..losses import mse
from ..nn import MLP
from .common import BY_HAND_BATCH, THE_ANSWER, by_hand_model, random_batch
from . import (average_activations, batch_by_hand, batch_norm, delta_recursion, digits, estimator_variance,
               matrix_form, per_example_clipping, sum_or_mean, two_moons)

Demo = Callable[[str | Path, bool], list[Path]]


@dataclass(frozen=True)
class Lesson:
    """One lesson of the tour: its command-line name, the learner's question, and its demo."""

    name: str
    question: str
    demo: Demo


LESSONS: dict[str, Lesson] = {
    lesson.name: lesson
    for lesson in (
        Lesson("batch-by-hand", "In batch training, do you average something? What, exactly?",
               batch_by_hand.demo_batch_by_hand),
        Lesson("average-activations", "Can I just replace a and g'(z) by their batch averages?",
               average_activations.demo_average_activations),
        Lesson("delta-recursion", "Does the recursive formula for δ still hold?",
               delta_recursion.demo_delta_recursion),
        Lesson("two-moons", "What does the batch size change in training?",
               two_moons.demo_two_moons),
        Lesson("estimator-variance", "Why is a mini-batch gradient good enough? How good?",
               estimator_variance.demo_estimator_variance),
        Lesson("batch-norm", "Does anything average activations over the batch? Yes: batch norm.",
               batch_norm.demo_batch_norm),
        Lesson("sum-or-mean", "Sum or mean? What changes with the learning rate and the optimiser?",
               sum_or_mean.demo_sum_or_mean),
        Lesson("per-example-clipping", "Why would you ever need per-example gradients?",
               per_example_clipping.demo_per_example_clipping),
        Lesson("matrix-form", "The same thing with matrices: where does the batch go in the tensor formulas?",
               matrix_form.demo_matrix_form),
        Lesson("digits", "A real data set: per example or as matrices, the same epoch? How much faster?",
               digits.demo_digits),
    )
}
"""Every lesson by its command-line name, in the order of the tour."""

FILES = {
    "batch_graph.svg": "question 1's batch graph: one box per example, 1/3 on each line into the mean",
    "batch_graph.dot": "its Graphviz source",
    "two_moons_loss.svg": "training loss vs examples seen, each batch size at its own learning rate",
    "two_moons_accuracy.svg": "test accuracy vs examples seen",
    "two_moons_boundary.svg": "the decision boundaries after training",
    "variance.svg": "variance of the mini-batch gradient vs batch size, with σ²/m",
    "batch_norm_graph.svg": "batch norm: the batch statistics feed every example",
    "batch_norm_graph.dot": "its Graphviz source",
    "matrix_form.svg": "∇W2 = Δ2ᵀ A1: the sum over the examples",
    "explore.html": "the explorer: step through forward and backward in a browser",
}
"""What each file the tour writes shows, by file name."""


def summary(written: Sequence[Path]) -> str:
    """The tour's last words: the answer again, and where each file went with what it shows."""
    lines = [THE_ANSWER, "", "Files written:" if written else "Files written: none (see the messages above)."]
    width = max((len(str(path)) for path in written), default=0)
    lines += [f"  {str(path):<{width}}  {FILES.get(Path(path).name, '')}".rstrip() for path in written]
    return "\n".join(lines)


__all__ = ["FILES", "LESSONS", "Lesson", "THE_ANSWER", "summary"]


def write_explorer(folder: Path, batch_size: int | None = None, sizes: Sequence[int] | None = None) -> Path:
    """Write `folder`/explore.html: lesson 1's network and batch by default (README's table), else
    `batch_size` seeded examples (default 3) through a tanh MLP of widths `sizes` (default 2,2,1)."""
    model, batch = by_hand_model(), BY_HAND_BATCH
    if batch_size is not None or sizes is not None:
        sizes = sizes or (2, 2, 1)
        model = MLP(sizes[0], list(sizes[1:]), activation="tanh", seed=2)
        batch = random_batch(sizes[0], batch_size or 3, "mse", sizes[-1], seed=2)
    loss = batch_mean([mse(model(x), y) for x, y in batch])
    written = save_html(loss, folder / "explore.html", params=model.parameters())
    print(f"Explorer page ({len(batch)} examples): open {written.resolve().as_uri()} in a browser")
    return written


def run_tour(out_dir: Path, quick: bool = False, names: Sequence[str] | None = None) -> list[Path]:
    """Run the demos called `names` (default: all, in order), each under a header naming its
    question; print the files written at the end and return them."""
    written: list[Path] = []
    started = time.perf_counter()
    names = list(names or LESSONS)
    for number, name in enumerate(names, start=1):
        print(f"\n{'=' * 78}\n{number}/{len(names)}  {name}:  {LESSONS[name].question}\n{'=' * 78}", flush=True)
        t0 = time.perf_counter()
        written.extend(LESSONS[name].demo(out_dir, quick))
        print(f"({time.perf_counter() - t0:.1f} s)", flush=True)
    if len(names) == len(LESSONS):  # the whole tour: the explorer page too
        written.append(write_explorer(out_dir))
    print(f"\nTour finished in {time.perf_counter() - started:.1f} s.\n{'=' * 78}\n{summary(written)}")
    return written
