"""The training loop: `fit` runs epochs of mini-batches, each step one forward pass per example, one
batch-loss node, one backward pass and one optimiser step. Its pieces stand on their own: a batch's
loss and gradient (`batch_gradient`: graphs, micro-batches or worker processes; or the compiled
loss), the decision rule of `accuracy`, and checkpoints (docs/api.md#training, docs/checkpoints.md)."""

from __future__ import annotations

import copy
import functools
import hashlib
import math
import random
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from typing import Any

from ._checks import as_float, as_seed, check_model_and_loss, is_whole_number
from .batch import batch_mean, batch_sum
from .compile import NotCompilable, compile_loss, known_stable
from .data import minibatches
from .engine import Value, gc_paused
from .losses import LossFn, bce_with_logits, hinge, l2_penalty, mse
from .nn import Module
from .optim import SGD, Optimizer
from .parallel import DataParallel, Workers
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


def _checked_examples(examples: Sequence[Any], caller: str) -> list[tuple]:
    """The examples as a list; ValueError if none, or naming the first not an (x, y) pair or not finite."""
    examples = list(examples)
    if not examples:
        raise ValueError(f"{caller}: no examples")
    for i, example in enumerate(examples):
        if not isinstance(example, (tuple, list)) or len(example) != 2:
            raise ValueError(f"{caller}: each example must be an (x, y) pair; got {example!r:.40} at index {i} "
                             "(for inputs xs and targets ys, pass list(zip(xs, ys)))")
        numbers = [v for part in example for v in (part if isinstance(part, (list, tuple)) else [part])]
        if any(isinstance(v := getattr(n, "data", n), float) and not math.isfinite(v) for n in numbers):
            raise ValueError(f"{caller}: example {i} ({example!r:.80}) holds a NaN or an infinity; inputs and targets "
                             "must be finite")
    return examples


def _threshold(model: object, labels: set[object], loss_fn: object) -> float | None:
    """A one-output model's decision threshold: 0.5 for a sigmoid, and for a linear or tanh output 0.5
    for mse on 0/1 labels, 0 for a score or logit (hinge, bce_with_logits, labels -1/+1); else None."""
    unit = getattr(model, "neurons", [model])[0]  # (a Layer: its one neuron)
    kind = getattr(unit, "output_activation", getattr(unit, "activation", None))
    score = kind in ("linear", "tanh")
    if kind == "sigmoid" or (score and loss_fn is mse and labels <= {0, 1}):
        return 0.5
    return 0.0 if score and (loss_fn in (hinge, bce_with_logits, mse) or -1 in labels) else None


def _accuracy(model: Callable[..., Any], examples: list[tuple], threshold: float | None = None,
              loss_fn: object = None, scores: list[Any] | None = None) -> float:
    """`accuracy`, knowing the loss the model was trained with and, perhaps, its outputs."""
    if scores is None:  # (a batch norm model in eval mode, its mode restored after)
        coupled = getattr(model, "couples_examples", False)
        with gc_paused(), model.evaluating() if coupled else nullcontext():  # type: ignore[attr-defined]
            outputs = [model(x) for x, _ in examples]
        scores = [[o.data for o in out] if isinstance(out, list) else getattr(out, "data", out) for out in outputs]
    ys = [y for _, y in examples]
    if any(math.isnan(v) for s in scores for v in (s if isinstance(s, list) else [s])):
        raise ValueError("the model outputs NaN, and a NaN output classifies nothing")
    if isinstance(scores[0], list):
        for y in (y for y in ys if not is_whole_number(y, 0) or y >= len(scores[0])):
            raise ValueError(f"label {y!r:.40} is not a class of a model with {len(scores[0])} outputs (0 to n-1)")
        return sum(s.index(max(s)) == y for s, y in zip(scores, ys, strict=True)) / len(ys)
    if not all(isinstance(y, (int, float)) and not isinstance(y, bool) and y in (-1, 0, 1) for y in ys):
        raise ValueError("accuracy needs class labels (-1/+1, 0/1, or class indices)")
    threshold = threshold if threshold is not None else _threshold(model, set(ys), loss_fn)
    if threshold is None:
        raise ValueError("no decision rule for this model and labels: pass threshold= (0: score or logit, 0.5: else)")
    return sum((s > threshold) == (y == 1) for s, y in zip(scores, ys, strict=True)) / len(ys)


