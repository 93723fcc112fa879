"""The training loop: epochs of mini-batches, each one a forward pass per example, one batch-loss
node, one backward pass and one optimiser step — with a guard that stops on a NaN or infinite loss,
optional micro-batches, worker processes, and checkpoints a killed run resumes from exactly.

Two functions do the work, and `fit` only checks its arguments and connects them:
`batch_gradient` computes one batch's loss and gradient, `_run_epochs` loops over the epochs.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real
from typing import Any, Callable, ContextManager, Iterator, Optional, Sequence, Union

from ._checks import as_float, check_model_and_loss, is_whole_number
from .batch import batch_mean, batch_sum
from .compile import CompiledLoss, NotCompilable, compile_loss
from .data import minibatches
from .engine import Value, gc_paused
from .losses import LossFn, Output, l2_penalty
from .nn import Layer, Module, Neuron, Scores, plain_scores
from .optim import SGD, Optimizer
from .parallel import DataParallel, Workers, uses_workers
from .persist import ModelFileError, PathLike, check_checkpointable, load_checkpoint, save_checkpoint

Batch = Sequence[tuple]


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
    """What `fit` measured, one entry per epoch.

    `loss[e]`: the mean of epoch e's batch losses, each measured as its step began (the running
    training loss). `accuracy[e]`: the fraction of the training examples the model classifies
    right as it stands at the END of epoch e (None for regression targets, or when the decision
    rule cannot be told; see `accuracy`). `steps`: optimiser steps taken. `seconds`: wall-clock
    time, the one field a resumed run does not reproduce.
    """

    loss: list[float] = field(default_factory=list)
    accuracy: list[Optional[float]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0


# ---- predictions and the decision rule --------------------------------------------------------

THRESHOLDS = {"sigmoid": 0.5, "linear": 0.0, "tanh": 0.0}
"""A one-output model's decision threshold by its output activation: a probability (sigmoid)
is positive above 0.5, a score or logit (linear, tanh) above 0. ReLU outputs have no rule."""


def _output_activation(model: object) -> Optional[str]:
    """The activation of a model's output: an MLP's `output_activation`, a Neuron's or a
    Layer's `activation` (if its neurons agree); None when it cannot be told."""
    if isinstance(model, Neuron):
        return model.activation
    if isinstance(model, Layer):
        kinds = {n.activation for n in model.neurons}
        return kinds.pop() if len(kinds) == 1 else None
    kind = getattr(model, "output_activation", None)
    return kind if isinstance(kind, str) else None


def decision_threshold(model: object, threshold: Optional[float] = None) -> Optional[float]:
    """The score above which a one-output `model` predicts the positive class: `threshold` if
    given, else by its output activation (`THRESHOLDS`); None when it cannot be told."""
    if threshold is None:
        kind = _output_activation(model)
        return THRESHOLDS.get(kind) if kind is not None else None
    value = as_float(threshold, "threshold")
    if not math.isfinite(value):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return value


def is_correct(output: Union[Output, Scores], y: object, threshold: Optional[float] = 0.0) -> Optional[bool]:
    """Whether one prediction is right: argmax for several outputs (labels 0..n-1), the score
    against `threshold` for one output (labels -1/+1 or 0/1: positive means 1). None when `y`
    is not a class label (a regression target). ValueError for a class index out of range, a
    NaN output, or a one-output model with labels but no `threshold` (None)."""
    scores = plain_scores(output)
    values = scores if isinstance(scores, list) else [scores]
    if any(math.isnan(v) for v in values):
        raise ValueError(f"the model output is {scores!r}; a NaN output classifies nothing")
    if isinstance(scores, list):
        if not isinstance(y, Integral) or isinstance(y, bool):
            return None  # several outputs but no class index: a regression target
        if not 0 <= int(y) < len(scores):
            raise ValueError(f"label {y!r} is not a class of a model with {len(scores)} outputs "
                             f"(expected 0 to {len(scores) - 1})")
        return scores.index(max(scores)) == y
    if isinstance(y, bool) or not isinstance(y, Real) or y not in (-1, 0, 1):
        return None
    if threshold is None:
        raise ValueError("cannot tell this model's decision rule (its output is not a sigmoid "
                         "probability or a linear/tanh score); pass threshold=")
    return (scores > threshold) == (y == 1)


