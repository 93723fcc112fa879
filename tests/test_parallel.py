"""Data parallelism (`micrograd_batch.parallel`): the gradient from worker processes equals the
serial one, a dead worker is an error (never a hang) that leaves all state alone, no process is
forked from a threaded one, and any concurrent.futures.Executor -- a Dask cluster's too -- runs it.

Faults use real processes and real signals. Each runs in its own interpreter
(tests/parallel_scenarios.py) with a timeout, so a regression fails instead of hanging the suite.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import micrograd_batch
from micrograd_batch import MLP, SGD, DataParallel, WorkerDied, fit, make_moons, parallel_batch_grad
from micrograd_batch.losses import hinge, mse
from micrograd_batch.parallel import _add_into_grads, chunk_sums, split, start_method, uses_workers
from helpers import graph_path, moons_like
from parallel_scenarios import alive, exiting_loss, failing_loss
from state import parameter_state

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"


def worst_difference(model: MLP, grads: list[float]) -> float:
    return max(abs(p.grad - g) for p, g in zip(model.parameters(), grads))


# ---- the arithmetic: partial sums ------------------------------------------------------------

def test_split_keeps_every_example_once_in_order():
    examples = list(range(10))
    chunks = split(examples, 3)
    assert [len(c) for c in chunks] == [4, 3, 3]
    assert [e for c in chunks for e in c] == examples
    assert split(examples[:2], 5) == [[0], [1]]
    with pytest.raises(ValueError, match="whole number"):
        split(examples, 0)


def test_chunk_sums_add_up_to_m_times_the_batch_mean():
    model = MLP(2, [6, 1], seed=4)
    batch = moons_like(10)
    loss, grads = graph_path(model, hinge, batch)
    sums = [chunk_sums(model, chunk, hinge) for chunk in split(batch, 3)]
    assert sum(s for s, _, _ in sums) / 10 == pytest.approx(loss, abs=1e-12)
    for k, g in enumerate(grads):
        assert sum(gs[k] for _, gs, _ in sums) / 10 == pytest.approx(g, abs=1e-12)
    outputs = [scores for _, _, chunk in sums for scores in chunk]
    assert outputs == [model(x).data for x, _ in batch]


def test_models_pickle_for_the_workers():
    model = MLP(2, [3, 1], seed=9)
    copy = pickle.loads(pickle.dumps(model))
    assert copy([0.5, -1.0]).data == model([0.5, -1.0]).data


# ---- equal to the serial run, on every kind of executor ----------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("workers, method", [(2, None), (3, None), (2, "spawn")])
def test_parallel_gradient_equals_the_serial_one(workers, method):
    model = MLP(2, [16, 16, 1], seed=7)
    batch = moons_like(50, shift=0.2)
    loss, grads = graph_path(model, hinge, batch)
    model.zero_grad()
    context = multiprocessing.get_context(method) if method else None
    with DataParallel(model, hinge, workers=workers, context=context) as parallel:
        assert parallel.grad(batch) == pytest.approx(loss, abs=1e-12)
        assert worst_difference(model, grads) <= 1e-12
        # the workers follow the parent's parameters from step to step
        for p in model.parameters():
            p.data -= 0.1 * p.grad
        loss, grads = graph_path(model, hinge, batch)
        model.zero_grad()
        assert parallel.grad(batch) == pytest.approx(loss, abs=1e-12)
        assert worst_difference(model, grads) <= 1e-12


@pytest.mark.slow
def test_one_shot_parallel_gradient_accumulates_like_backward():
    model = MLP(2, [4, 1], seed=8)
    batch = moons_like(9)
    loss, grads = graph_path(model, hinge, batch)
    for p in model.parameters():
        p.grad = 1.0
    assert parallel_batch_grad(model, batch, hinge, workers=2) == pytest.approx(loss, abs=1e-12)
    assert max(abs(p.grad - (1.0 + g)) for p, g in zip(model.parameters(), grads)) <= 1e-12


def test_any_executor_runs_it_and_two_models_share_its_workers_safely():
    """A thread pool: one process, several threads, each keeping its own model copies."""
    first, second = MLP(2, [5, 1], seed=1), MLP(2, [5, 3], seed=2)
    batch, three_class = moons_like(12), [(x, [float(y == 1), 0.0, 1.0]) for x, y in moons_like(12)]
    _, grads = graph_path(first, hinge, batch)
    _, grads_second = graph_path(second, mse, three_class)
    with ThreadPoolExecutor(3) as executor:
        a, b = DataParallel(first, hinge, executor), DataParallel(second, mse, executor, chunks=4)
        assert a.chunks == 3 and b.chunks == 4
        for _ in range(2):
            first.zero_grad()
            second.zero_grad()
            a.grad(batch)
            b.grad(three_class)
            assert worst_difference(first, grads) <= 1e-12
            assert worst_difference(second, grads_second) <= 1e-12
        a.close()
        assert executor.submit(len, "still running").result() == 13  # an executor passed in is not shut down


def test_micro_batches_divided_by_the_batch_size_add_up_to_the_batch_mean():
    """grad_and_outputs(piece, m): each micro-batch's (1/m)-share; the shares add up to the whole
    batch's mean loss and gradient, and each piece's outputs are its examples' outputs."""
    model = MLP(2, [6, 1], seed=4)
    batch = moons_like(10)
    loss, grads = graph_path(model, hinge, batch)
    model.zero_grad()
    with ThreadPoolExecutor(2) as executor, DataParallel(model, hinge, executor) as parallel:
        shares = [parallel.grad_and_outputs(piece, 10) for piece in (batch[:3], batch[3:7], batch[7:])]
        assert sum(share for share, _ in shares) == pytest.approx(loss, rel=0, abs=1e-15)
        assert worst_difference(model, grads) <= 1e-15
        assert [out for _, outs in shares for out in outs] == [model(x).data for x, _ in batch]
        before = parameter_state(model)
        for m in (2, 0, True, 3.0, "10"):  # not a whole number, or fewer than the 3 examples given
            with pytest.raises(ValueError, match="m, the size of the batch these 3 examples are part of"):
                parallel.grad_and_outputs(batch[:3], m)
        assert parameter_state(model) == before


