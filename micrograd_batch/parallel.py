"""Data parallelism: a batch's gradient from several processes. A mean splits into partial sums,
ĝ = (1/m) (Σ_{chunk 1} ∇L_i + ... + Σ_{chunk N} ∇L_i): each task computes one chunk's sums, the
parent adds them and divides by m, once. A worker keeps the compiled loss (per structure; tasks bring
the parameter values) and the training set (batches come as indices); a model that does not compile
goes with every task. Tasks run on any `concurrent.futures.Executor` (a local process pool, or a
Dask client's `get_executor()`). See docs/parallel.md."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
import threading
import uuid
from collections.abc import Sequence
from contextlib import suppress
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
    """A worker ended in the middle of the work (killed by a signal, out of memory, `os._exit`).
    The parameters and their gradients are as they were before the call."""


def job_of(work: Any) -> bytes:
    """`work` (a model and loss, with their values, or a compiled loss and a training set) pickled
    for the workers; a TypeError naming the fix if it cannot be pickled."""
    try:
        return pickle.dumps(work, pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError) as error:
        raise TypeError(f"the model or loss_fn ({work!r:.60}) cannot be pickled for worker processes ({error}): "
                        "use a loss function defined at the top level of a module (e.g. micrograd_batch.losses"
                        ".hinge), not a lambda or a nested function") from None


def chunk_sums(job: Shipped, chunk: list[Any] | tuple[int, ...], params: list[float] | None = None) -> Sums | None:
    """One task: Σ_i L_i and Σ_i ∇L_i over `chunk` (examples, or a tuple of indices into the job's
    training set) by the job's compiled loss at the values `params`, else by a backward pass on the
    job's model. None: this worker does not hold the job by its key (the parent sends it along)."""
    key, blob = job
    held = pickle.loads(blob) if blob is not None else HELD.get(key)  # type: ignore[arg-type]
    if held is None:
        return None
    if blob is not None and key is not None:
        if len(HELD) >= 8:  # a training set and a few structures at a time
            HELD.clear()
        HELD[key] = held
    work, kept = held
    examples = [kept[i] for i in chunk] if isinstance(chunk, tuple) else chunk
    if isinstance(work, CompiledLoss):
        losses, grads, _ = work.run(examples, params, 1.0)  # seed 1: the sums
        return _float_sum(losses), grads
    model, loss_fn = work
    for p in model.parameters():
        p.grad = 0.0
    with gc_paused():
        total = batch_sum(loss_fn(model(x), y) for x, y in examples)
        total.backward()
    return total.data, [p.grad for p in model.parameters()]


def _start_worker(lifeline: connection.Connection, barrier: Any) -> None:
    """Pool initializer: a thread ends this worker when `lifeline` closes (the parent stopped the
    pool, or died); then wait until every worker of the pool has started."""
    threading.Thread(target=lambda: (connection.wait([lifeline]), os._exit(1)), daemon=True).start()
    barrier.wait(timeout=60)


class DataParallel:
    """A batch's mean loss and gradient from `workers`: a number of local processes (forkserver,
    or spawn; never fork), or any `concurrent.futures.Executor` (used, never shut down). A batch
    becomes `chunks` tasks (default: the number of processes; for an executor, the CPU count).
    `examples`: the training set, sent to each worker once (then batches of these very objects
    travel as indices; do not change them in place)."""

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
        job, values = self._job()
        at = [self._index.get(id(e)) for e in examples]  # a batch of the training set goes as indices
        held = values is not None and all(i is not None and self._examples[i] is e
                                          for i, e in zip(at, examples, strict=True))
        sums = self._run(job, values, tuple(at) if held else examples)  # type: ignore[arg-type]
        m = int(m or len(examples))
        means = [_float_sum(column) / m for column in zip(*(g for _, g in sums), strict=True)]
        assign((), (), [(p, {"grad": p.grad + g}) for p, g in zip(self.model.parameters(), means, strict=True)])
        return _float_sum([loss for loss, _ in sums]) / m

    def _job(self) -> tuple[Shipped, list[float] | None]:
        """The compiled loss and training set, kept by the workers under a key (a new one when the
        model's structure changed), and the parameter values; else the model and loss at their values."""
        with suppress(NotCompilable):  # (the structure is read anew, from the model as it is now)
            compiled = self._sent[0] if self._sent else compile_loss(self.model, self.loss_fn)
            if self._sent is None or self._sent[1] is not compiled.source:
                self._sent = compiled, compiled.source, (uuid.uuid4().hex, job_of((compiled, self._examples)))
            return self._sent[2], [p.data for p in self.model.parameters()]
        return (None, job_of(((self.model, self.loss_fn), ()))), None

    def _run(self, job: Shipped, values: list[float] | None, items: list[Example] | tuple[int, ...]) -> list[Sums]:
        """Each chunk's sums, in order (the job by key; if a worker lacks it, all again with the job).
        A lost worker raises WorkerDied; it and Ctrl-C stop the local pool (the next call starts a
        new one). Other errors are raised as they are."""
        n = min(self.chunks, len(items))
        chunks = [items[k * len(items) // n:(k + 1) * len(items) // n] for k in range(n)]
        self._futures: list[Future[Sums | None]] = []
        try:
            executor = self.workers if isinstance(self.workers, Executor) else self._local_pool()
            sums = self._submitted(executor, (job[0], None) if job[0] is not None else job, chunks, values)
            return self._submitted(executor, job, chunks, values) if None in sums else sums  # type: ignore[return-value]
        except BaseException as error:
            for future in self._futures:
                future.cancel()
            died = isinstance(error, (BrokenExecutor, getattr(sys.modules.get("distributed"), "KilledWorker", ())))
            if died or not isinstance(error, Exception):
                self.close(now=True)
            if died:
                raise WorkerDied(f"a worker process died while computing the gradient ({error}); the parameters "
                                 "and their gradients are unchanged (a script that starts worker processes must "
                                 "run its code under `if __name__ == \"__main__\":`)") from error
            raise

    def _submitted(self, executor: Executor, job: Shipped, chunks: list[Any], values: list[float] | None) -> list[Any]:
        """The chunks' results from tasks on `executor`; the first error is raised."""
        self._futures = [executor.submit(chunk_sums, job, chunk, values) for chunk in chunks]
        done, _ = wait(self._futures, return_when=FIRST_EXCEPTION)
        for error in (e for f in done if (e := f.exception()) is not None):
            raise error
        return [f.result() for f in self._futures]

    def _local_pool(self) -> ProcessPoolExecutor:
        """The local pool, started on first use with every worker at once (a worker a pool starts
        on demand can die unnoticed); each worker ends when the pool's lifeline closes."""
        if self._pool is None:
            method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
            context = multiprocessing.get_context(method)
            if method == "forkserver":  # its workers start with the library imported (if it is not running yet)
                context.set_forkserver_preload([__name__])
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