def _non_finite(thing: object, name: str) -> Optional[str]:
    """"name = value" (with the position, "name[j] = value", in a list or tuple) for the first
    NaN or infinite number in `thing`, a number, a Value or a list or tuple of them; else None.
    Anything else is left to the model and the loss to judge."""
    items = enumerate(thing) if isinstance(thing, (list, tuple)) else [(None, thing)]
    for j, item in items:
        value = item.data if isinstance(item, Value) else item
        if isinstance(value, Real) and not isinstance(value, Integral) and not math.isfinite(value):
            return f"{name} = {value!r}" if j is None else f"{name}[{j}] = {value!r}"
    return None


def _check_examples(examples: Sequence[Any], caller: str) -> None:
    """ValueError naming the first example that is not an (x, y) pair, or whose inputs or
    numeric target are not all finite (a NaN or infinity gives no meaningful loss or prediction)."""
    for i, example in enumerate(examples):
        if not isinstance(example, (tuple, list)) or len(example) != 2:
            shape = f"of length {len(example)}" if isinstance(example, (tuple, list)) else f"{example!r:.30}"
            raise ValueError(f"{caller}: each example must be an (x, y) pair; got {type(example).__name__} "
                             f"{shape} at index {i} (for inputs xs and targets ys, pass list(zip(xs, ys)))")
        problem = _non_finite(example[0], "x") or _non_finite(example[1], "y")
        if problem:
            raise ValueError(f"{caller}: example {i} has {problem}; inputs and targets must be finite")


def _outputs(model: Callable[..., Any], xs: Sequence[Any], inference: bool = False) -> list[Any]:
    """The model's output for each input: `model(x)`, one graph per example; or, for a model
    whose examples are coupled (`couples_examples`: batch norm in training mode),
    `model.forward_batch(xs)` -- or, with `inference`, `model(x)` per example in eval mode (the
    running statistics, which are left unchanged), the mode restored after."""
    if not getattr(model, "couples_examples", False):
        return [model(x) for x in xs]
    if not inference:
        return list(model.forward_batch(xs))  # type: ignore[attr-defined]
    with model.evaluating():  # type: ignore[attr-defined]
        return [model(x) for x in xs]


def _fraction_right(model: Callable[..., Any], examples: Sequence[tuple], threshold: Optional[float],
                    compiled: Optional[CompiledLoss] = None) -> Optional[float]:
    """The fraction of `examples` classified right (see `is_correct`); None if one label is
    not a class label. With `compiled` (of this model), its forward statements give the outputs
    where they can (the same numbers, without building a graph per example)."""
    outputs = compiled.outputs(examples) if compiled is not None else None
    if outputs is None:
        with gc_paused():
            outputs = [plain_scores(out) for out in _outputs(model, [x for x, _ in examples], inference=True)]
    right = [is_correct(out, y, threshold) for out, (_, y) in zip(outputs, examples)]
    if any(r is None for r in right):
        return None
    return sum(bool(r) for r in right) / len(right)


def accuracy(model: Callable[..., Output], examples: Sequence[tuple], *,
             threshold: Optional[float] = None) -> float:
    """The fraction of `examples` (x, y) that `model` classifies correctly.

    The decision rule follows the output: several outputs -> argmax (labels 0..n-1); one output
    -> the score above the model's threshold, 0.5 for a sigmoid probability, 0 for a linear or
    tanh score (labels -1/+1 or 0/1). For other models pass `threshold=`. Raises ValueError for
    labels that are not classes, examples that are not (x, y) pairs, non-finite inputs or
    targets, NaN outputs, or an unknown rule. Changes nothing: no parameter, no gradient.
    """
    examples = list(examples)
    if not examples:
        raise ValueError("accuracy of an empty list of examples")
    _check_examples(examples, "accuracy")
    fraction = _fraction_right(model, examples, decision_threshold(model, threshold))
    if fraction is None:
        raise ValueError("accuracy needs class labels (-1/+1, 0/1, or class indices)")
    return fraction


# ---- one batch: loss and gradient --------------------------------------------------------------

def _pieces(batch: Batch, micro_batch_size: Optional[int]) -> list[Batch]:
    """The batch itself, or its consecutive micro-batches of at most `micro_batch_size`."""
    if micro_batch_size is None:
        return [batch]
    return [batch[i:i + micro_batch_size] for i in range(0, len(batch), micro_batch_size)]


