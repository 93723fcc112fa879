"""Data parallelism: a batch's gradient from several processes. A mean splits into partial sums,
ĝ = (1/m) Σ_i ∇L_i = (1/m) (Σ_{chunk 1} ∇L_i + ... + Σ_{chunk N} ∇L_i): each task computes one
chunk's Σ L_i and Σ ∇L_i (compiled where it can) on a copy of the model sent with it, and the
parent adds the N partial sums and divides by m, once. Tasks run on any `concurrent.futures.Executor`:
a local process pool by default, or a Dask client's `get_executor()`. See docs/parallel.md."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
import threading
from collections.abc import Sequence
from contextlib import suppress
from concurrent.futures import FIRST_EXCEPTION, BrokenExecutor, Executor, Future, ProcessPoolExecutor, wait
from multiprocessing import connection
from typing import Any

from ._checks import gc_paused, is_whole_number
from .batch import _float_sum, batch_sum
from .compile import NotCompilable, compile_loss
from .engine import Value
from .losses import LossFn
from .nn import Module

Example = tuple[Any, Any]
Workers = int | Executor  # how many local processes, or an executor to run the tasks on
Sums = tuple[float, list[float]]  # what one task sends back: Σ L_i and Σ ∇L_i over its chunk


class WorkerDied(RuntimeError):
    """A worker ended in the middle of the work (killed by a signal, out of memory, `os._exit`).
    The parameters and their gradients are as they were before the call."""


def job_of(model: Module, loss_fn: LossFn) -> bytes:
    """The model (at its current parameters, whatever its architecture now) and the loss function,
    pickled for the workers; a TypeError naming the fix if they cannot be (a lambda, a nested function)."""
    try:
        return pickle.dumps((model, loss_fn), pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError) as error:
        raise TypeError(f"the model or loss_fn ({loss_fn!r:.60}) cannot be pickled for worker processes ({error}): "
                        "use a loss function defined at the top level of a module (e.g. micrograd_batch.losses"
                        ".hinge), not a lambda or a nested function") from None


def chunk_sums(job: bytes, chunk: list[Example]) -> Sums:
    """One task: Σ_i L_i and Σ_i ∇L_i over `chunk` on a fresh copy of the job's model: by its compiled
    code (compiled once per worker process and structure), else by one backward pass from `batch_sum`."""
    model, loss_fn = pickle.loads(job)
    with suppress(NotCompilable):
        losses, grads, _ = compile_loss(model, loss_fn).run(chunk, None, 1.0)  # seed 1: the sums
        return _float_sum(losses), grads
    params = model.parameters()
    for p in params:
        p.grad = 0.0
    with gc_paused():
        total = batch_sum(loss_fn(model(x), y) for x, y in chunk)
        total.backward()
    return total.data, [p.grad for p in params]


def _start_worker(lifeline: connection.Connection, barrier: Any) -> None:
    """Pool initializer: a thread ends this worker when `lifeline` closes (the parent stopped the
    pool, or died); then wait until every worker of the pool has started."""
    threading.Thread(target=lambda: (connection.wait([lifeline]), os._exit(1)), daemon=True).start()
    barrier.wait(timeout=60)


def _add_into_grads(params: Sequence[Value], increments: list[float]) -> None:
    """p.grad += increment for every parameter, or (if interrupted) for none."""
    old = [p.grad for p in params]
    try:
        for p, increment in zip(params, increments, strict=True):
            p.grad += increment
    except BaseException:
        for p, grad in zip(params, old, strict=True):
            p.grad = grad
        raise


class DataParallel:
    """A batch's mean loss and gradient from `workers`: a number of local processes (forkserver,
    or spawn; never fork), or any `concurrent.futures.Executor` (used, never shut down). A batch
    becomes `chunks` tasks (default: the number of processes; for an executor, the CPU count)."""

    def __init__(self, model: Module, loss_fn: LossFn, workers: Workers = 2, *, chunks: int | None = None) -> None:
        if not isinstance(workers, Executor) and not is_whole_number(workers):
            raise ValueError(f"workers must be a whole number >= 1 or a concurrent.futures.Executor, got {workers!r}")
        if chunks is not None and not is_whole_number(chunks):
            raise ValueError(f"chunks must be a whole number >= 1, got {chunks!r}")
        self.model, self.loss_fn, self.workers = model, loss_fn, workers
        self.chunks = int(chunks or ((os.cpu_count() or 2) if isinstance(workers, Executor) else workers))
        job_of(model, loss_fn)  # refuses now what cannot go to the workers
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
        params, n = self.model.parameters(), min(self.chunks, len(examples))
        chunks = [examples[k * len(examples) // n:(k + 1) * len(examples) // n] for k in range(n)]
        sums = self._run(job_of(self.model, self.loss_fn), chunks)
        m = int(m or len(examples))
        _add_into_grads(params, [_float_sum(column) / m for column in zip(*(g for _, g in sums), strict=True)])
        return _float_sum([loss for loss, _ in sums]) / m

    def _run(self, job: bytes, chunks: list[list[Example]]) -> list[Sums]:
        """Each chunk's sums, in order. A lost worker raises WorkerDied; it and Ctrl-C stop the
        local pool (the next call starts a new one). Other errors are raised as they are."""
        futures: list[Future[Sums]] = []
        try:
            executor = self.workers if isinstance(self.workers, Executor) else self._local_pool()
            futures = [executor.submit(chunk_sums, job, chunk) for chunk in chunks]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            first = next((e for f in done if (e := f.exception()) is not None), None)
            if first is not None:
                raise first
            return [f.result() for f in futures]
        except BaseException as error:
            for future in futures:
                future.cancel()
            died = isinstance(error, (BrokenExecutor, getattr(sys.modules.get("distributed"), "KilledWorker", ())))
            if died or not isinstance(error, Exception):
                self.close(now=True)
            if died:
                raise WorkerDied(f"a worker process died while computing the gradient ({error}); the parameters "
                                 "and their gradients are unchanged (a script that starts worker processes must "
                                 "run its code under `if __name__ == \"__main__\":`)") from error
            raise

    def _local_pool(self) -> ProcessPoolExecutor:
        """The local pool, started on first use with every worker at once (a worker a pool starts
        on demand can die unnoticed); each worker ends when the pool's lifeline closes."""
        if self._pool is None:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
            theirs, ours = context.Pipe(duplex=False)
            n = int(self.workers)  # type: ignore[arg-type]
            self._pool = ProcessPoolExecutor(n, context, _start_worker, (theirs, context.Barrier(n))), ours
            wait([self._pool[0].submit(os.getpid) for _ in range(n)])
        return self._pool[0]

    def close(self, now: bool = False) -> None:
        """Stop the local workers (`now`: at once, busy or not); a later `grad` starts new ones.
        An executor that was passed in is left running."""
        pool, self._pool = self._pool, None
        if pool is not None:
            if now:
                pool[1].close()
            pool[0].shutdown(wait=True, cancel_futures=True)
            pool[1].close()

    def __enter__(self) -> DataParallel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
