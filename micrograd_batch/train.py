"""The training loop: epochs of mini-batches, each one a forward pass per example, one batch-loss
node, one backward pass and one optimiser step — with a guard that stops on a NaN or infinite loss.
"""

from __future__ import annotations

import math
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, Union

from .batch import batch_mean
from .compile import CompiledLoss, known_stable
from .data import minibatches
from ._checks import is_whole_number
from .engine import Value, gc_paused
from .losses import l2_penalty
from .nn import Module
from .optim import SGD, Optimizer
from .parallel import DataParallel, Scores, Workers, plain_scores, uses_workers

Output = Union[Value, Sequence[Value]]
LossFn = Callable[..., Value]  # loss_fn(model(x), y): one example's loss L_i


class TrainingDiverged(FloatingPointError):
    """The loss or a gradient became NaN or infinite; the parameters are left as they were
    before that step (the last good ones), and `epoch` and `step` say where it happened."""

    def __init__(self, epoch: int, step: int, reason: str) -> None:
        super().__init__(
            f"training stopped at epoch {epoch}, step {step}: {reason}. "
            "The parameters are those from before this step (the last good ones); "
            "try a smaller learning rate."
        )
        self.epoch, self.step = epoch, step


@dataclass
class History:
    """What `fit` measured: per-epoch mean training loss and accuracy, and steps taken."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[Optional[float]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0


def is_correct(output: Union[Output, Scores], y: object) -> Optional[bool]:
    """Whether one prediction is right: argmax for several outputs, the sign of the score for
    labels -1/+1, score > 0 for labels 0/1. None when `y` is not a class label (regression).
    `output` is the model's Value(s), or the same as plain numbers."""
    scores = plain_scores(output)
    if isinstance(scores, list):
        if not isinstance(y, int) or isinstance(y, bool):
            return None  # several outputs but no class index: a regression target
        return scores.index(max(scores)) == y
    if y in (-1, 1) or y in (0, 1):
        return (scores > 0.0) == (y == 1)
    return None


def accuracy(model: Callable[[Sequence[float]], Output], examples: Sequence[tuple]) -> float:
    """The fraction of `examples` (x, y) that `model` classifies correctly (see `is_correct`)."""
    if not examples:
        raise ValueError("accuracy of an empty list of examples")
    right = [is_correct(out, y) for out, (_, y) in zip(_model_outputs(model, examples, inference=True), examples)]
    if any(r is None for r in right):
        raise ValueError("accuracy needs class labels (-1/+1, 0/1, or class indices)")
    return sum(bool(r) for r in right) / len(right)


def _model_outputs(model: Callable, examples: Sequence[tuple], inference: bool = False) -> list[Output]:
    """The model's outputs for the inputs of `examples` [(x, y), ...]: `model(x)` per example,
    or, for a model whose examples are coupled (`couples_examples`: batch norm in training
    mode), `model.forward_batch` on all of them -- or, with `inference`, `model(x)` per example
    in eval mode (the running statistics, which are left unchanged), the mode restored after."""
    if not getattr(model, "couples_examples", False):
        return [model(x) for x, _ in examples]
    if not inference:
        return model.forward_batch([x for x, _ in examples])  # type: ignore[attr-defined]
    with model.evaluating():  # type: ignore[attr-defined]
        return [model(x) for x, _ in examples]


def train_step(
    model: Module, batch: Sequence[tuple], loss_fn: LossFn, optimizer: Optimizer, l2: float = 0.0,
    parallel: Optional[DataParallel] = None, compiled: Optional[CompiledLoss] = None,
) -> tuple[float, list[Optional[bool]]]:
    """One mini-batch step: per-example graphs, `batch_mean`, backward, optimiser step.

    With `parallel` (a `DataParallel` over the same model and loss), its worker processes
    compute the batch's mean gradient instead; the l2 term is added here. With `compiled`
    (`compile_loss(model, loss_fn)`), its generated code gives the same numbers, bit for bit,
    when it can; otherwise the graph path runs.
    Returns the batch loss and, per example, whether the prediction was right. Raises
    FloatingPointError (parameters untouched) if the loss or a gradient is not finite.
    """
    optimizer.zero_grad()
    computed = compiled.loss_and_grads(batch, l2) if compiled is not None and parallel is None else None
    if parallel is None and computed is None:
        with gc_paused():  # building a graph makes many objects and no cycles: skip the GC passes
            outputs: Sequence[Union[Output, Scores]] = _model_outputs(model, batch)
            loss = batch_mean([loss_fn(out, y) for out, (_, y) in zip(outputs, batch)])
        if l2:
            loss = loss + l2_penalty(model.parameters(), l2)
        loss_value = loss.data
        if math.isfinite(loss_value):
            loss.backward()
    elif computed is not None:  # the compiled code: p.grad += the mean gradient (+ the l2 term's)
        loss_value, outputs = computed
    else:
        assert parallel is not None
        loss_value, outputs = parallel.grad_and_outputs(batch)  # p.grad += the mean gradient
        if l2:
            penalty = l2_penalty(model.parameters(), l2)
            penalty.backward()  # p.grad += 2·l2·p
            loss_value += penalty.data
    if not math.isfinite(loss_value):
        raise FloatingPointError(f"the batch loss is {loss_value}")
    optimizer.step()
    return loss_value, [is_correct(out, y) for out, (_, y) in zip(outputs, batch)]


