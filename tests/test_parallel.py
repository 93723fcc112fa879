"""Data parallelism (`micrograd_batch.parallel`): the gradient from worker processes equals the
serial one, the compiled loss and the training set go to a worker once (by key), a model whose
architecture changed is sent again, non-finite chunk sums are a
divergence (not a crash), a dead worker is an error (never a hang) that leaves all state alone, no
process is forked from a threaded one, and any concurrent.futures.Executor -- a Dask cluster's
too -- runs it.

Faults use real processes and real signals. Each runs in its own interpreter
(tests/parallel_scenarios.py) with a timeout, so a regression fails instead of hanging the suite.
"""

from __future__ import annotations

import ast
import json
import math
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from unittest import mock

import pytest

import micrograd_batch
from micrograd_batch import MLP, SGD, DataParallel, TrainingDiverged, WorkerDied, fit, make_moons
from micrograd_batch.losses import hinge, mse
from micrograd_batch.nn import Layer
from micrograd_batch import compile_loss
from micrograd_batch.parallel import HELD, chunk_sums, job_of
from helpers import graph_path, moons_like
from parallel_scenarios import alive, exiting_loss, failing_loss, infinite_loss
from state import parameter_state

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"


def graph_job(model, loss_fn):
    """A task's job for the graph path: the model and loss, pickled with the task."""
    return None, job_of(((model, loss_fn), ()))


class Recording(Executor):
    """An executor that runs tasks on `inner` and keeps what each task carried."""

    def __init__(self, inner: Executor) -> None:
        self.inner, self.tasks = inner, []

    def submit(self, fn, /, *args, **kwargs) -> Future:
        self.tasks.append(args)
        return self.inner.submit(fn, *args, **kwargs)

    def with_job(self) -> int:
        """How many tasks so far carried the pickled job (not its key alone)."""
        return sum(job[1] is not None for job, *_ in self.tasks)


def worst_difference(model: MLP, grads: list[float]) -> float:
    return max(abs(p.grad - g) for p, g in zip(model.parameters(), grads, strict=True))


# ---- the arithmetic: partial sums ------------------------------------------------------------

def test_chunk_sums_add_up_to_m_times_the_batch_mean():
    model = MLP(2, [6, 1], seed=4)
    batch = moons_like(10)
    loss, grads = graph_path(model, hinge, batch)
    job = graph_job(model, hinge)
    sums = [chunk_sums(job, chunk) for chunk in (batch[:4], batch[4:7], batch[7:])]
    assert sum(s for s, _ in sums) / 10 == pytest.approx(loss, abs=1e-12)
    for k, g in enumerate(grads):
        assert sum(gs[k] for _, gs in sums) / 10 == pytest.approx(g, abs=1e-12)


def test_a_task_runs_the_compiled_code_where_the_model_and_loss_compile(monkeypatch):
    """A library model and loss: the worker builds no graph (the model is never called), and the
    sums are the graph's to rounding; any other loss takes the graph path."""
    model = MLP(2, [6, 1], seed=4)
    batch = moons_like(10)
    loss, grads = graph_path(model, hinge, batch)
    calls, real_call = [], MLP.__call__
    monkeypatch.setattr(MLP, "__call__", lambda self, x: calls.append(x) or real_call(self, x))
    job = ("a key", job_of((compile_loss(model, hinge), batch)))
    total, sums = chunk_sums(job, tuple(range(10)), [p.data for p in model.parameters()])
    assert calls == [] and total / 10 == pytest.approx(loss, abs=1e-12)
    assert [g / 10 for g in sums] == pytest.approx(grads, rel=0, abs=1e-12)
    assert chunk_sums(("a key", None), batch, [p.data for p in model.parameters()]) == (total, sums)  # kept
    assert chunk_sums(("another key", None), batch) is None  # not held: the parent sends it along
    chunk_sums(graph_job(model, failing_loss), batch[:1])  # (label -1: no failure) on the graph path
    assert len(calls) == 1


def test_a_task_leaves_the_parents_model_alone():
    model = MLP(2, [3, 1], seed=9)
    for p in model.parameters():
        p.grad = 0.5
    before = parameter_state(model)
    chunk_sums(graph_job(model, hinge), moons_like(4))  # works on its own copy
    assert parameter_state(model) == before