def batch_gradient(
    model: Module, batch: Batch, loss_fn: LossFn, *, l2: float = 0.0,
    micro_batch_size: Optional[int] = None, parallel: Optional[DataParallel] = None,
    compiled: Optional[CompiledLoss] = None,
) -> tuple[float, list[Scores]]:
    """One batch's mean loss (plus `l2`·Σp²); adds its gradient into every parameter's `.grad`.

    The whole batch is one graph per example joined by `batch_mean`. With `micro_batch_size`
    k, micro-batches of at most k examples are built and backpropagated one after another,
    each loss with weight 1/m (so a micro-batch of k_j examples has weight k_j/m), and each
    graph is freed before the next is built: the same gradient, up to the order of additions,
    in the memory of one micro-batch. With `parallel` (a `DataParallel`), worker processes
    compute each piece. With `compiled` (a `CompiledLoss` of this model and loss), its
    straight-line code computes the whole batch, bit for bit as the graph would (it falls back to
    the graph when it must). The l2 term's gradient goes in first, as `(batch_mean(...) +
    l2_penalty(...)).backward()` would add it. Returns the loss and each example's output as
    plain numbers; stops at the first non-finite piece (the loss returned is then not finite).
    """
    if compiled is not None and parallel is None and micro_batch_size is None:
        return _compiled_step(compiled, model, batch, l2)
    m = len(batch)
    loss_value, outputs = 0.0, []
    if l2:
        penalty = l2_penalty(model.parameters(), l2)
        penalty.backward()  # p.grad += 2·l2·p
        loss_value = penalty.data
    for piece in _pieces(batch, micro_batch_size):
        if parallel is not None:  # the workers' share: (1/m) Σ over the piece
            piece_loss, piece_outputs = parallel.grad_and_outputs(piece, m)
        else:
            piece_loss, piece_outputs = _piece_here(model, piece, loss_fn, m)
        loss_value += piece_loss
        outputs.extend(piece_outputs)
        if not math.isfinite(loss_value):
            return loss_value, outputs
    return loss_value, outputs


def _compiled_step(compiled: CompiledLoss, model: Module, batch: Batch, l2: float) -> tuple[float, list[Scores]]:
    """`batch_gradient` by the compiled code: the l2 shares first (as backward() reaches the l2
    node before the examples), then the batch's; the gradients are left as they were when the
    loss is not finite."""
    params = model.parameters()
    old = [p.grad for p in params]
    penalty = l2_penalty(params, l2) if l2 else None
    if penalty is not None:
        penalty.backward()
    loss = compiled.grad(batch) + (penalty.data if penalty is not None else 0.0)
    if not math.isfinite(loss):
        for p, g in zip(params, old):
            p.grad = g
    return loss, compiled.outputs(batch)


def _piece_here(model: Module, piece: Batch, loss_fn: LossFn, m: int) -> tuple[float, list[Scores]]:
    """(Σ_{i in piece} L_i) / m, with its gradient added into `.grad`; the piece's outputs.
    The whole batch (m examples) is `batch_mean`; a micro-batch `batch_sum` seeded with 1/m.
    The graph is built here and freed on return."""
    with gc_paused():  # building a graph makes many objects and no cycles: skip the GC passes
        outputs = _outputs(model, [x for x, _ in piece])
        losses = [loss_fn(out, y) for out, (_, y) in zip(outputs, piece)]
        whole = len(piece) == m
        node = batch_mean(losses) if whole else batch_sum(losses)
        loss = node.data if whole else node.data / m
        if math.isfinite(loss):
            node.backward(1.0 if whole else 1.0 / m)
    return loss, [plain_scores(out) for out in outputs]


def _step(model: Module, batch: Batch, loss_fn: LossFn, optimizer: Optimizer, l2: float,
          micro_batch_size: Optional[int], parallel: Optional[DataParallel],
          compiled: Optional[CompiledLoss] = None) -> tuple[float, list[Scores]]:
    """Zero the gradients, `batch_gradient`, and step; FloatingPointError if the loss is not
    finite (the optimiser refuses non-finite gradients itself). Nothing changes on an error."""
    optimizer.zero_grad()
    loss, outputs = batch_gradient(model, batch, loss_fn, l2=l2, micro_batch_size=micro_batch_size,
                                   parallel=parallel, compiled=compiled)
    if not math.isfinite(loss):
        optimizer.zero_grad()  # no half-summed gradient is left behind (the l2 part, earlier pieces)
        raise FloatingPointError(f"the batch loss is {loss}")
    optimizer.step()
    return loss, outputs


