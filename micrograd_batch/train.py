"""The training loop: `fit` runs epochs of mini-batches, each step one forward pass per example, one
batch-loss node, one backward pass and one optimiser step. Its pieces stand on their own: a batch's
loss and gradient (`batch_gradient`: graphs, micro-batches or worker processes; or the compiled
loss), the checkpoint a killed run resumes from, and `metrics.training_accuracy`. See docs/api.md#training."""

from __future__ import annotations

import copy
import functools
import hashlib
import math
import random
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from ._checks import as_float, as_seed, check_model_and_loss, gc_paused, is_whole_number
from .batch import batch_mean, batch_sum
from .compile import CompiledLoss, NotCompilable, compile_loss
from .data import minibatches
from .engine import Value
from .losses import LossFn
from .nn import Module
from .optim import SGD, Optimizer
from .parallel import DataParallel, Workers
from .metrics import checked_examples, training_accuracy
from .persist import ModelFileError, PathLike, load_checkpoint, save_checkpoint


class TrainingDiverged(FloatingPointError):
    """The loss or a gradient became NaN or infinite at `epoch`, `step`; the last good parameters stay."""

    def __init__(self, epoch: int, step: int, reason: str) -> None:
        super().__init__(f"training stopped at epoch {epoch}, step {step}: {reason}. The parameters are those "
                         "from before this step (the last good ones); try a smaller learning rate.")
        self.epoch, self.step = epoch, step