# ---- equal to the serial run, on every kind of executor ----------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("workers, method", [(2, None), (3, None), (2, "spawn")])
def test_parallel_gradient_equals_the_serial_one(workers, method):
    model = MLP(2, [16, 16, 1], seed=7)
    batch = moons_like(50, shift=0.2)
    loss, grads = graph_path(model, hinge, batch)
    model.zero_grad()
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) if method else None
    with DataParallel(model, hinge, workers=pool or workers) as parallel:
        assert parallel.grad(batch) == pytest.approx(loss, abs=1e-12)
        assert worst_difference(model, grads) <= 1e-12
        for p in model.parameters():  # the workers follow the parent's parameters from step to step
            p.data -= 0.1 * p.grad
        loss, grads = graph_path(model, hinge, batch)
        model.zero_grad()
        assert parallel.grad(batch) == pytest.approx(loss, abs=1e-12)
        assert worst_difference(model, grads) <= 1e-12
    if pool:
        pool.shutdown()


def test_one_worker_where_the_model_compiles_is_the_parent_alone():
    """workers=N is N-1 processes and the parent, which computes one chunk itself: workers=1 starts none."""
    model, batch = MLP(2, [5, 1], seed=1), moons_like(12)
    loss, grads = graph_path(model, hinge, batch)
    model.zero_grad()
    with mock.patch("micrograd_batch.parallel.ProcessPoolExecutor", side_effect=AssertionError("started")):
        with DataParallel(model, hinge, 1, examples=batch) as parallel:
            assert parallel.grad(batch) == pytest.approx(loss, rel=0, abs=1e-12)
            assert parallel.outputs(batch) == compile_loss(model, hinge).outputs(batch)
    assert worst_difference(model, grads) <= 1e-12


@pytest.mark.slow
def test_two_workers_where_the_model_compiles_are_one_process_and_the_parent():
    model, batch = MLP(2, [16, 16, 1], seed=7), moons_like(50, shift=0.2)
    loss, grads = graph_path(model, hinge, batch)
    model.zero_grad()
    before = set(multiprocessing.active_children())
    with DataParallel(model, hinge, 2, examples=batch) as parallel:
        assert parallel.grad(batch) == pytest.approx(loss, rel=0, abs=1e-12)
        assert len(set(multiprocessing.active_children()) - before) == 1
        assert parallel.outputs(batch) == compile_loss(model, hinge).outputs(batch)
    assert worst_difference(model, grads) <= 1e-12


def test_any_executor_runs_it_and_two_models_share_its_workers_safely():
    """A thread pool: one process, several threads, each task on its own copy of the model."""
    first, second = MLP(2, [5, 1], seed=1), MLP(2, [5, 3], seed=2)
    batch, three_class = moons_like(12), [(x, [float(y == 1), 0.0, 1.0]) for x, y in moons_like(12)]
    _, grads = graph_path(first, hinge, batch)
    _, grads_second = graph_path(second, mse, three_class)
    with ThreadPoolExecutor(3) as executor:
        a, b = DataParallel(first, hinge, executor, chunks=3), DataParallel(second, mse, executor, chunks=4)
        assert b.chunks == 4 and DataParallel(first, hinge, executor).chunks == os.cpu_count()
        for _ in range(2):
            first.zero_grad()
            second.zero_grad()
            a.grad(batch)
            b.grad(three_class)
            assert worst_difference(first, grads) <= 1e-12
            assert worst_difference(second, grads_second) <= 1e-12
        a.close()
        assert executor.submit(len, "still running").result() == 13  # an executor passed in is not shut down


def test_a_model_whose_architecture_changed_is_sent_again():
    """Issue 20, why 5: the model was pickled once, so after its output layer was swapped the
    workers used the old one (silently wrong gradients), and an appended layer gave IndexError.
    Issue 22: the compiled loss is sent once per structure, and again when the structure changes."""
    model = MLP(2, [4, 1], seed=3)
    batch = moons_like(10)
    HELD.clear()
    with ThreadPoolExecutor(2) as pool, DataParallel(model, hinge, Recording(pool), chunks=2) as parallel:
        parallel.grad(batch)
        sent = parallel.workers.with_job()
        model.layers[-1] = Layer(4, 1, activation="linear")  # the same structure: no new job, new values
        _, grads = graph_path(model, hinge, batch)
        model.zero_grad()
        parallel.grad(batch)
        assert worst_difference(model, grads) <= 1e-12 and parallel.workers.with_job() == sent
        model.layers[-1] = Layer(4, 1, activation="tanh")  # another output layer, same shape
        _, grads = graph_path(model, hinge, batch)
        model.zero_grad()
        parallel.grad(batch)
        assert worst_difference(model, grads) <= 1e-12 and parallel.workers.with_job() > sent
        model.layers.append(Layer(1, 1))  # one layer more: more parameters
        _, grads = graph_path(model, hinge, batch)
        model.zero_grad()
        parallel.grad(batch)
        assert worst_difference(model, grads) <= 1e-12


