"""Data parallelism: one mini-batch's gradient, computed by several processes at once.

The batch gradient is a mean over the m examples, and a sum splits into partial sums:

    ĝ = (1/m) Σ_{i=1..m} ∇L_i = (1/m) ( Σ_{i in chunk 1} ∇L_i + ... + Σ_{i in chunk N} ∇L_i )

So each of N worker processes takes one chunk of the examples, builds their graphs on its own
copy of the model, backpropagates `batch_sum` of their losses (local derivative 1, not 1/m),
and sends back two plain sums: Σ L_i and Σ ∇L_i over its chunk. The parent adds the N partial
sums and divides by m -- once, at the end. Nothing but numbers crosses between processes:
the current parameter values go out, the sums come back. Standard library only
(`multiprocessing`); the result equals the serial `batch_mean(...).backward()` up to the
order of floating-point additions (about 1e-16 relative).

    with DataParallel(model, hinge, workers=2) as parallel:
        for batch in minibatches(...):
            model.zero_grad()
            loss = parallel.grad(batch)     # mean loss; p.grad += mean gradient
            optimizer.step()
"""

from __future__ import annotations

import math
import multiprocessing
from multiprocessing.context import BaseContext
from typing import Any, Callable, Optional, Sequence, Union

from .batch import batch_sum
from ._checks import is_whole_number
from .engine import Value, gc_paused
from .nn import Module

Example = tuple[Any, Any]
LossFn = Callable[[Any, Any], Value]  # loss_fn(model(x), y) -> that example's loss L_i


def split(examples: Sequence[Example], parts: int) -> list[list[Example]]:
    """`examples` cut into at most `parts` contiguous chunks whose sizes differ by at most 1."""
    if not is_whole_number(parts):
        raise ValueError(f"the number of workers must be a whole number >= 1, got {parts!r}")
    examples = list(examples)
    parts = min(parts, len(examples))
    size, extra = divmod(len(examples), parts)
    chunks, start = [], 0
    for k in range(parts):
        stop = start + size + (1 if k < extra else 0)
        chunks.append(examples[start:stop])
        start = stop
    return chunks


Scores = Union[float, list[float]]  # one example's model output as plain numbers


def plain_scores(output: Union[Value, float, Sequence[Union[Value, float]]]) -> Scores:
    """A model output (one Value or a list) as plain numbers, to send between processes.
    Numbers are passed through, so it can be applied to either form."""
    if isinstance(output, (Value, int, float)):
        return output.data if isinstance(output, Value) else float(output)
    return [o.data if isinstance(o, Value) else float(o) for o in output]


def chunk_sums(
    model: Module, chunk: Sequence[Example], loss_fn: LossFn
) -> tuple[float, list[float], list[Scores]]:
    """Σ_i L_i and Σ_i ∂L_i/∂θ over the examples of `chunk`, and each example's output:
    what one worker sends back.

    One backward pass from `batch_sum` of the chunk's losses gives the sum of the per-example
    gradients. The model's `.grad` values are overwritten (zeroed first).
    """
    params = model.parameters()
    for p in params:
        p.grad = 0.0
    with gc_paused():
        outputs = [model(x) for x, _ in chunk]
        total = batch_sum(loss_fn(out, y) for out, (_, y) in zip(outputs, chunk))
        total.backward()
    return total.data, [p.grad for p in params], [plain_scores(out) for out in outputs]


# ---- the worker side: each process keeps its own copy of the model --------------------------

_worker_model: Optional[Module] = None
_worker_loss_fn: Optional[LossFn] = None


def _start_worker(model: Module, loss_fn: LossFn) -> None:
    """Pool initializer: remember this process's copy of the model and the loss function."""
    global _worker_model, _worker_loss_fn
    _worker_model, _worker_loss_fn = model, loss_fn


def _work_on(param_values: list[float], chunk: list[Example]) -> tuple[float, list[float], list[Scores]]:
    """One task: load the parent's current parameter values, then return the chunk's sums."""
    assert _worker_model is not None and _worker_loss_fn is not None, "worker not started"
    for p, value in zip(_worker_model.parameters(), param_values):
        p.data = value
    return chunk_sums(_worker_model, chunk, _worker_loss_fn)


class DataParallel:
    """A pool of `workers` processes that compute a batch's mean gradient together.

    `loss_fn(model(x), y)` gives one example's loss (e.g. `losses.hinge`); where processes are
    started by "spawn" (Windows, macOS) it and the model are pickled, so `loss_fn` must then
    be a module-level function. Use as a context manager, or call `close()` when done.
    """

    def __init__(
        self,
        model: Module,
        loss_fn: LossFn,
        workers: int = 2,
        context: Optional[BaseContext] = None,
    ) -> None:
        if not is_whole_number(workers):
            raise ValueError(f"workers must be a whole number >= 1, got {workers!r}")
        self.model = model
        self.loss_fn = loss_fn
        self.workers = workers
        ctx = context or multiprocessing.get_context()
        self._pool = ctx.Pool(workers, initializer=_start_worker, initargs=(model, loss_fn))

    def grad(self, examples: Sequence[Example]) -> float:
        """The batch's mean loss; adds its mean gradient (1/m) Σ_i ∂L_i/∂θ into each `p.grad`.

        Like `loss.backward()`, it accumulates: zero the gradients first (`model.zero_grad()`).
        """
        return self.grad_and_outputs(examples)[0]

    def grad_and_outputs(self, examples: Sequence[Example]) -> tuple[float, list[Scores]]:
        """`grad(examples)`, and each example's model output as plain numbers, in order."""
        examples = list(examples)
        if not examples:
            raise ValueError("the gradient of an empty batch: there must be at least one example")
        params = self.model.parameters()
        values = [p.data for p in params]
        chunks = split(examples, self.workers)
        sums = self._pool.starmap(_work_on, [(values, chunk) for chunk in chunks])
        m = len(examples)
        for k, p in enumerate(params):
            p.grad += math.fsum(grads[k] for _, grads, _ in sums) / m  # Σ over chunks, then / m
        outputs = [scores for _, _, chunk_scores in sums for scores in chunk_scores]
        return math.fsum(loss for loss, _, _ in sums) / m, outputs

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.close()
        self._pool.join()

    def __enter__(self) -> DataParallel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def parallel_batch_grad(
    model: Module, examples: Sequence[Example], loss_fn: LossFn, workers: int = 2
) -> float:
    """One batch's mean loss, with its mean gradient added into each `p.grad`, by `workers`
    processes started for this call only (use `DataParallel` to keep them across steps)."""
    with DataParallel(model, loss_fn, workers) as parallel:
        return parallel.grad(examples)
