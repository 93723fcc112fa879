"""Data parallelism: one mini-batch's gradient, computed by several processes at once.

The batch gradient is a mean over the m examples, and a sum splits into partial sums:

    ĝ = (1/m) Σ_{i=1..m} ∇L_i = (1/m) ( Σ_{i in chunk 1} ∇L_i + ... + Σ_{i in chunk N} ∇L_i )

So each of N tasks takes one chunk of the examples, builds their graphs on its worker's own copy
of the model, backpropagates `batch_sum` of their losses (local derivative 1, not 1/m), and
sends back two plain sums: Σ L_i and Σ ∇L_i over its chunk. The parent adds the N partial sums
and divides by m -- once, at the end. The result equals the serial `batch_mean(...).backward()`
up to the order of floating-point additions (about 1e-16 relative).

The tasks run on a `concurrent.futures.Executor`: by default a local pool of processes started
by "forkserver" (or "spawn" where there is none), never by forking a process that may have
threads; or any executor you pass, such as a Dask cluster's `Client(...).get_executor()`.
Each task carries the model and loss function pickled once (`DataParallel` makes the bytes when
it starts; a worker unpickles them on its first task and keeps the copy) and the current
parameter values, so a worker needs no set-up and any executor will do.

    with DataParallel(model, hinge, workers=2) as parallel:
        for batch in minibatches(...):
            model.zero_grad()
            loss = parallel.grad(batch)     # mean loss; p.grad += mean gradient
            optimizer.step()

A worker that dies (killed, out of memory, `os._exit`) raises `WorkerDied` within moments,
never a hang; a failed or interrupted `grad` leaves every parameter and gradient as it was.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import select
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import FIRST_EXCEPTION, BrokenExecutor, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import connection
from multiprocessing.context import BaseContext
from typing import Any, Optional, Sequence, Union

from .batch import batch_sum
from ._checks import is_whole_number
from .engine import Value, gc_paused
from .losses import LossFn
from .nn import Module, Scores, plain_scores

Example = tuple[Any, Any]
Workers = Union[int, Executor]  # how many local processes, or an executor to run the tasks on
ChunkSums = tuple[float, list[float], list[Scores]]  # what one task sends back


class WorkerDied(RuntimeError):
    """A worker process ended in the middle of the work (killed by a signal, out of memory,
    `os._exit`). The parameters and their gradients are as they were before the call."""


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


def chunk_sums(model: Module, chunk: Sequence[Example], loss_fn: LossFn) -> ChunkSums:
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


def uses_workers(workers: object) -> bool:
    """Whether `workers` (as `fit` takes it) asks for parallel gradients: an Executor, or a whole
    number above 1. Raises ValueError for anything that is neither."""
    if isinstance(workers, Executor):
        return True
    if not is_whole_number(workers):
        raise ValueError(f"workers must be a whole number >= 1 or a concurrent.futures.Executor, got {workers!r}")
    return int(workers) > 1  # type: ignore[call-overload]


def start_method() -> str:
    """The start method of the local pool: "forkserver" where the platform has it, else "spawn".
    Never "fork": forking a process that runs threads can deadlock the child."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def pickled_job(model: Module, loss_fn: LossFn) -> bytes:
    """The model and the loss function as one pickle, for the workers; a clear TypeError if
    either cannot be pickled (a lambda, a function defined inside another function)."""
    for name, thing in (("loss_fn", loss_fn), ("the model", model)):
        try:
            pickle.dumps(thing)
        except (pickle.PicklingError, AttributeError, TypeError) as error:
            raise TypeError(
                f"{name} ({thing!r:.80}) cannot be sent to worker processes because it cannot be "
                f"pickled ({error}). Worker processes receive it by pickling: use a function defined "
                "at the top level of a module (e.g. micrograd_batch.losses.hinge), not a lambda "
                "or a function defined inside another function."
            ) from None
    return pickle.dumps((model, loss_fn))


# ---- the worker side: each worker thread keeps its own copy of the model ---------------------

_copies = threading.local()  # one cache per thread: a Dask worker may run tasks in several threads
_KEEP = 4  # models remembered per thread (one per DataParallel that used this worker recently)


def _worker_copy(token: str, job: bytes) -> tuple[Module, LossFn]:
    """This thread's copy of the model and loss function of job `token`, unpickled on first use."""
    cache: OrderedDict[str, tuple[Module, LossFn]] = _copies.__dict__.setdefault("cache", OrderedDict())
    if token not in cache:
        try:
            cache[token] = pickle.loads(job)
        except Exception as error:
            raise RuntimeError(
                f"a worker could not load the model and loss function ({type(error).__name__}: {error}). "
                "Worker processes import the loss function by name: define it in a module they can "
                "import, not in a notebook or an interactive session."
            ) from error
        while len(cache) > _KEEP:
            cache.popitem(last=False)
    cache.move_to_end(token)
    return cache[token]