def grad_like_the_graph_path(parallel: DataParallel, model: MLP, batch: list) -> tuple[float, float]:
    """`parallel.grad(batch)` from zeroed grads, its grads within 1e-12 of the graph path's (asserted):
    (its loss, the graph path's loss)."""
    loss, grads = graph_path(model, hinge, batch)
    model.zero_grad()
    got = parallel.grad(batch)
    assert worst_difference(model, grads) <= 1e-12
    return got, loss



def test_the_job_and_the_training_set_go_to_a_worker_once_then_batches_go_as_indices():
    """Issue 22: every task carried its examples and the pickled model. Now the compiled loss and
    the training set are sent once per structure (a task naming a key its worker lacks is sent
    again, with the job); later tasks carry a key, indices and the parameter values."""
    model, data = MLP(2, [6, 1], seed=4), moons_like(40)
    HELD.clear()
    with ThreadPoolExecutor(2) as pool:  # (one process: HELD is this one's)
        executor = Recording(pool)
        with DataParallel(model, hinge, executor, chunks=2, examples=data) as parallel:
            for step in range(4):
                batch = data[10 * step:10 * step + 10]
                got, loss = grad_like_the_graph_path(parallel, model, batch)
                assert got == pytest.approx(loss, rel=0, abs=1e-12)
                for p in model.parameters():
                    p.data -= 0.1 * p.grad
            # the parent computes the first chunk of each call itself, a worker the other: the first
            # call's task carries the job (its key is new), the later ones a key, indices and values
            assert executor.with_job() == 1 and len(executor.tasks) == 4
            later = executor.tasks[-1]
            assert later[0][1] is None and later[1] == (35, 36, 37, 38, 39)  # the key, the indices
            assert len(pickle.dumps(later)) < len(pickle.dumps(batch[5:])) + len(pickle.dumps(later[2]))
            HELD.clear()  # a worker that lacks the key (a new one, a Dask worker that joined late)
            parallel.grad(batch)
            assert executor.with_job() == 2 and len(executor.tasks) == 6  # answered so, sent again with the job
            assert parallel.outputs(data) == compile_loss(model, hinge).outputs(data)  # the accuracy pass
            assert executor.tasks[-1][1] == tuple(range(20, 40)) and executor.tasks[-1][3] is True
            copies = [(list(x), y) for x, y in data[:10]]  # not the training set's objects: sent as they are
            _, grads = graph_path(model, hinge, copies)
            model.zero_grad()
            parallel.grad(copies)
            assert executor.tasks[-1][1] == copies[5:] and worst_difference(model, grads) <= 1e-12


@pytest.mark.slow
def test_worker_processes_get_the_job_in_few_calls():
    model, data = MLP(2, [6, 1], seed=4), moons_like(64)
    with ProcessPoolExecutor(2) as pool:
        executor = Recording(pool)
        with DataParallel(model, hinge, executor, chunks=2, examples=data) as parallel:
            for step in range(8):
                grad_like_the_graph_path(parallel, model, data[8 * step:8 * step + 8])
    # a call with a task that misses sends all again, with the job: once per worker that lacked it
    # (each process gets one of two tasks as a rule); 8 would be half the calls
    assert executor.with_job() <= 8 and len(executor.tasks) <= 16 + 8


def test_micro_batches_divided_by_the_batch_size_add_up_to_the_batch_mean():
    """grad(piece, m): each micro-batch's (1/m)-share; the shares add up to the whole batch's."""
    model = MLP(2, [6, 1], seed=4)
    batch = moons_like(10)
    loss, grads = graph_path(model, hinge, batch)
    model.zero_grad()
    with ThreadPoolExecutor(2) as executor, DataParallel(model, hinge, executor) as parallel:
        shares = [parallel.grad(piece, 10) for piece in (batch[:3], batch[3:7], batch[7:])]
        assert sum(shares) == pytest.approx(loss, rel=0, abs=1e-15)
        assert worst_difference(model, grads) <= 1e-15
        before = parameter_state(model)
        for m in (2, 0, True, 3.0, "10"):  # not a whole number, or fewer than the 3 examples given
            with pytest.raises(ValueError, match="m .the size of the batch they are part of"):
                parallel.grad(batch[:3], m)
        assert parameter_state(model) == before