def train_step(
    model: Module, batch: Batch, loss_fn: LossFn, optimizer: Optimizer, l2: float = 0.0,
    parallel: Optional[DataParallel] = None, *, micro_batch_size: Optional[int] = None,
    compiled: Optional[CompiledLoss] = None,
) -> tuple[float, list[Optional[bool]]]:
    """One mini-batch step: `batch_gradient` (gradients zeroed first), then the optimiser step.

    Returns the batch loss and, per example, whether the prediction was right (`is_correct`
    with the model's decision threshold; None where it cannot be told). Raises
    FloatingPointError (parameters untouched) if the loss or a gradient is not finite.
    """
    loss, outputs = _step(model, batch, loss_fn, optimizer, l2, micro_batch_size, parallel, compiled)
    threshold = decision_threshold(model)
    return loss, [_safely_correct(out, y, threshold) for out, (_, y) in zip(outputs, batch)]


def _safely_correct(output: Scores, y: object, threshold: Optional[float]) -> Optional[bool]:
    """`is_correct`, or None where the rule or the label does not apply."""
    try:
        return is_correct(output, y, threshold)
    except ValueError:
        return None


# ---- the epochs ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Schedule:
    """Which examples each step sees: `epochs` passes in mini-batches of `batch_size`, shuffled
    (when `shuffle`) by `random.Random(seed + epoch)`, so any epoch's order can be replayed."""

    epochs: int
    batch_size: int
    shuffle: bool
    seed: int

    def batches(self, examples: Sequence[tuple], epoch: int) -> Iterator[list[tuple]]:
        """Epoch `epoch`'s mini-batches (epochs count from 1)."""
        return minibatches(examples, self.batch_size, shuffle=self.shuffle, seed=self.seed + epoch)


@dataclass
class _Run:
    """What `_run_epochs` needs besides the schedule: the step, the data and the reporting."""

    model: Module
    examples: Sequence[tuple]
    loss_fn: LossFn
    optimizer: Optimizer
    l2: float
    micro_batch_size: Optional[int]
    parallel: Optional[DataParallel]
    verbose: bool
    on_epoch: Optional[Callable[[int, History], None]]
    checkpoint: Optional[PathLike]
    fingerprint: str = ""  # of the examples, computed once when checkpointing
    compiled: Optional[CompiledLoss] = None  # the straight-line step, where the model and loss allow


def _fingerprint(examples: Sequence[tuple]) -> str:
    """A SHA-256 of the examples' exact numbers (floats by their hex spelling), to tell whether
    a checkpoint was made on the same data."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(_spelling(example).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _spelling(thing: object) -> str:
    """`thing` as exact text: floats in hex, Values by their data, sequences item by item."""
    if isinstance(thing, Value):
        thing = thing.data
    if isinstance(thing, float):
        return thing.hex()
    if isinstance(thing, (list, tuple)):
        return "[" + ",".join(_spelling(t) for t in thing) + "]"
    return repr(thing)


def _progress(run: _Run, schedule: Schedule, history: History, epochs_done: int) -> dict[str, Any]:
    """The loop's state for a checkpoint: enough to replay the rest of the run exactly."""
    return {
        "epochs_done": epochs_done,
        "history": asdict(history),
        "schedule": {"batch_size": schedule.batch_size, "shuffle": schedule.shuffle,
                     "seed": schedule.seed, "l2": run.l2, "micro_batch_size": run.micro_batch_size,
                     "loss_fn": _identity(run.loss_fn)},
        "data": {"examples": len(run.examples), "fingerprint": run.fingerprint},
    }


def _identity(function: object) -> str:
    """A function's "module.qualname" (a callable object's class's; "functools.partial(f)" for a
    partial of f), the same in every process: how a checkpoint tells which loss it was made with."""
    if isinstance(function, functools.partial):
        return f"functools.partial({_identity(function.func)})"
    named = function if hasattr(function, "__qualname__") else type(function)
    return f"{getattr(named, '__module__', None)}.{getattr(named, '__qualname__', '?')}"