def accuracy(model: Callable[..., Any], examples: Sequence[tuple], *, threshold: float | None = None) -> float:
    """The fraction of `examples` (x, y) classified right: the argmax of several outputs; one output above
    `threshold` (default 0.5 for a sigmoid, 0 for a score with labels ±1; 0/1 labels need it given)."""
    if threshold is not None and not math.isfinite(as_float(threshold, "threshold")):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return _accuracy(model, _checked_examples(examples, "accuracy"), threshold)


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
        penalty = l2_penalty(params, l2) if l2 else Value(0.0)
        penalty.backward()  # first, as (batch_mean(...) + l2_penalty(...)).backward() adds it
        loss = gradient(batch) + penalty.data
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
    return {"batch_size": batch_size, "seed": seed, "l2": l2, "micro_batch_size": micro_batch_size,
            "loss_fn": name, "examples": len(examples), "fingerprint": fingerprint}


def _resume(path: PathLike, model: Module, optimizer: Optimizer, run: dict[str, Any],
            epochs: int) -> tuple[int, History, int] | None:
    """Epochs done, History, seed of the checkpoint at `path`, now loaded (None: no file); ModelFileError."""
    try:  # a trial load into copies: nothing of ours changes until the progress is checked
        progress = load_checkpoint(path, *copy.deepcopy((model, optimizer)))  # type: ignore[arg-type]
    except FileNotFoundError:
        return None
    try:
        done, history, theirs = progress["epochs_done"], History(**progress["history"]), progress["run"]
        seed = theirs["seed"]
        numbers = [v for v in [*history.loss, *history.accuracy, history.seconds] if v is not None]
        if not (type(seed) is int and is_whole_number(done, 0) and done <= epochs and is_whole_number(history.steps, 0)
                and len(history.loss) == len(history.accuracy) == done
                and all(type(v) is float and math.isfinite(v) for v in numbers)):
            raise TypeError(f"{done!r:.20} epochs done, for a run of epochs={epochs}, or a damaged history or seed")
    except (KeyError, TypeError) as error:
        raise ModelFileError(path, f"its progress is not what fit writes for this run: {error}") from None
    for key in (k for k, v in run.items() if theirs.get(k) != v and not (k == "seed" and v is None)):
        what = f"{key} is {theirs.get(key)!r:.40}, this run has {run[key]!r}"
        what = "the examples differ" if key == "fingerprint" else what
        raise ModelFileError(path, f"the checkpoint was made for another run: {what}")
    load_checkpoint(path, model, optimizer)  # type: ignore[arg-type]
    return done, history, seed


def _checked_arguments(model: Module, loss_fn: LossFn, optimizer: object, epochs: object, l2: object,
                       micro_batch_size: object, on_epoch: object) -> float:
    """TypeErrors and ValueErrors for arguments of the wrong kind or value; returns l2 as a float."""
    check_model_and_loss(model, loss_fn, "fit")
    held, ours = getattr(optimizer, "params", None), model.parameters()
    if held is not None and sorted(map(id, held)) != sorted(map(id, ours)):
        raise ValueError(f"the optimiser must update exactly model.parameters() (e.g. SGD(model.parameters())); it "
                         f"holds {len(held)} parameters, {len(set(map(id, held)) & set(map(id, ours)))} of the model's")
    if not callable(getattr(optimizer or SGD, "step", None)) or not callable(on_epoch or print):
        raise TypeError(f"optimizer must be an Optimizer and on_epoch a function (epoch, history), got "
                        f"{type(optimizer).__name__} and {type(on_epoch).__name__}")
    for name, count in (("epochs", epochs), ("micro_batch_size", 1 if micro_batch_size is None else micro_batch_size)):
        if not is_whole_number(count):
            raise ValueError(f"{name} must be a whole number >= 1, got {count!r}")
    if micro_batch_size is not None and getattr(model, "couples_examples", False):
        raise ValueError("micro-batching needs independent examples, but this model's batch norm normalises each "
                         "feature over the whole batch (its examples are coupled); train it without micro_batch_size")
    if not 0.0 <= as_float(l2, "l2") < math.inf:
        raise ValueError(f"l2 must be a finite number >= 0, got {l2!r}")
    return float(l2)  # type: ignore[arg-type]