def test_fit_takes_an_executor_and_follows_the_serial_run():
    data = make_moons(48, noise=0.1, seed=5)
    serial, parallel = MLP(2, [8, 1], seed=3), MLP(2, [8, 1], seed=3)
    with ThreadPoolExecutor(2) as executor:
        runs = [fit(model, data, hinge, SGD(model.parameters(), lr=0.1, momentum=0.9), epochs=2,
                    batch_size=16, l2=1e-3, workers=workers)
                for model, workers in ((serial, 1), (parallel, executor))]
    assert runs[1].loss == pytest.approx(runs[0].loss, rel=0, abs=1e-12)
    assert runs[1].accuracy == runs[0].accuracy  # the end-of-epoch outputs, split over the workers: the same numbers
    assert [p.data for p in parallel.parameters()] == pytest.approx(
        [p.data for p in serial.parameters()], rel=0, abs=1e-12)


def test_infinite_chunk_sums_of_both_signs_are_a_divergence_as_on_the_serial_path():
    """Issue 20, a smaller one: +inf in one chunk and -inf in another gave a bare
    ValueError('-inf + inf in fsum'); the serial path raises TrainingDiverged."""
    data = [([0.5, 0.5], 1), ([-0.5, 0.5], -1)]  # batches of 2: one example per chunk, +inf and -inf
    for workers in (1, "executor"):
        model = MLP(2, [3, 1], seed=0)
        before = parameter_state(model)
        with ThreadPoolExecutor(2) as executor, pytest.raises(TrainingDiverged, match="epoch 1, step 1: .*nan"):
            fit(model, data, infinite_loss, epochs=1, batch_size=2, workers=executor if workers else 1)
        assert parameter_state(model) == before
    with ThreadPoolExecutor(2) as executor, DataParallel(model, infinite_loss, executor, chunks=2) as parallel:
        assert math.isnan(parallel.grad(data))


@pytest.mark.slow
def test_dask_cluster_gradients_equal_the_serial_ones():
    """A real Dask LocalCluster, 2 worker processes. Runs in CI; elsewhere needs `[distributed]`."""
    if not IN_CI:
        pytest.importorskip("distributed", reason="the optional [distributed] extra is not installed")
    import dask
    from distributed import Client, LocalCluster

    model = MLP(2, [16, 16, 1], seed=7)
    batch = moons_like(40, shift=0.1)
    loss, grads = graph_path(model, hinge, batch)
    for p in model.parameters():
        p.grad = 0.5  # accumulates on top, like backward()
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        with DataParallel(model, hinge, client.get_executor(), chunks=2) as parallel:
            assert parallel.grad(batch) == pytest.approx(loss, abs=1e-12)
            assert max(abs(p.grad - (0.5 + g)) for p, g in zip(model.parameters(), grads, strict=True)) <= 1e-12
            for p in model.parameters():  # the workers follow the parameters from step to step
                p.data -= 0.1 * p.grad
            loss, grads = graph_path(model, hinge, batch)
            model.zero_grad()
            assert parallel.grad(batch) == pytest.approx(loss, abs=1e-12)
            assert worst_difference(model, grads) <= 1e-12
        # a worker that dies in a task: Dask's KilledWorker (no retries here) becomes WorkerDied
        before = parameter_state(model)
        with DataParallel(model, exiting_loss, client.get_executor()) as dying:
            with pytest.raises(WorkerDied, match="a worker process died"):
                dying.grad(batch)
        assert parameter_state(model) == before


# ---- bad input, and a failed call leaves all state alone ---------------------------------------

def test_a_loss_that_cannot_be_pickled_is_a_clear_error_naming_the_fix():
    model = MLP(2, [3, 1], seed=1)
    with pytest.raises(TypeError, match="cannot be pickled.*top level of a module"):
        DataParallel(model, lambda out, y: hinge(out, y), workers=2)

    def local_loss(out, y):
        return hinge(out, y)

    with pytest.raises(TypeError, match="cannot be pickled"):
        fit(model, moons_like(8), local_loss, workers=2)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2", None])
