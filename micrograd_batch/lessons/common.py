"""What every lesson shares: the worked 2-2-1 network and batch, autograd's batch gradient,
seeded random batches, number formatting and the graph picture helper."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any
from collections.abc import Callable, Sequence

from .. import viz
from ..batch import batch_mean
from ..engine import Value
from ..losses import bce_with_logits, hinge, mse, softmax_cross_entropy
from ..nn import MLP


PathLike = str | Path
"""A file or folder name: a str or a Path."""

Batch = Sequence[tuple[Sequence[float], Any]]
"""A batch of examples (x, y): x a list of input numbers, y a target of any kind the loss takes."""

Examples = list[tuple[list[float], float]]
"""Regression examples (x, y) with one number y each, as the batch-norm and clipping lessons make them."""

LOSS_FUNCTIONS: dict[str, Callable[..., Value]] = {
    "mse": mse,
    "hinge": hinge,
    "bce_with_logits": bce_with_logits,
    "bce": bce_with_logits,
    "softmax_cross_entropy": softmax_cross_entropy,
}
"""The autograd losses of `losses.py` under the names `by_hand.LOSSES` uses."""


def autograd_batch_loss(model: MLP, batch: Batch, loss: str = "mse") -> Value:
    """batch_mean of the per-example losses: one graph per example, joined by one mean node."""
    loss_fn = LOSS_FUNCTIONS[loss]
    return batch_mean([loss_fn(model(x), y) for x, y in batch])


def autograd_batch_gradient(model: MLP, batch: Batch, loss: str = "mse") -> tuple[Value, list[float]]:
    """The batch-loss node and the gradient that backward() from it leaves in the parameters
    (in `model.parameters()` order). The model's grads are zeroed first."""
    root = autograd_batch_loss(model, batch, loss)
    model.zero_grad()
    root.backward()
    return root, [p.grad for p in model.parameters()]


def fmt_vec(v: Sequence[float], width: int = 8, digits: int = 4) -> str:
    """Numbers in fixed-width columns (a value that rounds to zero is shown without a sign)."""
    return " ".join(f"{x + 0.0 if round(x, digits) else 0.0:{width}.{digits}f}" for x in v)


def say(text: str = "") -> None:
    """Print one line of a lesson at once (flushed, so it appears in order with any progress)."""
    print(text, flush=True)


def render_graph(root: Value, path: PathLike) -> list[Path]:
    """Draw `root`'s graph with viz.save_svg; returns the files written. When no Graphviz
    renderer is installed the .dot file is still written, and the reason is printed."""
    path = Path(path)
    try:
        return [viz.save_svg(root, path), path.with_suffix(".dot")]
    except viz.RendererNotFound as error:
        say(f"  (the graph's DOT source is in {path.with_suffix('.dot')}, but no SVG: {error})")
        return [path.with_suffix(".dot")] if path.with_suffix(".dot").exists() else []


THE_ANSWER = """THE ANSWER: you average the GRADIENTS, nothing else. Each example goes forward and backward
through its own graph; one node, batch_mean(L_1..L_m), joins the m losses with local derivative 1/m,
so every parameter's grad is (1/m) Σ_i ∂L_i/∂θ. Nothing is averaged on the way forward (batch norm
is the exception, on purpose: it couples the examples)."""
"""The answer to the learner's question, as the tour opens and closes with it."""


BY_HAND_BATCH: Batch = [([0.5, -1.0], 1.0), ([-0.3, 0.8], -0.5), ([1.2, 0.4], 0.2)]
"""Three examples (x, y) for the 2-2-1 network: two inputs, one regression target each."""

BY_HAND_SEED = 2
"""Seed of the 2-2-1 network's initial weights (chosen so no tanh is saturated)."""


def by_hand_model(seed: int = BY_HAND_SEED, activation: str = "tanh") -> MLP:
    """The small network of the first demos: 2 inputs, 2 hidden neurons, 1 linear output."""
    return MLP(2, [2, 1], activation=activation, seed=seed)



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