def fit(model: Module, examples: Sequence[tuple], loss_fn: LossFn, optimizer: Optimizer | None = None, *,
        epochs: int = 10, batch_size: int = 32, l2: float = 0.0, seed: int | None = 0,
        micro_batch_size: int | None = None, workers: Workers = 1, checkpoint: PathLike | None = None,
        resume: bool = False, on_epoch: Callable[[int, History], None] | None = None) -> History:
    """Train `model` on `examples` [(x, y), ...] in mini-batches; return the `History`.

    Each step: `loss_fn(model(x), y)` per example joined by one `batch_mean`, plus `l2`·Σp², then
    `optimizer` (default SGD, lr 0.05) steps; epoch e (from 1) shuffles with `random.Random(seed + e)`.
    Library models and losses run compiled (bit for bit the same); `micro_batch_size` k builds graphs
    k examples at a time; `workers` > 1 or an Executor splits batches over processes. `checkpoint`
    is saved before the first epoch and after each (before `on_epoch(epoch, history)`); `resume`
    continues a killed run from it, bit for bit. A NaN or inf raises `TrainingDiverged`.
    """
    l2 = _checked_arguments(model, loss_fn, optimizer, epochs, l2, micro_batch_size, on_epoch)
    minibatches(examples, batch_size)  # refuses bad data and batch sizes before any work
    examples = _checked_examples(examples, "fit")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=PATH, the file to resume from")
    optimizer = optimizer or SGD(model.parameters(), lr=0.05)
    run = _run(examples, loss_fn, batch_size, seed, l2, micro_batch_size) if checkpoint is not None else {}
    resumed = _resume(checkpoint, model, optimizer, run, epochs) if resume and checkpoint is not None else None
    fresh = (0, History(), random.SystemRandom().randrange(2**63) if seed is None else as_seed(seed))
    done, history, seed = resumed or fresh
    if checkpoint is not None:
        progress = {"epochs_done": done, "history": vars(history), "run": {**run, "seed": seed}}  # (vars: live)
        if resumed is None:  # now: a model or optimiser a checkpoint cannot hold is refused before any work
            save_checkpoint(checkpoint, model, optimizer, progress)  # type: ignore[arg-type]
    compiled = None
    with suppress(NotCompilable):  # (known_stable: until compile_loss raises it, as the contract says)
        if workers == 1 and micro_batch_size is None and known_stable(model, loss_fn):
            compiled = compile_loss(model, loss_fn)
    params, started = model.parameters(), time.perf_counter() - history.seconds
    with DataParallel(model, loss_fn, workers) if workers != 1 else nullcontext() as parallel:
        gradient = compiled.grad if compiled is not None else functools.partial(
            batch_gradient, model, loss_fn=loss_fn, micro_batch_size=micro_batch_size, parallel=parallel)
        for epoch in range(done + 1, epochs + 1):
            total = 0.0
            for step, batch in enumerate(minibatches(examples, batch_size, seed=seed + epoch), start=1):
                try:
                    total += _step(gradient, batch, optimizer, params, l2) * len(batch)
                except (FloatingPointError, OverflowError) as error:  # the step changed nothing
                    raise TrainingDiverged(epoch, step, str(error) or type(error).__name__) from error
                history.steps += 1
            history.loss.append(total / len(examples))
            try:
                outputs = compiled.outputs(examples) if compiled is not None else None
                history.accuracy.append(_accuracy(model, examples, None, loss_fn, outputs))
            except ValueError:  # no decision rule for these labels
                history.accuracy.append(None)
            history.seconds = time.perf_counter() - started
            if checkpoint is not None:  # before on_epoch: a crash there loses nothing
                progress["epochs_done"] = epoch
                save_checkpoint(checkpoint, model, optimizer, progress)  # type: ignore[arg-type]
            if on_epoch is not None:
                on_epoch(epoch, history)
    return history