def _resume(run: _Run, schedule: Schedule, seed_given: bool) -> tuple[History, int, Schedule]:
    """Load `run.checkpoint` into the model and optimiser if it exists: (History, epochs done,
    schedule with the checkpoint's shuffling seed). No file: a fresh start."""
    assert run.checkpoint is not None
    expected = _progress(run, schedule, History(), 0)
    if not seed_given:  # seed=None: this run takes the checkpoint's seed
        del expected["schedule"]["seed"]

    def check(progress: dict[str, Any]) -> None:
        _check_progress(progress, expected, schedule.epochs, run.checkpoint)

    try:
        progress = load_checkpoint(run.checkpoint, run.model, run.optimizer, check=check)  # type: ignore[arg-type]
    except FileNotFoundError:
        return History(), 0, schedule
    history = History(**progress["history"])
    seed = progress["schedule"]["seed"]
    return history, progress["epochs_done"], Schedule(schedule.epochs, schedule.batch_size, schedule.shuffle, seed)


def _check_progress(progress: dict[str, Any], expected: dict[str, Any], epochs: int, source: object) -> None:
    """ModelFileError naming the first way a checkpoint's progress does not fit this run (whose
    own progress, `expected`, holds what must match)."""
    if set(progress) != set(expected) or not all(isinstance(progress[k], dict) for k in ("schedule", "data")):
        raise ModelFileError(source, f"'progress' must have exactly the keys {sorted(expected)}")
    seed = progress["schedule"].get("seed")
    if type(seed) is not int:
        raise ModelFileError(source, f"the checkpoint's shuffling seed is {seed!r:.40}, expected an integer")
    for part in ("schedule", "data"):
        for key, ours in expected[part].items():
            theirs = progress[part].get(key)
            if theirs != ours or type(theirs) is not type(ours):
                what = ("the examples differ" if key == "fingerprint"
                        else f"{key} is {theirs!r:.40}, this run has {ours!r}")
                raise ModelFileError(source, f"the checkpoint was made for another run: {what}")
    done = progress["epochs_done"]
    if not is_whole_number(done, 0) or done > epochs:
        raise ModelFileError(source, f"the checkpoint has {done!r:.20} epochs done; this run has epochs={epochs}")
    _check_history(progress["history"], done, source)


def _check_history(saved: object, epochs_done: int, source: object) -> None:
    """ModelFileError unless `saved` is a History dict with one entry per epoch done."""
    names = [f.name for f in History.__dataclass_fields__.values()]
    if not isinstance(saved, dict) or sorted(saved) != sorted(names):
        raise ModelFileError(source, f"the checkpoint's history must have exactly the keys {names}")
    loss, acc = saved["loss"], saved["accuracy"]
    if not (isinstance(loss, list) and isinstance(acc, list) and len(loss) == len(acc) == epochs_done):
        raise ModelFileError(source, f"the checkpoint's history must have {epochs_done} losses and accuracies")
    numbers = [*loss, *(a for a in acc if a is not None), saved["seconds"]]
    if not all(type(v) in (int, float) and math.isfinite(v) for v in numbers) or not is_whole_number(saved["steps"], 0):
        raise ModelFileError(source, "the checkpoint's history holds something other than finite numbers")


def _train_epoch(run: _Run, schedule: Schedule, epoch: int, history: History) -> float:
    """One epoch of steps; the mean of its batch losses. Raises TrainingDiverged."""
    loss_sum, seen = 0.0, 0
    last_report = time.perf_counter()
    for step, batch in enumerate(schedule.batches(run.examples, epoch), start=1):
        try:
            loss, _ = _step(run.model, batch, run.loss_fn, run.optimizer, run.l2, run.micro_batch_size,
                            run.parallel, run.compiled)
        except (FloatingPointError, OverflowError) as error:  # the step changed nothing
            raise TrainingDiverged(epoch, step, str(error) or type(error).__name__) from error
        history.steps += 1
        loss_sum += loss * len(batch)
        seen += len(batch)
        if run.verbose and time.perf_counter() - last_report > 5.0:
            last_report = time.perf_counter()
            print(f"  epoch {epoch}, step {step}: loss {loss:.4f}", file=sys.stderr, flush=True)
    return loss_sum / seen