def _work_on(token: str, job: bytes, param_values: list[float], chunk: list[Example]) -> ChunkSums:
    """One task: load the parent's current parameter values into this worker's copy of the
    model, then return the chunk's sums."""
    model, loss_fn = _worker_copy(token, job)
    for p, value in zip(model.parameters(), param_values):
        p.data = value
    return chunk_sums(model, chunk, loss_fn)


def _end_with(parent_pid: int) -> None:
    """Pool initializer: end this worker when the process that started the pool ends. A parent
    killed outright (SIGKILL, OOM) never shuts its pool down, and an idle worker would otherwise
    wait for tasks forever -- and keep the forkserver alive with it."""
    if os.name == "posix":  # (on Windows os.kill would terminate the parent, not test it)
        threading.Thread(target=_exit_after, args=(parent_pid,), daemon=True).start()


def _exit_after(parent_pid: int) -> None:
    """End this process once process `parent_pid` has ended."""
    try:
        select.select([os.pidfd_open(parent_pid)], [], [])  # Linux: readable when it ends
    except (AttributeError, OSError):  # no pidfd here: look every second
        while _exists(parent_pid):
            time.sleep(1.0)
    os._exit(1)


def _exists(pid: int) -> bool:
    """Whether a process `pid` exists (a zombie counts)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # (PermissionError: the pid is another user's now)
        return False
    return True


# ---- the parent side ----------------------------------------------------------------------------

def _is_worker_death(error: BaseException) -> bool:
    """A broken local pool, or Dask's KilledWorker (a task whose worker died, again and again)."""
    return isinstance(error, BrokenExecutor) or type(error).__name__ == "KilledWorker"