def fit(
    model: Module,
    examples: Sequence[tuple],
    loss_fn: LossFn,
    optimizer: Optional[Optimizer] = None,
    epochs: int = 10,
    batch_size: int = 32,
    l2: float = 0.0,
    shuffle: bool = True,
    seed: Optional[int] = 0,
    verbose: bool = True,
    on_epoch: Optional[Callable[[int, History], None]] = None,
    workers: Workers = 1,
    compiled: bool = True,
) -> History:
    """Train `model` on `examples` [(x, y), ...] with mini-batches; return the `History`.

    Each step averages `loss_fn(model(x), y)` over the batch with `batch_mean` (plus
    `l2`·Σp² if given) and lets `optimizer` (default SGD, lr 0.05) step. With `verbose`, one
    line per epoch and, during long epochs, a progress line every few seconds go to stderr.
    `on_epoch(epoch, history)` is called after each epoch. `workers` > 1 computes each
    batch's gradient in that many processes, or on a `concurrent.futures.Executor` given instead
    (`parallel.DataParallel`; `loss_fn` must then be a module-level function). A NaN or infinite loss or
    gradient (or a number too large for a float: OverflowError) raises `TrainingDiverged`
    naming the epoch and step, leaving the last good parameters in the model. `compiled`
    (default) runs each step through `compile_loss(model, loss_fn)` for a library model and loss
    (`compile.known_stable`): the same History, bit for bit, several times faster; False
    always uses the graph path.
    """
    if not callable(model) or not callable(getattr(model, "parameters", None)):
        raise TypeError(f"fit needs a model (a callable Module), got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function (output, y) -> loss, got {type(loss_fn).__name__}")
    if optimizer is not None and not (callable(getattr(optimizer, "step", None))
                                      and callable(getattr(optimizer, "zero_grad", None))):
        raise TypeError(f"optimizer must be an Optimizer (SGD, Adam), got {type(optimizer).__name__}")
    if on_epoch is not None and not callable(on_epoch):
        raise TypeError(f"on_epoch must be a function (epoch, history), got {type(on_epoch).__name__}")
    if not is_whole_number(epochs):
        raise ValueError(f"epochs must be a whole number >= 1, got {epochs!r}")
    parallel_wanted = uses_workers(workers)  # a whole number > 1 or an Executor (ValueError if neither)
    if parallel_wanted and getattr(model, "couples_examples", False):
        raise ValueError("workers splits each batch over processes, but this model's batch norm "
                         "normalises over the whole batch (its examples are coupled); use workers=1")
    optimizer = optimizer or SGD(model.parameters(), lr=0.05)
    with DataParallel(model, loss_fn, workers) if parallel_wanted else nullcontext() as parallel:
        stable = compiled and parallel is None and known_stable(model, loss_fn)
        compiler = CompiledLoss(model, loss_fn) if stable else None
        return _train(model, examples, loss_fn, optimizer, epochs, batch_size, l2, shuffle, seed,
                      verbose, on_epoch, parallel, compiler)


def _train(
    model: Module, examples: Sequence[tuple], loss_fn: LossFn, optimizer: Optimizer, epochs: int,
    batch_size: int, l2: float, shuffle: bool, seed: Optional[int], verbose: bool,
    on_epoch: Optional[Callable[[int, History], None]], parallel: Optional[DataParallel],
    compiled: Optional[CompiledLoss] = None,
) -> History:
    """The epochs of `fit`, its arguments checked."""
    history = History()
    started = time.perf_counter()
    last_report = started
    for epoch in range(1, epochs + 1):
        loss_sum, seen, right = 0.0, 0, []
        batches = minibatches(examples, batch_size, shuffle=shuffle,
                              seed=None if seed is None else seed + epoch)
        for step, batch in enumerate(batches, start=1):
            try:
                loss, correct = train_step(model, batch, loss_fn, optimizer, l2, parallel, compiled)
            except (FloatingPointError, OverflowError) as error:  # the step changed nothing
                raise TrainingDiverged(epoch, step, str(error) or type(error).__name__) from error
            history.steps += 1
            loss_sum += loss * len(batch)
            seen += len(batch)
            right.extend(correct)
            if verbose and time.perf_counter() - last_report > 5.0:
                last_report = time.perf_counter()
                print(f"  epoch {epoch}, step {step}: loss {loss:.4f}", file=sys.stderr, flush=True)
        history.loss.append(loss_sum / seen)
        labelled = all(r is not None for r in right)
        history.accuracy.append(sum(bool(r) for r in right) / len(right) if labelled else None)
        history.seconds = time.perf_counter() - started
        if verbose:
            acc = history.accuracy[-1]
            acc_text = f", accuracy {acc:.1%}" if acc is not None else ""
            print(f"epoch {epoch}/{epochs}: loss {history.loss[-1]:.4f}{acc_text}"
                  f" ({history.seconds:.1f} s)", file=sys.stderr, flush=True)
        if on_epoch:
            on_epoch(epoch, history)
    return history