def _run_epochs(run: _Run, schedule: Schedule, history: History, epochs_done: int) -> History:
    """The epochs of `fit` after `epochs_done`: train, measure, checkpoint, report, `on_epoch`."""
    started = time.perf_counter() - history.seconds
    threshold = decision_threshold(run.model)
    for epoch in range(epochs_done + 1, schedule.epochs + 1):
        history.loss.append(_train_epoch(run, schedule, epoch, history))
        history.accuracy.append(_epoch_accuracy(run, threshold))
        history.seconds = time.perf_counter() - started
        if run.checkpoint is not None:  # before on_epoch: a crash there loses nothing
            save_checkpoint(run.checkpoint, run.model, run.optimizer,  # type: ignore[arg-type]
                            _progress(run, schedule, history, epoch))
        if run.verbose:
            acc = history.accuracy[-1]
            acc_text = f", accuracy {acc:.1%}" if acc is not None else ""
            print(f"epoch {epoch}/{schedule.epochs}: loss {history.loss[-1]:.4f}{acc_text}"
                  f" ({history.seconds:.1f} s)", file=sys.stderr, flush=True)
        if run.on_epoch:
            run.on_epoch(epoch, history)
    return history


def _epoch_accuracy(run: _Run, threshold: Optional[float]) -> Optional[float]:
    """The training accuracy of the model as it stands; None where it does not apply."""
    try:
        return _fraction_right(run.model, run.examples, threshold, run.compiled)
    except ValueError:  # no decision rule for these labels
        return None


# ---- fit -------------------------------------------------------------------------------------

def _check_parts(model: object, loss_fn: object, optimizer: object, on_epoch: object) -> None:
    """TypeErrors for a model, loss, optimiser or callback of the wrong kind."""
    check_model_and_loss(model, loss_fn, "fit")
    if optimizer is not None and not (callable(getattr(optimizer, "step", None))
                                      and callable(getattr(optimizer, "zero_grad", None))):
        raise TypeError(f"optimizer must be an Optimizer (SGD, Adam), got {type(optimizer).__name__}")
    if on_epoch is not None and not callable(on_epoch):
        raise TypeError(f"on_epoch must be a function (epoch, history), got {type(on_epoch).__name__}")


def _check_numbers(model: object, epochs: object, workers: object, l2: object,
                   micro_batch_size: object) -> tuple[float, bool]:
    """ValueErrors for counts and sizes that are not whole numbers, or a negative l2; returns
    l2 and whether `workers` asks for parallel gradients."""
    if not is_whole_number(epochs):
        raise ValueError(f"epochs must be a whole number >= 1, got {epochs!r}")
    try:
        l2_value = as_float(l2, "l2")
    except OverflowError:  # an int beyond the float range
        l2_value = math.inf
    if not 0.0 <= l2_value < math.inf:
        raise ValueError(f"l2 must be a finite number >= 0, got {l2!r}")
    if micro_batch_size is not None and not is_whole_number(micro_batch_size):
        raise ValueError(f"micro_batch_size must be a whole number >= 1 or None, got {micro_batch_size!r}")
    parallel = uses_workers(workers)
    if getattr(model, "couples_examples", False):
        _check_independent_pieces(parallel, micro_batch_size)
    return l2_value, parallel


def _check_optimizer_holds(model: Module, optimizer: Optimizer) -> None:
    """ValueError unless `optimizer` updates each of the model's parameters (in any order) and
    nothing else: an optimiser built on another model's parameters would train nothing."""
    held = getattr(optimizer, "params", None)
    if held is None:  # an optimiser of our own kind keeps its parameters there; others cannot be told
        return
    ours = model.parameters()
    if sorted(map(id, held)) != sorted(map(id, ours)):
        shared = len({id(p) for p in held} & {id(p) for p in ours})
        raise ValueError(f"the optimiser must update exactly model.parameters() (e.g. "
                         f"SGD(model.parameters())); it holds {len(held)} parameters, {shared} of them "
                         f"among the model's {len(ours)}")


def _check_independent_pieces(parallel: bool, micro_batch_size: object) -> None:
    """ValueError if a model whose examples are coupled would have its batches split."""
    if micro_batch_size is not None:
        raise ValueError("micro-batching needs independent examples, but this model's batch norm "
                         "normalises each feature with the batch's mean and variance (its examples "
                         "are coupled), so a micro-batch's gradient is not a part of the batch's; "
                         "train it without micro_batch_size")
    if parallel:
        raise ValueError("workers splits each batch over processes, but this model's batch norm "
                         "normalises over the whole batch (its examples are coupled); use workers=1")


