"""Worker faults for tests/test_parallel.py, each run in its own interpreter so that a regression
(a hang) fails on the test's timeout instead of blocking the suite.

    PYTHONPATH=<worktree>:<worktree>/tests python -c "import parallel_scenarios as s; s.main()" NAME

prints one JSON line: the error the failing call raised, how long it took, whether every
parameter's data and grad were left as they were, and which worker processes are still alive
afterwards. The loss functions live here (not in the test file) so the worker processes can
import them by name.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any
from collections.abc import Callable

from micrograd_batch import MLP, DataParallel, SGD, Value, fit, make_moons
from micrograd_batch.losses import hinge

from helpers import graph_path
from state import parameter_state

PID_DIR = "MGB_TEST_PID_DIR"  # where a worker notes its pid (one empty file per process)


def _note_pid() -> None:
    folder = os.environ.get(PID_DIR)
    if folder:
        Path(folder, str(os.getpid())).touch()


def recording_hinge(output: Value, y: int) -> Value:
    """hinge, noting which process computed it."""
    _note_pid()
    return hinge(output, y)


def exiting_loss(output: Value, y: int) -> Value:
    """A loss whose process ends at once, as `os._exit` (or a crash in C) does."""
    _note_pid()
    os._exit(3)


def sleepy_loss(output: Value, y: int) -> Value:
    """A loss that takes a minute: its worker is busy when the test kills it or presses Ctrl-C."""
    _note_pid()
    time.sleep(60)
    return hinge(output, y)


def failing_loss(output: Value, y: int) -> Value:
    """A loss that raises an ordinary error for one label."""
    if y == 1:
        raise ValueError("this loss refuses label 1")
    return hinge(output, y)


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def worker_pids(count: int, timeout: float = 30.0) -> list[int]:
    """The pids of the first `count` workers that noted themselves (waits for them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = sorted(int(p.name) for p in Path(os.environ[PID_DIR]).iterdir())
        if len(pids) >= count:
            return pids
        time.sleep(0.02)
    raise TimeoutError(f"fewer than {count} workers started")


def after(action: Callable[[], None], count: int) -> None:
    """Run `action` in a thread once `count` workers have noted themselves."""
    threading.Thread(target=lambda: (worker_pids(count), action()), daemon=True).start()


def outcome(call: Callable[[], Any], model: MLP) -> dict[str, Any]:
    """What `call()` raised, how long it took, and whether the model's state survived it."""
    before = parameter_state(model)
    started = time.monotonic()
    try:
        call()
        error: BaseException | None = None
    except BaseException as caught:  # noqa: B036 - KeyboardInterrupt is one of the outcomes
        error = caught
    return {"error": type(error).__name__ if error else None, "message": str(error or ""),
            "seconds": time.monotonic() - started, "unchanged": parameter_state(model) == before}


def kill_one() -> None:
    os.kill(worker_pids(1)[0], signal.SIGKILL)


def setup(loss) -> tuple[MLP, list, DataParallel]:
    model = MLP(2, [8, 1], seed=3)
    for p in model.parameters():
        p.grad = 0.25  # a gradient already accumulated: it must survive a failed call
    return model, make_moons(16, noise=0.1, seed=1), DataParallel(model, loss, 2)


def scenario(name: str) -> dict[str, Any]:
    """Run scenario `name`; the result also lists the workers still alive at the end."""
    if name == "fit_exit":
        model = MLP(2, [8, 1], seed=3)
        data = make_moons(16, noise=0.1, seed=1)
        result = outcome(lambda: fit(model, data, exiting_loss, SGD(model.parameters(), lr=0.1),
                                     epochs=1, batch_size=8, workers=2), model)
        return result
    loss = {"exit": exiting_loss, "kill_busy": sleepy_loss, "interrupt": sleepy_loss,
            "interrupt_group": sleepy_loss}.get(name, recording_hinge)
    model, batch, parallel = setup(loss)
    with parallel:
        if name == "kill_busy":
            after(kill_one, 1)
        elif name == "interrupt":  # Ctrl-C reaching this process only
            after(lambda: os.kill(os.getpid(), signal.SIGINT), 2)
        elif name == "interrupt_group":  # Ctrl-C at a terminal: every process of the group
            after(lambda: os.killpg(os.getpgrp(), signal.SIGINT), 2)
        elif name == "kill_idle":
            parallel.grad(batch)  # both workers started and now idle
            model.zero_grad()
            kill_one()
            time.sleep(0.5)
        result = outcome(lambda: parallel.grad(batch), model)
        if name == "kill_idle":  # the next call starts a new pool and is right again
            _, grads = graph_path(model, hinge, batch)
            model.zero_grad()
            parallel.grad(batch)
            result["next_call_right"] = max(
                abs(p.grad - g) for p, g in zip(model.parameters(), grads, strict=True)) <= 1e-12
    return result


def parent_killed() -> None:
    """Start two workers, say who they are (and their forkserver), then wait to be SIGKILLed."""
    model, batch, parallel = setup(recording_hinge)
    parallel.grad(batch)
    workers = sorted(p.pid for p in multiprocessing.active_children())  # both started, maybe one used
    forkserver = int(Path(f"/proc/{workers[0]}/stat").read_text().rsplit(")", 1)[1].split()[1])
    print(json.dumps({"workers": workers, "forkserver": forkserver}), flush=True)
    time.sleep(60)


def main() -> None:
    name = sys.argv[1]
    if name == "parent_killed":
        return parent_killed()
    result = scenario(name)
    result["alive"] = [pid for pid in worker_pids(0) if alive(pid)]
    print(json.dumps(result), flush=True)


def infinite_loss(output: Value, y: int) -> Value:
    """+inf for label 1, -inf for label -1 (its gradient is finite: 0)."""
    return output * 0.0 + y * math.inf
