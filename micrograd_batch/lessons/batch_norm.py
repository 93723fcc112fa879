"""Lesson: "Does anything average activations over the batch?" Yes: batch normalisation.

Everywhere else in this course every example keeps its own graph and only the gradients are
averaged. Batch norm (in training mode) normalises each hidden feature with its mean and
variance over the batch, so those two numbers join every example's graph: example 1's loss
depends on example 2's input, the per-example gradients depend on the whole batch, and
splitting a batch into micro-batches changes the gradient. Eval mode (running statistics)
makes the examples independent again.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

from .by_hand import max_abs_difference, relative_difference
from .common import BY_HAND_BATCH, BY_HAND_SEED, Examples, PathLike, render_graph, say
from .. import train
from ..batch import batch_mean, mean_of, per_example_grads
from ..engine import Value
from ..losses import mse
from ..nn import MLP
from ..norm import BatchNorm


def lesson_batch(m: int = 8, seed: int = 0) -> Examples:
    """m seeded regression examples: 2 inputs uniform in [-1, 1), target sin(x1) + x2/2."""
    rng = random.Random(seed)
    xs = [[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(m)]
    return [(x, math.sin(x[0]) + 0.5 * x[1]) for x in xs]


LESSON_BATCH: Examples = [*BY_HAND_BATCH, ([-0.9, -0.2], 0.7)]  # type: ignore[list-item]
"""The lesson's batch: question 1's three examples and a fourth, so micro-batches of 2 exist."""


def lesson_model(norm: str | None = "batch", seed: int = BY_HAND_SEED) -> MLP:
    """Question 1's 2-2-1 tanh network, its hidden layer normalised by `norm` (None, "batch", "layer")."""
    return MLP(2, [2, 1], activation="tanh", norm=norm, seed=seed)


def hidden_batch_norm(model: MLP) -> BatchNorm:
    """The BatchNorm of the lesson model's hidden layer."""
    norm = model.norms[0]
    if not isinstance(norm, BatchNorm):
        raise TypeError(f"the model's norm is {norm!r}, not a BatchNorm")
    return norm


def cross_gradient(model: MLP, examples: Examples) -> float:
    """∂L_1/∂x_2 (x_2's first input): how example 1's loss moves with example 2's input."""
    inputs = [[Value(v) for v in x] for x, _ in examples]
    out = model.forward_batch(inputs)
    mse(out[0], examples[0][1]).backward()  # type: ignore[arg-type]
    return inputs[1][0].grad


def batch_gradient(model: MLP, examples: Examples, micro_batch_size: int | None = None) -> list[float]:
    """The mean-loss gradient of the batch, in `model.parameters()` order (grads zeroed first):
    `train.batch_gradient`, which with `micro_batch_size` k accumulates micro-batches of at
    most k examples, each backpropagated with weight (its size)/m -- exact for independent
    examples."""
    model.zero_grad()
    train.batch_gradient(model, examples, mse, micro_batch_size=micro_batch_size)
    return [p.grad for p in model.parameters()]


def one_at_a_time(model: MLP, examples: Examples) -> list[float]:
    """The mean of the gradients of examples run ALONE, each in a graph of its own (a
    batch-norm model can only run one example in eval mode, with its running statistics)."""
    losses = [mse(model(x), y) for x, y in examples]  # type: ignore[arg-type]
    return mean_of(per_example_grads(losses, model.parameters()))


def frozen_at_batch_statistics(examples: Examples) -> MLP:
    """The lesson's batch-norm model in eval mode, its running statistics set to THIS batch's
    mean and biased variance of each hidden feature: it computes the same outputs as the
    training-mode model on this batch, but one example at a time, with constants."""
    model = lesson_model("batch")
    columns = zip(*[[n.pre_activation([Value(v) for v in x]).data for n in model.layers[0].neurons]
                    for x, _ in examples], strict=True)
    stats = [(math.fsum(c) / len(c), c) for c in map(list, columns)]
    hidden_batch_norm(model).running_mean = [mu for mu, _ in stats]
    hidden_batch_norm(model).running_var = [math.fsum((z - mu) ** 2 for z in c) / len(c) for mu, c in stats]
    return model.eval()


@dataclass
class CouplingResult:
    """The lesson's numbers (batch of `m`, `micro_batch_size` k for the micro-batch rows)."""

    m: int
    micro_batch_size: int
    cross_plain: float  # ∂L1/∂x2 without normalisation
    cross_batch_norm: float  # ... with batch norm in training mode
    cross_eval: float  # ... with batch norm in eval mode (frozen at this batch's statistics)
    cross_layer_norm: float  # ... with layer norm
    alone_vs_batch_plain: float  # max |mean of one-at-a-time grads - batch grad|, no norm
    frozen_output_difference: float  # max |eval-mode outputs - training-mode outputs| (same statistics)
    alone_vs_batch_norm: float  # relative difference, batch norm (alone = eval mode)
    shared_graph_vs_batch_norm: float  # max |mean of per_example_grads on the coupled graph - batch grad|
    alone_vs_batch_eval: float  # max |...|, batch norm in eval mode
    micro_vs_batch_plain: float  # max |micro-batched - whole batch|, no norm
    micro_vs_batch_norm: float  # relative difference, batch norm in training mode
    micro_running_mean_difference: float  # max |running mean after the micro-batches - after the batch|