def _wait_watching_workers(futures: list[Future[ChunkSums]], pool: Optional[ProcessPoolExecutor]) -> None:
    """Wait until every future is done or one has failed, and raise BrokenProcessPool as soon as
    one of `pool`'s workers has ended: the pool itself can miss a worker that dies just after it
    was started on demand, and would then wait for the others forever."""
    while True:
        done, pending = wait(futures, timeout=0.2, return_when=FIRST_EXCEPTION)
        if not pending or any(future.exception() is not None for future in done):
            return
        workers = (getattr(pool, "_processes", None) or {}).values()
        if connection.wait([process.sentinel for process in workers], timeout=0):
            raise BrokenProcessPool("a worker process ended while the batch's tasks were pending")


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Shut `pool` down now: busy workers killed, queued tasks cancelled, every worker reaped."""
    manager = getattr(pool, "_executor_manager_thread", None)  # shutdown() forgets these two
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:  # Python < 3.14 has no pool.kill_workers()
        process.kill()
    pool.shutdown(wait=False, cancel_futures=True)
    if manager is not None:
        manager.join()  # it sees the workers gone, marks the pool broken and reaps them


def _executor_width(executor: Executor) -> int:
    """How many tasks `executor` runs at once, where it says (stdlib pools, Dask); else 2."""
    width: Any = getattr(executor, "_max_workers", None)
    client = getattr(executor, "_client", None)  # distributed.cfexecutor.ClientExecutor
    if width is None and client is not None and callable(getattr(client, "nthreads", None)):
        width = sum(client.nthreads().values())
    return int(width) if is_whole_number(width) else 2


def _add_into_grads(params: list[Value], increments: list[float]) -> None:
    """p.grad += increment for every parameter, or (if interrupted) for none."""
    old = [p.grad for p in params]
    try:
        for p, increment in zip(params, increments):
            p.grad += increment
    except BaseException:
        for p, grad in zip(params, old):
            p.grad = grad
        raise


class DataParallel:
    """Computes a batch's mean gradient by splitting its examples over worker processes.

    `loss_fn(model(x), y)` gives one example's loss (e.g. `losses.hinge`). The model and
    `loss_fn` are pickled to the workers, so `loss_fn` must be a function defined at the top
    level of an importable module. `workers` is either a number of local processes (a pool
    started now, by "forkserver" or "spawn", or by `context` if given) or a
    `concurrent.futures.Executor` to run the tasks on, e.g. a Dask `Client(...).get_executor()`;
    such an executor is used, never shut down. `chunks` is how many tasks each batch becomes
    (default: the number of workers). Use as a context manager, or call `close()` when done.
    """

    def __init__(
        self,
        model: Module,
        loss_fn: LossFn,
        workers: Workers = 2,
        context: Optional[BaseContext] = None,
        *,
        chunks: Optional[int] = None,
    ) -> None:
        self._external: Optional[Executor]
        if isinstance(workers, Executor):
            self._external, self._pool_size, width = workers, 0, _executor_width(workers)
        elif is_whole_number(workers):
            self._external, self._pool_size, width = None, int(workers), int(workers)
        else:
            raise ValueError(f"workers must be a whole number >= 1 or a concurrent.futures.Executor, got {workers!r}")
        if chunks is not None and not is_whole_number(chunks):
            raise ValueError(f"chunks must be a whole number >= 1, got {chunks!r}")
        self.model = model
        self.loss_fn = loss_fn
        self.workers = workers
        self.chunks = int(chunks or width)
        self._job = pickled_job(model, loss_fn)
        self._token = uuid.uuid4().hex  # names this model in the workers' caches
        self._context = context or multiprocessing.get_context(start_method())
        self._own_pool: Optional[ProcessPoolExecutor] = None
        self._closed = False

    def grad(self, examples: Sequence[Example]) -> float:
        """The batch's mean loss; adds its mean gradient (1/m) Σ_i ∂L_i/∂θ into each `p.grad`.

        Like `loss.backward()`, it accumulates: zero the gradients first (`model.zero_grad()`).
        If it raises (a worker died: `WorkerDied`; the loss failed; Ctrl-C), no parameter and no
        gradient has changed.
        """
        return self.grad_and_outputs(examples)[0]

    def grad_and_outputs(self, examples: Sequence[Example], m: Optional[int] = None) -> tuple[float, list[Scores]]:
        """`grad(examples)`, and each example's model output as plain numbers, in order.

        The sums are divided by `m` (default: the number of examples): for a micro-batch of a
        batch of m examples, (1/m) Σ_i L_i and (1/m) Σ_i ∂L_i/∂θ over the micro-batch, its
        share of the batch's mean loss and gradient.
        """
        examples = list(examples)
        if not examples:
            raise ValueError("the gradient of an empty batch: there must be at least one example")
        if m is not None and not is_whole_number(m, len(examples)):
            raise ValueError(f"m, the size of the batch these {len(examples)} examples are part of, "
                             f"must be a whole number >= {len(examples)}, got {m!r:.40}")
        if getattr(self.model, "couples_examples", False):
            raise ValueError("DataParallel splits each batch into chunks, but this model couples the examples "
                             "of a batch (batch norm in training mode normalises over the whole batch); "
                             "compute its gradient in one process")
        params = self.model.parameters()
        values = [p.data for p in params]
        sums = self._run(values, split(examples, self.chunks))
        m = len(examples) if m is None else int(m)
        increments = [math.fsum(grads[k] for _, grads, _ in sums) / m for k in range(len(params))]
        outputs = [scores for _, _, chunk_scores in sums for scores in chunk_scores]
        _add_into_grads(params, increments)  # Σ over chunks, then / m
        return math.fsum(loss for loss, _, _ in sums) / m, outputs

    def _executor(self) -> Executor:
        """The executor the tasks go to; the local pool is started on first use (again after
        a failure shut it down)."""
        if self._closed:
            raise RuntimeError("this DataParallel is closed; make a new one")
        if self._external is not None:
            return self._external
        if self._own_pool is None:
            self._own_pool = ProcessPoolExecutor(self._pool_size, mp_context=self._context, initializer=_end_with,
                                                 initargs=(os.getpid(),))
        return self._own_pool

    def _run(self, values: list[float], chunks: list[list[Example]]) -> list[ChunkSums]:
        """Each chunk's sums, in order. A dead worker raises WorkerDied and shuts the local pool
        down; so does Ctrl-C (busy workers are killed). Other errors are raised as they are."""
        futures: list[Future[ChunkSums]] = []
        try:
            executor = self._executor()
            futures = [executor.submit(_work_on, self._token, self._job, values, chunk) for chunk in chunks]
            _wait_watching_workers(futures, self._own_pool)
            return [future.result() for future in futures]
        except BaseException as error:
            for future in futures:
                future.cancel()
            if _is_worker_death(error) or not isinstance(error, Exception):
                self._stop_own_pool()
            if _is_worker_death(error):
                raise WorkerDied(
                    "a worker process died while computing the gradient (killed by a signal, out of memory, "
                    "os._exit, or it failed to start: a script that uses worker processes must run its code "
                    f"under `if __name__ == \"__main__\":`). {str(error).rstrip('.')}. The parameters and "
                    "their gradients are unchanged"
                    + ("." if self._external else "; the worker pool was shut down (the next call starts a new one).")
                ) from error
            raise

    def _stop_own_pool(self) -> None:
        """Shut the local pool down, if there is one; nothing is left running."""
        pool, self._own_pool = self._own_pool, None
        if pool is not None:
            _stop_pool(pool)

    def close(self) -> None:
        """Stop the local worker processes (an executor that was passed in is left running)."""
        self._closed = True
        pool, self._own_pool = self._own_pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> DataParallel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def parallel_batch_grad(model: Module, examples: Sequence[Example], loss_fn: LossFn, workers: Workers = 2) -> float:
    """One batch's mean loss, with its mean gradient added into each `p.grad`, by `workers`
    processes started for this call only (use `DataParallel` to keep them across steps)."""
    with DataParallel(model, loss_fn, workers) as parallel:
        return parallel.grad(examples)