def test_workers_must_be_a_count_or_an_executor(workers):
    with pytest.raises(ValueError, match="workers must be a whole number >= 1 or a concurrent.futures.Executor"):
        DataParallel(MLP(2, [3, 1]), hinge, workers)
    with pytest.raises(ValueError, match="chunks"):
        DataParallel(MLP(2, [3, 1]), hinge, 2, chunks=0)


def test_a_failed_grad_leaves_every_parameter_and_gradient_alone():
    model = MLP(2, [4, 1], seed=5)
    for k, p in enumerate(model.parameters()):
        p.grad = k / 7
    before = parameter_state(model)
    with ThreadPoolExecutor(2) as executor, DataParallel(model, failing_loss, executor, chunks=2) as parallel:
        with pytest.raises(ValueError, match="refuses label 1"):
            parallel.grad(moons_like(6))  # the chunk with label 1 fails, the other succeeds
        assert parameter_state(model) == before
        with pytest.raises(ValueError, match="at least one example"):
            parallel.grad([])
        assert parameter_state(model) == before


class CoupledModel(MLP):
    """Stands for a model whose examples are coupled within a batch (batch norm in training)."""

    couples_examples = True


def test_a_model_that_couples_the_examples_of_a_batch_is_refused():
    model = CoupledModel(2, [3, 1], seed=0)
    before = parameter_state(model)
    with ThreadPoolExecutor(2) as executor, DataParallel(model, hinge, executor) as parallel:
        with pytest.raises(ValueError, match="couples the examples.*workers=1"):
            parallel.grad(moons_like(4))
    assert parameter_state(model) == before


def test_worker_death_is_exported():
    assert micrograd_batch.WorkerDied is WorkerDied and issubclass(WorkerDied, RuntimeError)
    assert "WorkerDied" in micrograd_batch.__all__


def test_parallel_depends_only_on_lower_modules_and_touches_no_private_attribute():
    source = (ROOT / "micrograd_batch" / "parallel.py").read_text()
    imports = {line.split()[1] for line in source.splitlines() if line.startswith(("from .", "import ."))}
    assert imports <= {".batch", "._checks", ".compile", ".engine", ".losses", ".nn", ".persist"}, imports
    private = [f"{ast.unparse(node)}" for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Attribute)
               and node.attr.startswith("_") and not node.attr.startswith("__") and ast.unparse(node.value) != "self"]
    assert private == ["os._exit"], private  # (os._exit is public, documented)


# ---- a dead worker: an error within seconds, state untouched, nothing left running -------------

def run_scenario(name: str, tmp_path: Path) -> dict:
    """Run tests/parallel_scenarios.py's `name` in a fresh interpreter (60 s at most)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
               MGB_TEST_PID_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", "import parallel_scenarios as s; s.main()", name],
                          env=env, capture_output=True, text=True, timeout=60, start_new_session=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["exit", "kill_busy", "kill_idle", "fit_exit"])
def test_a_dead_worker_raises_worker_died_and_changes_nothing(name, tmp_path):
    result = run_scenario(name, tmp_path)
    assert result["error"] == "WorkerDied", result
    assert "a worker process died" in result["message"] and "unchanged" in result["message"]
    assert result["seconds"] < 10, result
    assert result["unchanged"], "the parameters or their gradients changed"
    assert result["alive"] == [], "worker processes were left running"
    if name == "kill_idle":
        assert result["next_call_right"]  # the next call starts a new pool


@pytest.mark.slow
@pytest.mark.parametrize("name", ["interrupt", "interrupt_group"])
def test_ctrl_c_ends_a_busy_grad_promptly_and_stops_the_workers(name, tmp_path):
    result = run_scenario(name, tmp_path)  # workers asleep for a minute in the loss
    assert result["error"] == "KeyboardInterrupt", result
    assert result["seconds"] < 10, result
    assert result["unchanged"]
    assert result["alive"] == []


@pytest.mark.slow
def test_workers_end_when_their_parent_is_killed_outright(tmp_path):
    """SIGKILL gives the parent no chance to shut its pool down: the workers must notice."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
               MGB_TEST_PID_DIR=str(tmp_path))
    parent = subprocess.Popen([sys.executable, "-c", "import parallel_scenarios as s; s.main()", "parent_killed"],
                              env=env, stdout=subprocess.PIPE, text=True)
    try:
        started = json.loads(parent.stdout.readline())  # type: ignore[union-attr]
    finally:
        parent.kill()
        parent.wait(timeout=60)
        parent.stdout.close()  # type: ignore[union-attr]
    pids = started["workers"] + [started["forkserver"]]
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in pids if alive(pid)]
    for pid in left:  # don't leave them behind even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert left == [], "worker processes outlived their parent"