@dataclass
class History:
    """What `fit` measured per epoch: `loss` (the mean of its batch losses, each as its step began),
    `accuracy` (at the epoch's end; None: no rule applies); `steps`, `seconds` (not kept by a resume)."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float | None] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0


def batch_gradient(model: Module, batch: Sequence[tuple], loss_fn: LossFn, *, micro_batch_size: int | None = None,
                   parallel: DataParallel | None = None) -> float:
    """One batch's mean loss; adds its gradient (1/m) Σ_i ∇L_i into every `p.grad`. The graphs are
    joined by `batch_mean`, or built `micro_batch_size` k at a time (each piece's `batch_sum` seeded
    with 1/m: the same gradient to rounding, in the memory of k); `parallel`: by a DataParallel."""
    m, k, loss = len(batch), micro_batch_size or len(batch), 0.0
    for piece in (batch[start:start + k] for start in range(0, m, k)):
        if parallel is not None:
            loss += parallel.grad(piece, m)
            continue
        with gc_paused():  # building graphs makes many objects and no cycles: skip the collector's passes
            xs, ys = [x for x, _ in piece], [y for _, y in piece]
            coupled = getattr(model, "couples_examples", False)
            outputs = model.forward_batch(xs) if coupled else [model(x) for x in xs]  # type: ignore[attr-defined]
            losses = [loss_fn(out, y) for out, y in zip(outputs, ys, strict=True)]
            node = (batch_mean if k >= m else batch_sum)(losses)
            node.backward(1.0 if k >= m else 1.0 / m)
        loss += node.data if k >= m else node.data / m
        del outputs, losses, node  # this piece's graphs are freed before the next is built
    return loss


def _step(gradient: Callable[[Sequence[tuple]], float], batch: Sequence[tuple], optimizer: Optimizer,
          params: list[Value], l2: float) -> float:
    """Zero the gradients, add l2's then the batch's, step; FloatingPointError (nothing changed) if not finite."""
    optimizer.zero_grad()
    try:
        for p in params if l2 else ():  # l2_penalty's gradient first, bit for bit as backward() adds
            p.grad += 2.0 * l2 * p.data  # it from (batch_mean(...) + l2_penalty(...)): 0.0 + 2αp·1.0
        loss = gradient(batch) + (l2 * math.fsum(p.data * p.data for p in params) if l2 else 0.0)
        if not math.isfinite(loss):
            raise FloatingPointError(f"the batch loss is {loss}")
        optimizer.step()
    except BaseException:
        optimizer.zero_grad()  # no half-summed gradient is left behind
        raise
    return loss


def _run(examples: list[tuple], loss_fn: LossFn, batch_size: int, seed: int | None, l2: float,
         micro_batch_size: int | None) -> dict[str, Any]:
    """What a checkpoint must share with this run to be resumed by it (seed None: the file's)."""
    named = loss_fn.func if isinstance(loss_fn, functools.partial) else loss_fn
    name = f"{getattr(named, '__module__', None)}.{getattr(named, '__qualname__', type(named).__qualname__)}"
    name = name if named is loss_fn else f"functools.partial({name})"
    fingerprint = hashlib.sha256(repr(examples).encode()).hexdigest()  # (a float's repr is exact)
    return {"batch_size": batch_size, "seed": as_seed(seed), "l2": l2, "micro_batch_size": micro_batch_size,
            "loss_fn": name, "examples": len(examples), "fingerprint": fingerprint}


def _resume(path: PathLike, model: Module, optimizer: Optimizer, run: dict[str, Any],
            epochs: int) -> tuple[int, History, int] | None:
    """Epochs done, History, seed of the checkpoint at `path`, now loaded (None: no file); ModelFileError."""
    try:  # a trial load into copies: nothing of ours changes until the progress is checked
        progress = load_checkpoint(path, *copy.deepcopy((model, optimizer)))  # type: ignore[arg-type]
    except FileNotFoundError:
        return None
    done, history, theirs = _checked_progress(progress, epochs, path)
    for key in (k for k, v in run.items() if theirs.get(k) != v and not (k == "seed" and v is None)):
        what = f"{key} is {theirs.get(key)!r:.40}, this run has {run[key]!r}"
        what = "the examples differ" if key == "fingerprint" else what
        raise ModelFileError(path, f"the checkpoint was made for another run: {what}")
    load_checkpoint(path, model, optimizer)  # type: ignore[arg-type]
    return done, history, theirs["seed"]


def _checked_progress(progress: dict[str, Any], epochs: int, path: PathLike) -> tuple[int, History, dict[str, Any]]:
    """Epochs done, History and run of a checkpoint's progress; ModelFileError unless fit wrote it for this run."""
    try:
        done, history, theirs = progress["epochs_done"], History(**progress["history"]), progress["run"]
        numbers = [v for v in [*history.loss, *history.accuracy, history.seconds] if v is not None]
        if not (type(theirs["seed"]) is int and is_whole_number(done, 0) and done <= epochs
                and is_whole_number(history.steps, 0) and len(history.loss) == len(history.accuracy) == done
                and all(type(v) is float and math.isfinite(v) for v in numbers)):
            raise TypeError(f"{done!r:.20} epochs done, for a run of epochs={epochs}, or a damaged history or seed")
    except (KeyError, TypeError) as error:
        raise ModelFileError(path, f"its progress is not what fit writes for this run: {error}") from None
    return done, history, theirs


def _start(checkpoint: PathLike | None, resume: bool, model: Module, optimizer: Optimizer, run: dict[str, Any],
           epochs: int) -> tuple[int, History, dict[str, Any]]:
    """Epochs done, History and the progress to save (`run` gets its seed): from the checkpoint with
    `resume` if there is one, else a fresh start whose checkpoint is written now, before any work."""
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=PATH, the file to resume from")
    resumed = _resume(checkpoint, model, optimizer, run, epochs) if resume and checkpoint is not None else None
    done, history, run["seed"] = resumed or (0, History(), random.SystemRandom().randrange(2**63)
                                              if run["seed"] is None else run["seed"])
    progress = {"epochs_done": done, "history": vars(history), "run": run}  # (vars: History's live fields)
    if checkpoint is not None and resumed is None:
        save_checkpoint(checkpoint, model, optimizer, progress)  # type: ignore[arg-type]
    return done, history, progress


def _compiled(model: Module, loss_fn: LossFn) -> CompiledLoss | None:
    """`compile_loss(model, loss_fn)`, or None where it raises NotCompilable (fit builds graphs then)."""
    try:
        return compile_loss(model, loss_fn)
    except NotCompilable:
        return None


def _numpy_trainer(model: Module, loss_fn: LossFn, examples: list[tuple], optimizer: Optimizer, l2: float,
                   backend: str, workers: Workers, micro_batch_size: int | None) -> Any:
    """For backend="numpy" the steps on arrays (`numpy_backend.Trainer`), else None; its errors before any work."""
    if backend == "python":
        return None
    if workers != 1 or micro_batch_size is not None:
        raise ValueError(f"backend={backend!r:.20} takes whole batches here: no workers or micro_batch_size")
    from .numpy_backend import MatrixLoss, Trainer  # (numpy is imported only when asked for)
    return Trainer(MatrixLoss(model, loss_fn, backend), examples, optimizer, l2)


def _epoch_steps(trainer: Any, gradient: Callable[[Sequence[tuple]], float], optimizer: Optimizer,
                 params: list[Value], l2: float) -> AbstractContextManager[Callable[[Sequence[tuple]], float]]:
    """One epoch's step function: the numpy Trainer's (its arrays written back when the epoch ends,
    also by an exception), or fit's `_step`."""
    return trainer.epoch() if trainer else nullcontext(lambda batch: _step(gradient, batch, optimizer, params, l2))


def _checked_arguments(model: Module, loss_fn: LossFn, optimizer: object, epochs: object, l2: object,
                       micro_batch_size: object, on_epoch: object, workers: object) -> float:
    """TypeErrors and ValueErrors for arguments of the wrong kind or value; returns l2 as a float."""
    check_model_and_loss(model, loss_fn, "fit")
    held, ours = getattr(optimizer, "params", None), model.parameters()
    if held is not None and sorted(map(id, held)) != sorted(map(id, ours)):
        raise ValueError(f"the optimiser must update exactly model.parameters() (e.g. SGD(model.parameters())); it "
                         f"holds {len(held)} parameters, {len(set(map(id, held)) & set(map(id, ours)))} of the model's")
    if not callable(getattr(optimizer or SGD, "step", None)) or not callable(on_epoch or print):
        raise TypeError(f"optimizer must be an Optimizer and on_epoch a function (epoch, history), got "
                        f"{type(optimizer).__name__} and {type(on_epoch).__name__}")
    for name, count in (("epochs", epochs), ("micro_batch_size", micro_batch_size)):
        count = 1 if count is None else count
        if not is_whole_number(count):
            raise ValueError(f"{name} must be a whole number >= 1, got {count!r}")
    if (micro_batch_size is not None or workers != 1) and getattr(model, "couples_examples", False):
        raise ValueError("micro-batching and workers need independent examples, but this model's batch norm "
                         "normalises over the whole batch (its examples are coupled): use workers=1, whole batches")
    try:
        value = as_float(l2, "l2")
    except OverflowError:  # an int beyond the range of floats
        value = math.inf
    if not 0.0 <= value < math.inf:
        raise ValueError(f"l2 must be a finite number >= 0, got {l2!r:.40}")
    return value


def _end_of_epoch_outputs(examples: list[tuple], *computers: Any) -> list[Any] | None:
    """The outputs for the epoch's accuracy from the first of the numpy trainer, the workers (only where the
    model compiles: the last is the compiled loss) and the compiled loss; None on the graph path."""
    trainer, parallel, compiled = computers
    scorer = trainer or ((parallel or compiled) if compiled is not None else None)
    return scorer.outputs(examples) if scorer is not None else None


def fit(model: Module, examples: Sequence[tuple], loss_fn: LossFn, optimizer: Optimizer | None = None, *,
        epochs: int = 10, batch_size: int = 32, l2: float = 0.0, seed: int | None = 0,
        micro_batch_size: int | None = None, workers: Workers = 1, checkpoint: PathLike | None = None,
        resume: bool = False, on_epoch: Callable[[int, History], None] | None = None,
        backend: str = "python") -> History:
    """Train `model` on `examples` [(x, y), ...] in mini-batches; return the `History`.

    Each step: `loss_fn(model(x), y)` per example joined by one `batch_mean`, plus `l2`·Σp², then
    `optimizer` (default SGD, lr 0.05) steps; epoch e (from 1) shuffles with `random.Random(seed + e)`.
    Library models and losses run compiled (bit for bit the same); `micro_batch_size` k builds graphs
    k examples at a time; `workers` > 1 or an Executor splits batches over processes. `checkpoint`
    is saved before the first epoch and after each (before `on_epoch(epoch, history)`); `resume`
    continues a killed run from it, bit for bit. A NaN or inf raises `TrainingDiverged`.
    `backend="numpy"`: numpy matrix code, the parameters in arrays during each epoch (docs/performance.md).
    """
    l2 = _checked_arguments(model, loss_fn, optimizer, epochs, l2, micro_batch_size, on_epoch, workers)
    minibatches(examples, batch_size)  # refuses bad data and batch sizes before any work
    examples = checked_examples(examples, "fit")
    optimizer = optimizer or SGD(model.parameters(), lr=0.05)
    trainer = _numpy_trainer(model, loss_fn, examples, optimizer, l2, backend, workers, micro_batch_size)
    run = _run(examples, loss_fn, batch_size, seed, l2, micro_batch_size)
    done, history, progress = _start(checkpoint, resume, model, optimizer, run, epochs)
    compiled = _compiled(model, loss_fn) if trainer is None else None  # its outputs measure the accuracy
    params, started = model.parameters(), time.perf_counter() - history.seconds
    with DataParallel(model, loss_fn, workers, examples=examples) if workers != 1 else nullcontext() as parallel:
        gradient = compiled.grad if compiled and parallel is None and micro_batch_size is None else functools.partial(
            batch_gradient, model, loss_fn=loss_fn, micro_batch_size=micro_batch_size, parallel=parallel)
        for epoch in range(done + 1, epochs + 1):
            total = 0.0
            with _epoch_steps(trainer, gradient, optimizer, params, l2) as take_step:
                for step, batch in enumerate(minibatches(examples, batch_size, seed=run["seed"] + epoch), start=1):
                    try:
                        total += take_step(batch) * len(batch)
                    except (FloatingPointError, OverflowError) as error:  # the step changed nothing
                        raise TrainingDiverged(epoch, step, str(error) or type(error).__name__) from error
                    history.steps += 1
            history.loss.append(total / len(examples))
            outputs = _end_of_epoch_outputs(examples, trainer, parallel, compiled)
            history.accuracy.append(training_accuracy(model, examples, loss_fn, outputs))
            history.seconds = time.perf_counter() - started
            if checkpoint is not None:  # before on_epoch: a crash there loses nothing
                progress["epochs_done"] = epoch
                save_checkpoint(checkpoint, model, optimizer, progress)  # type: ignore[arg-type]
            if on_epoch is not None:
                on_epoch(epoch, history)
    return history
