"""Data parallelism: a batch's gradient from several processes. A mean splits into partial sums,
ĝ = (1/m) (Σ_{chunk 1} ∇L_i + ... + Σ_{chunk N} ∇L_i): each task computes one chunk's sums (where the
model compiles, the parent computes one itself), the parent adds them up and divides by m, once. A
worker keeps the compiled loss and the training set under a key; a model that does not compile goes
with every task. Any `concurrent.futures.Executor` runs the tasks (a local pool, Dask's). See docs/parallel.md."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from concurrent.futures import FIRST_EXCEPTION, BrokenExecutor, Executor, Future, ProcessPoolExecutor, wait
from multiprocessing import connection
from typing import Any

from ._checks import gc_paused, is_whole_number
from .batch import _float_sum, batch_sum
from .compile import CompiledLoss, NotCompilable, compile_loss
from .losses import LossFn
from .nn import Module
from .persist import assign  # all or nothing (Ctrl-C)

Example = tuple[Any, Any]
Workers = int | Executor  # how many local processes, or an executor to run the tasks on
Sums = tuple[float, list[float]]  # what one task sends back: Σ L_i and Σ ∇L_i over its chunk
Shipped = tuple[str | None, bytes | None]  # the key a worker keeps an object under, and the object pickled
HELD: dict[str, Any] = {}  # in a worker process: the last few objects it was sent, by key


class WorkerDied(RuntimeError):
    """A worker ended mid-task (a signal, out of memory, `os._exit`); parameters and gradients are as they were."""


def job_of(work: Any) -> bytes:
    """`work` (a model and loss, with their values, or a compiled loss and a training set) pickled
    for the workers; a TypeError naming the fix if it cannot be pickled."""
    try:
        return pickle.dumps(work, pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError) as error:
        raise TypeError(f"the model or loss_fn ({work!r:.60}) cannot be pickled for worker processes ({error}): "
                        "use a loss function at the top level of a module (as losses.hinge), not a lambda") from None


def chunk_sums(job: Shipped, chunk: list[Any] | tuple[int, ...], params: list[float] | None = None,
               outputs: bool = False, held: tuple[Any, Sequence[Example]] | None = None) -> Sums | list | None:
    """One task: Σ_i L_i and Σ_i ∇L_i over `chunk` (examples, or indices into the training set) by the job's
    compiled loss at the values `params` (`outputs`: the outputs there), else by a backward pass on its model.
    The job comes pickled, or as a key (None: not held here; the parent sends it along), or `held` (in hand)."""
    key, blob = job
    held = held or (pickle.loads(blob) if blob is not None else HELD.get(key))  # type: ignore[arg-type]
    if held is None:
        return None
    if blob is not None and key is not None:
        if len(HELD) >= 8:  # a training set and a few structures at a time
            HELD.clear()
        HELD[key] = held
    work, kept = held
    examples = [kept[i] for i in chunk] if isinstance(chunk, tuple) else chunk
    if isinstance(work, CompiledLoss) and outputs:
        if params is not None:  # (this worker's copy of the model)
            assign(work.model.parameters(), params)
        return work.outputs(examples)
    if isinstance(work, CompiledLoss):
        losses, grads, _ = work.run(examples, params, 1.0)  # seed 1: the sums
        return _float_sum(losses), grads
    model, loss_fn = work
    model.zero_grad()  # (the parent's gradients came with it)
    with gc_paused():
        total = batch_sum(loss_fn(model(x), y) for x, y in examples)
        total.backward()
    return total.data, [p.grad for p in model.parameters()]


def _start_worker(lifeline: connection.Connection, barrier: Any) -> None:
    """Pool initializer: a thread ends this worker when `lifeline` closes (the parent stopped the pool or died)."""
    threading.Thread(target=lambda: (connection.wait([lifeline]), os._exit(1)), daemon=True).start()
    barrier.wait(timeout=60)


class DataParallel(AbstractContextManager["DataParallel"]):
    """A batch's mean loss and gradient from `workers`: a number of local processes (forkserver or spawn,
    never fork) or any `concurrent.futures.Executor` (never shut down), in `chunks` (default: the processes,
    or the CPU count), the parent computing one where it compiles. `examples`: the training set, sent to a
    worker once (then batches of these very objects go as indices; do not change them in place)."""

    def __init__(self, model: Module, loss_fn: LossFn, workers: Workers = 2, *, chunks: int | None = None,
                 examples: Sequence[Example] = ()) -> None:
        if not isinstance(workers, Executor) and not is_whole_number(workers):
            raise ValueError(f"workers must be a whole number >= 1 or a concurrent.futures.Executor, got {workers!r}")
        if chunks is not None and not is_whole_number(chunks):
            raise ValueError(f"chunks must be a whole number >= 1, got {chunks!r}")
        self.model, self.loss_fn, self.workers = model, loss_fn, workers
        self.chunks = int(chunks or ((os.cpu_count() or 2) if isinstance(workers, Executor) else workers))
        job_of((model, loss_fn))  # refuses now what cannot go to the workers
        self._examples = list(examples)
        self._index = {id(e): i for i, e in enumerate(self._examples)}
        self._sent: tuple[CompiledLoss, str, Shipped] | None = None  # the compiled loss, its code, key and pickle
        self._pool: tuple[ProcessPoolExecutor, connection.Connection] | None = None

    def grad(self, examples: Sequence[Example], m: int | None = None) -> float:
        """The mean loss of `examples`; adds the mean gradient (1/m) Σ_i ∇L_i into each `p.grad`
        (accumulating, like `backward()`). `m` (default: their number) divides the sums: a
        micro-batch's share of a batch of m. If it raises, no parameter or gradient changed."""
        examples = list(examples)
        if not examples or (m is not None and not is_whole_number(m, len(examples))):
            raise ValueError(f"grad needs at least one example, and m (the size of the batch they are part "
                             f"of) a whole number >= their number, got {len(examples)} examples and m={m!r:.40}")
        if getattr(self.model, "couples_examples", False):
            raise ValueError("workers split each batch into chunks, but this model couples the examples of a "
                             "batch (batch norm in training mode normalises over the whole batch); use workers=1")
        sums = self._run(*self._job(examples))
        m = int(m or len(examples))
        means = [_float_sum(column) / m for column in zip(*(g for _, g in sums), strict=True)]
        assign((), (), [(p, {"grad": p.grad + g}) for p, g in zip(self.model.parameters(), means, strict=True)])
        return _float_sum([loss for loss, _ in sums]) / m

    def outputs(self, examples: Sequence[Example]) -> list | None:
        """Each example's `CompiledLoss.outputs` at the current values, in chunks as `grad`'s (None: not compiled)."""
        job, values, items = self._job(list(examples))
        return None if values is None else [o for part in self._run(job, values, items, True) for o in part]

    def _job(self, examples: list[Example]) -> tuple[Shipped, list[float] | None, list[Example] | tuple[int, ...]]:
        """The job (the compiled loss and training set under a key, new and sent at once when the structure
        changed; else the model and loss), the parameter values, and the examples (indices if the training set's)."""
        try:  # (the structure is read anew, from the model as it is now)
            compiled = self._sent[0] if self._sent else compile_loss(self.model, self.loss_fn)
            new = self._sent is None or self._sent[1] is not compiled.source
            if new:
                self._sent = compiled, compiled.source, (uuid.uuid4().hex, job_of((compiled, self._examples)))
            job, values = self._sent[2] if new else (self._sent[2][0], None), [p.data for p in self.model.parameters()]  # type: ignore[index]
        except NotCompilable:
            job, values = (None, job_of(((self.model, self.loss_fn), ()))), None
        at = [self._index.get(id(e)) for e in examples]  # (the training set is alive: an id found is its example)
        return job, values, tuple(at) if values is not None and None not in at else examples  # type: ignore[arg-type]

    def _run(self, job: Shipped, values: list[float] | None, items: list[Example] | tuple[int, ...],
             outputs: bool = False) -> list[Any]:
        """Each chunk's sums (or outputs), in order (the job by key; if a worker lacks it, all again with
        it). A lost worker raises WorkerDied; it and Ctrl-C stop the local pool (a next call starts one)."""
        n, mine = min(self.chunks, len(items)), int(values is not None)
        chunks = [items[k * len(items) // n:(k + 1) * len(items) // n] for k in range(n)]
        self._futures: list[Future[Any]] = []
        try:
            own = ((None, None), chunks[0], None, outputs, (self._sent[0], self._examples)) if mine else None  # type: ignore[index]
            results = self._submitted(job, chunks[mine:], values, outputs, own)
            if None in results[mine:]:  # a worker lacked the job: all again, with it
                results[mine:] = self._submitted(self._sent[2], chunks[mine:], values, outputs)  # type: ignore[index]
            return results
        except BaseException as error:
            for future in self._futures:
                future.cancel()
            died = isinstance(error, (BrokenExecutor, getattr(sys.modules.get("distributed"), "KilledWorker", ())))
            if died or not isinstance(error, Exception):
                self.close(now=True)
            if died:
                raise WorkerDied(f"a worker process died ({error}); the parameters and their gradients are unchanged"
                                 " (a script with workers must run under `if __name__ == '__main__':`)") from error
            raise

    def _submitted(self, job: Shipped, chunks: list[Any], values: list[float] | None, outputs: bool,
                   own: tuple | None = None) -> list[Any]:
        """`chunk_sums(*own)` here, then the tasks' results; the first error is raised. The local pool (a process
        fewer if the parent computes a chunk) starts every worker at once (one started on demand can die unnoticed)."""
        if self._pool is None and chunks and not isinstance(self.workers, Executor):
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            context = multiprocessing.get_context(method)
            if method == "forkserver":  # its workers start with the library imported (if it is not running yet)
                context.set_forkserver_preload([__name__])
            theirs, ours = context.Pipe(duplex=False)
            n = max(1, self.workers - (own is not None))
            self._pool = ProcessPoolExecutor(n, context, _start_worker, (theirs, context.Barrier(n))), ours
            for _ in range(n):  # a task each: all n processes start now (the barrier holds them)
                self._pool[0].submit(os.getpid)
        executor = self.workers if isinstance(self.workers, Executor) else self._pool and self._pool[0]
        self._futures = [executor.submit(chunk_sums, job, chunk, values, outputs) for chunk in chunks]  # type: ignore[union-attr]
        time.sleep(0.0002)  # a pause: the executor's threads send the tasks (if any) before the parent
        results = [] if own is None else [chunk_sums(*own)]  # computes its chunk (holding the GIL, else they'd wait)
        done, _ = wait(self._futures, return_when=FIRST_EXCEPTION)
        for error in (e for f in done if (e := f.exception()) is not None):
            raise error
        return results + [f.result() for f in self._futures]

    def close(self, now: bool = False) -> None:
        """Stop the local workers (`now`: at once, busy or not; a later call starts new ones), not an executor."""
        pool, self._pool = self._pool, None
        if pool is not None:
            if now:
                pool[1].close()
            pool[0].shutdown(wait=True, cancel_futures=True)
            pool[1].close()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