def batch_norm_coupling(examples: Examples | None = None, micro_batch_size: int = 2) -> CouplingResult:
    """Every number of the lesson, for the lesson's model and `examples` (default LESSON_BATCH)."""
    examples = list(examples or LESSON_BATCH)
    m = len(examples)
    plain, bn = lesson_model(None), lesson_model("batch")
    # the per-example gradients on the coupled graph still average to the batch gradient
    losses = [mse(o, y) for o, (_, y) in zip(bn.forward_batch([x for x, _ in examples]), examples, strict=True)]  # type: ignore[arg-type]
    shared = mean_of(per_example_grads(losses, bn.parameters()))
    once = lesson_model("batch")
    bn_batch = batch_gradient(once, examples)  # one forward pass: one update of the running statistics
    micro_bn = lesson_model("batch")
    micro = batch_gradient(micro_bn, examples, micro_batch_size)
    bn_eval = frozen_at_batch_statistics(examples)
    xs = [x for x, _ in examples]
    outputs_eval = [o.data for o in bn_eval.forward_batch(xs)]  # type: ignore[union-attr]
    outputs_train = [o.data for o in lesson_model("batch").forward_batch(xs)]  # type: ignore[union-attr]
    return CouplingResult(
        m=m,
        micro_batch_size=micro_batch_size,
        cross_plain=cross_gradient(plain, examples),
        cross_batch_norm=cross_gradient(lesson_model("batch"), examples),
        cross_eval=cross_gradient(bn_eval, examples),
        cross_layer_norm=cross_gradient(lesson_model("layer"), examples),
        frozen_output_difference=max_abs_difference(outputs_eval, outputs_train),
        alone_vs_batch_plain=max_abs_difference(one_at_a_time(plain, examples), batch_gradient(plain, examples)),
        alone_vs_batch_norm=relative_difference(one_at_a_time(bn_eval, examples), bn_batch),
        shared_graph_vs_batch_norm=max_abs_difference(shared, bn_batch),
        alone_vs_batch_eval=max_abs_difference(one_at_a_time(bn_eval, examples), batch_gradient(bn_eval, examples)),
        micro_vs_batch_plain=max_abs_difference(batch_gradient(plain, examples, micro_batch_size),
                                                batch_gradient(plain, examples)),
        micro_vs_batch_norm=relative_difference(micro, bn_batch),
        micro_running_mean_difference=max_abs_difference(hidden_batch_norm(micro_bn).running_mean,
                                                         hidden_batch_norm(once).running_mean),
    )


def _exactly(x: float) -> str:
    """A derivative to 4 decimals, or "0 exactly" when it is zero."""
    return f"{x:+.4f}" if x else "0 exactly"


def demo_batch_norm(out_dir: PathLike = "out", quick: bool = False) -> list[Path]:
    """Print the lesson's numbers and draw its batch (out/batch_norm_graph.svg).
    `quick` changes nothing: the lesson is fast."""
    r = batch_norm_coupling()
    say("Question 1's 2-2-1 tanh network with batch norm on its hidden layer; question 1's three")
    say(f"examples and a fourth, m = {r.m}; mse loss.")
    say("With batch norm, hidden feature j of example i is normalised with μ_j and σ²_j, the mean and")
    say("variance of that feature over the WHOLE batch: two numbers in every example's graph.\n")
    say("∂L_1/∂x_2 -- does example 1's loss depend on example 2's input?")
    say(f"  no normalisation          {_exactly(r.cross_plain)}")
    say(f"  batch norm, training mode {_exactly(r.cross_batch_norm)}   <- yes: the examples are coupled")
    say(f"  batch norm, eval mode     {_exactly(r.cross_eval)}   (running statistics: constants)")
    say(f"  layer norm                {_exactly(r.cross_layer_norm)}   (normalises within one example)\n")
    say("Is the batch gradient the mean of the gradients of each example run alone?")
    say(f"  no normalisation           max |difference| = {r.alone_vs_batch_plain:.1e}   (yes, to rounding)")
    say(f"  batch norm, training mode  relative difference {r.alone_vs_batch_norm:.2f}   (no)")
    say("    Alone, an example can only run in eval mode. Freeze this batch's own μ_j, σ²_j as the running")
    say(f"    statistics: every output is the same (max |difference| {r.frozen_output_difference:.1e}), but the")
    say("    gradient is not: in the batch, the loss also moves through μ_j and σ²_j.")
    say(f"  batch norm, eval mode      max |difference| = {r.alone_vs_batch_eval:.1e}   (yes: independent again)")
    say(f"  (the per-example gradients ∂L_i/∂θ taken on the coupled graph still average to it:"
        f" {r.shared_graph_vs_batch_norm:.1e};")
    say("   but each of them now depends on every example of the batch)\n")
    say(f"Micro-batches of k = {r.micro_batch_size}, each backpropagated with weight k/m, accumulated:")
    say(f"  no normalisation           max |micro-batched - whole batch| = {r.micro_vs_batch_plain:.1e}")
    say(f"  batch norm, training mode  relative difference {r.micro_vs_batch_norm:.2f}: each micro-batch")
    say("    is normalised with its own statistics, so the gradient is a different one")
    say(f"  (and the running means differ by up to {r.micro_running_mean_difference:.4f}: one update per"
        " micro-batch, from its own statistics)")
    say("Conditions: training mode, m >= 2, features that vary over the batch; exact zeros above are")
    say("exact because no path joins the examples.")
    model = lesson_model("batch")
    outputs = model.forward_batch([x for x, _ in LESSON_BATCH])
    root = batch_mean([mse(o, y) for o, (_, y) in zip(outputs, LESSON_BATCH, strict=True)])  # type: ignore[arg-type]
    root.backward()
    say("\nThe picture, this batch: the statistics μ_j, σ²_j in their own box, with lines into every example.")
    files = render_graph(root, Path(out_dir) / "batch_norm_graph.svg")
    say(f"  wrote {files[0]}" if files else "")
    return files