def _workers(model: Module, loss_fn: LossFn, workers: Workers, parallel: bool) -> ContextManager[Any]:
    """A `DataParallel` over `workers` when `parallel`, else nothing."""
    if not parallel:
        return nullcontext()
    return DataParallel(model, loss_fn, workers)


def fit(
    model: Module,
    examples: Sequence[tuple],
    loss_fn: LossFn,
    optimizer: Optional[Optimizer] = None,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    l2: float = 0.0,
    shuffle: bool = True,
    seed: Optional[int] = 0,
    micro_batch_size: Optional[int] = None,
    workers: Workers = 1,
    checkpoint: Optional[PathLike] = None,
    resume: bool = False,
    compiled: bool = True,
    verbose: bool = True,
    on_epoch: Optional[Callable[[int, History], None]] = None,
) -> History:
    """Train `model` on `examples` [(x, y), ...] with mini-batches; return the `History`.

    What each step computes: `loss_fn(model(x), y)` averaged over the batch with `batch_mean`,
    plus `l2`·Σp² (l2 >= 0), then `optimizer` (default SGD, lr 0.05) steps.
    `micro_batch_size` builds each batch's graphs that many examples at a time (the same
    gradient, to rounding, in less memory); `workers` > 1 computes each batch's gradient in
    that many processes, or on a `concurrent.futures.Executor` given instead
    (`parallel.DataParallel`; `loss_fn` must then be a module-level function).
    Which examples: `epochs` passes over `examples` in batches of `batch_size`, shuffled by
    `seed` + epoch (seed None: a random seed, kept in checkpoints).
    Checkpoints: with `checkpoint=PATH`, the model, optimiser state, History and shuffling
    state are written there atomically at the end of every epoch, before `on_epoch`; with
    `resume=True` too, a fresh model and optimiser built as before continue from that file (if
    it exists) and end exactly where the uninterrupted run would (docs/checkpoints.md).
    `compiled` (default) runs each whole-batch step through `compile_loss(model, loss_fn)`
    for a library model and loss (`compile.known_stable`): the same History, bit for bit,
    several times faster; False always builds the graphs.
    Reporting: with `verbose`, one line per epoch (and a progress line every 5 s) on stderr;
    `on_epoch(epoch, history)` after each epoch.
    A NaN or infinite loss or gradient (or an overflow) raises `TrainingDiverged` naming the
    epoch and step, leaving the last good parameters in the model. Examples that are not (x, y)
    pairs, non-finite inputs or targets, and an optimiser that does not hold exactly
    `model.parameters()` are refused before any work.
    """
    _check_parts(model, loss_fn, optimizer, on_epoch)
    l2, parallel_wanted = _check_numbers(model, epochs, workers, l2, micro_batch_size)
    minibatches(examples, batch_size)  # refuses bad data or batch sizes before any work
    _check_examples(examples, "fit")
    optimizer = optimizer or SGD(model.parameters(), lr=0.05)
    _check_optimizer_holds(model, optimizer)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=PATH, the file to resume from")
    if checkpoint is not None:
        check_checkpointable(model, optimizer, checkpoint)
    if seed is not None and not isinstance(seed, Integral):
        raise TypeError(f"seed must be a whole number or None, got {type(seed).__name__}")
    schedule = Schedule(epochs, batch_size, bool(shuffle),
                        int(seed) if seed is not None else random.SystemRandom().randrange(2**63))
    with _workers(model, loss_fn, workers, parallel_wanted) as parallel:
        run = _Run(model, examples, loss_fn, optimizer, l2, micro_batch_size, parallel, verbose,
                   on_epoch, checkpoint, _fingerprint(examples) if checkpoint is not None else "")
        if compiled and parallel is None and micro_batch_size is None:
            try:
                run.compiled = compile_loss(model, loss_fn)
            except NotCompilable:
                pass  # the graph path
        history, done = History(), 0
        if checkpoint is not None and resume:
            history, done, schedule = _resume(run, schedule, seed_given=seed is not None)
        return _run_epochs(run, schedule, history, done)