# ---- no fork from a threaded process (Python 3.12+ warns, 3.14 changes the default) ------------

NO_FORK_SCRIPT = """
import multiprocessing, sys, threading, time
from concurrent.futures import ProcessPoolExecutor
from micrograd_batch import MLP, DataParallel, hinge
threading.Thread(target=time.sleep, args=(3,), daemon=True).start()  # a threaded process
if __name__ == "__main__":
    context = multiprocessing.get_context(sys.argv[1]) if len(sys.argv) > 1 else None
    workers = ProcessPoolExecutor(2, mp_context=context) if context else 2
    with DataParallel(MLP(2, [3, 1], seed=0), hinge, workers) as parallel:
        print(parallel.grad([([0.5, 1.0], 1), ([1.0, -1.0], -1)]))
"""


def python_at(version: str) -> Path:
    """The pyenv interpreter of `version`; skips if it is missing (fails under CI=true)."""
    python = Path(f"/root/.pyenv/versions/{version}/bin/python")
    if not python.exists():
        if IN_CI:
            pytest.fail(f"Python {version} is not installed at {python} (required when CI=true)")
        pytest.skip(f"Python {version} is not installed at {python}")
    return python


def run_threaded(python: Path, warnings: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    script = tmp_path / "threaded.py"
    script.write_text(NO_FORK_SCRIPT)
    return subprocess.run([str(python), "-W", warnings, str(script), *args], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=60)


@pytest.mark.slow
@pytest.mark.parametrize("version", ["3.12.1", "3.13.0"])
def test_no_fork_warning_on_python_3_12_and_later(version, tmp_path):
    python = python_at(version)
    strict = run_threaded(python, "error::DeprecationWarning", tmp_path)
    assert strict.returncode == 0 and float(strict.stdout) > 0, strict.stderr[-3000:]
    # -W error turns the fork warning into an exception CPython reports nowhere; so look for it too
    shown = run_threaded(python, "always::DeprecationWarning", tmp_path)
    assert shown.returncode == 0 and "fork" not in shown.stderr, shown.stderr[-3000:]


@pytest.mark.slow
def test_the_fork_warning_check_sees_a_fork(tmp_path):
    """The check above can fail: with "fork" asked for explicitly, the warning is there."""
    shown = run_threaded(python_at("3.12.1"), "always::DeprecationWarning", tmp_path, "fork")
    assert "multi-threaded, use of fork() may lead to deadlocks" in shown.stderr


class InterruptedOnce:
    """A parameter whose `grad` assignment raises KeyboardInterrupt once, when armed: a Ctrl-C
    landing in the middle of adding the batch's gradient into the parameters."""

    def __init__(self, grad: float, armed: bool) -> None:
        self._grad, self.armed = grad, armed

    @property
    def grad(self) -> float:
        return self._grad

    @grad.setter
    def grad(self, value: float) -> None:
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt
        self._grad = value


@pytest.mark.parametrize("where", range(4))
def test_ctrl_c_while_adding_the_gradient_leaves_every_grad_as_it_was(where, monkeypatch):
    params = [InterruptedOnce(grad=k + 0.5, armed=k == where) for k in range(4)]
    with ThreadPoolExecutor(1) as executor:
        parallel = DataParallel(MLP(2, [1]), hinge, executor)
        monkeypatch.setattr(parallel, "model", mock.Mock(parameters=lambda: params, couples_examples=False))
        monkeypatch.setattr(parallel, "_job", lambda examples: ((None, b""), None, examples))
        monkeypatch.setattr(parallel, "_run", lambda *args: [(1.0, [10.0, 20.0, 30.0, 40.0])])  # the sums
        with pytest.raises(KeyboardInterrupt):
            parallel.grad([([0.0, 0.0], 1)])
        assert [p.grad for p in params] == [0.5, 1.5, 2.5, 3.5]
        parallel.grad([([0.0, 0.0], 1)])
        assert [p.grad for p in params] == [10.5, 21.5, 32.5, 43.5]