@pytest.mark.slow
def test_fit_takes_an_executor_and_follows_the_serial_run():
    data = make_moons(48, noise=0.1, seed=5)
    serial, parallel = MLP(2, [8, 1], seed=3), MLP(2, [8, 1], seed=3)
    with ThreadPoolExecutor(2) as executor:
        runs = [fit(model, data, hinge, SGD(model.parameters(), lr=0.1, momentum=0.9), epochs=2,
                    batch_size=16, l2=1e-3, verbose=False, workers=workers)
                for model, workers in ((serial, 1), (parallel, executor))]
    assert runs[1].loss == pytest.approx(runs[0].loss, rel=0, abs=1e-12)
    assert [p.data for p in parallel.parameters()] == pytest.approx(
        [p.data for p in serial.parameters()], rel=0, abs=1e-12)


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
        with DataParallel(model, hinge, client.get_executor()) as parallel:
            assert parallel.chunks == 2
            assert parallel.grad(batch) == pytest.approx(loss, abs=1e-12)
            assert max(abs(p.grad - (0.5 + g)) for p, g in zip(model.parameters(), grads)) <= 1e-12
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
    with pytest.raises(TypeError, match="loss_fn .* cannot be pickled.*top level of a module"):
        DataParallel(model, lambda out, y: hinge(out, y), workers=2)

    def local_loss(out, y):
        return hinge(out, y)

    with pytest.raises(TypeError, match="loss_fn .* cannot be pickled"):
        fit(model, moons_like(8), local_loss, workers=2, verbose=False)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2", None])
def test_workers_must_be_a_count_or_an_executor(workers):
    with pytest.raises(ValueError, match="workers must be a whole number >= 1 or a concurrent.futures.Executor"):
        DataParallel(MLP(2, [3, 1]), hinge, workers)
    with pytest.raises(ValueError, match="workers must be"):
        uses_workers(workers)
    with pytest.raises(ValueError, match="chunks"):
        DataParallel(MLP(2, [3, 1]), hinge, 2, chunks=0)


def test_uses_workers_only_for_more_than_one_or_an_executor():
    assert not uses_workers(1) and uses_workers(2)
    with ThreadPoolExecutor(1) as executor:
        assert uses_workers(executor)


def test_a_failed_grad_leaves_every_parameter_and_gradient_alone():
    model = MLP(2, [4, 1], seed=5)
    for k, p in enumerate(model.parameters()):
        p.grad = k / 7
    before = parameter_state(model)
    with ThreadPoolExecutor(2) as executor, DataParallel(model, failing_loss, executor) as parallel:
        with pytest.raises(ValueError, match="refuses label 1"):
            parallel.grad(moons_like(6))  # the chunk with label 1 fails, the other succeeds
        assert parameter_state(model) == before
        with pytest.raises(ValueError, match="empty batch"):
            parallel.grad([])
        assert parameter_state(model) == before
    with pytest.raises(RuntimeError, match="closed"):
        parallel.grad(moons_like(2))


class CoupledModel(MLP):
    """Stands for a model whose examples are coupled within a batch (batch norm in training)."""

    couples_examples = True


def test_a_model_that_couples_the_examples_of_a_batch_is_refused():
    model = CoupledModel(2, [3, 1], seed=0)
    before = parameter_state(model)
    with ThreadPoolExecutor(2) as executor, DataParallel(model, hinge, executor) as parallel:
        with pytest.raises(ValueError, match="couples the examples"):
            parallel.grad(moons_like(4))
    assert parameter_state(model) == before


def test_worker_death_is_exported():
    assert micrograd_batch.WorkerDied is WorkerDied and issubclass(WorkerDied, RuntimeError)
    assert "WorkerDied" in micrograd_batch.__all__


def test_parallel_depends_only_on_lower_modules():
    source = (ROOT / "micrograd_batch" / "parallel.py").read_text()
    imports = {line.split()[1] for line in source.splitlines() if line.startswith(("from .", "import ."))}
    assert imports <= {".batch", "._checks", ".engine", ".losses", ".nn"}, imports


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
from micrograd_batch import MLP, DataParallel, hinge
threading.Thread(target=time.sleep, args=(3,), daemon=True).start()  # a threaded process
if __name__ == "__main__":
    context = multiprocessing.get_context(sys.argv[1]) if len(sys.argv) > 1 else None
    with DataParallel(MLP(2, [3, 1], seed=0), hinge, 2, context) as parallel:
        print(parallel.grad([([0.5, 1.0], 1), ([1.0, -1.0], -1)]))
"""


def test_the_local_pool_never_forks():
    assert start_method() in ("forkserver", "spawn")


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
def test_ctrl_c_while_adding_the_gradient_leaves_every_grad_as_it_was(where):
    params = [InterruptedOnce(grad=k + 0.5, armed=k == where) for k in range(4)]
    with pytest.raises(KeyboardInterrupt):
        _add_into_grads(params, [10.0, 20.0, 30.0, 40.0])  # type: ignore[arg-type]
    assert [p.grad for p in params] == [0.5, 1.5, 2.5, 3.5]
    _add_into_grads(params, [10.0, 20.0, 30.0, 40.0])  # type: ignore[arg-type]
    assert [p.grad for p in params] == [10.5, 21.5, 32.5, 43.5]
