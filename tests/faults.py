"""Fault injection: raise KeyboardInterrupt at every statement boundary of an operation.

`interrupt_everywhere(setup, operation, check)` runs `operation` once to count the line events
it executes, then, for each k, sets the world up afresh and runs it again with a trace function
that raises KeyboardInterrupt at the k-th line event (inside the operation or anything it
calls in the package), and calls `check(state, interrupted)` afterwards. This is how a Ctrl-C
arriving at any moment is simulated, deterministically. Lines run while SIGINT is blocked
(`signal.pthread_sigmask`) are skipped, since a real Ctrl-C would wait until it is unblocked.
The injector keeps tracing until it raises, so it can also interrupt the handling of an earlier
interrupt (tests/test_engine.py uses that for two Ctrl-C in a row).
"""

from __future__ import annotations

import signal
import sys
from typing import Any
from collections.abc import Callable

PACKAGE = "micrograd_batch"


def ctrl_c_blocked() -> bool:
    """Whether a real Ctrl-C would be held back now (SIGINT blocked in this thread)."""
    return hasattr(signal, "pthread_sigmask") and signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])


class Injector:
    """A sys.settrace function that raises KeyboardInterrupt at line event number `at` of code
    under `where` (None: only count the line events, in `count`)."""

    def __init__(self, at: int | None = None, where: str = PACKAGE) -> None:
        self.at = at
        self.where = where
        self.count = 0

    def __call__(self, frame: Any, event: str, arg: Any) -> Any:
        if self.where not in frame.f_code.co_filename:
            return None  # do not trace into the standard library or the test itself
        return self._local

    def _local(self, frame: Any, event: str, arg: Any) -> Any:
        if event == "line" and not ctrl_c_blocked():
            self.count += 1
            if self.count == self.at:
                raise KeyboardInterrupt(f"injected at line event {self.at}")
        return self._local


def count_line_events(operation: Callable[[], Any], where: str = PACKAGE) -> int:
    """How many line events of code under `where` one uninterrupted `operation()` executes."""
    injector = Injector(None, where)
    sys.settrace(injector)
    try:
        operation()
    finally:
        sys.settrace(None)
    return injector.count


def run_interrupted(operation: Callable[[], Any], at: int, where: str = PACKAGE) -> bool:
    """Run `operation()` with a KeyboardInterrupt raised at line event `at`; True if it was."""
    injector = Injector(at, where)
    sys.settrace(injector)
    try:
        operation()
    except KeyboardInterrupt:
        return True
    finally:
        sys.settrace(None)
    return False


def interrupt_everywhere(
    setup: Callable[[], Any],
    operation: Callable[[Any], Any],
    check: Callable[[Any, bool], None],
    where: str = PACKAGE,
    step: int = 1,
) -> int:
    """For every line event k of `operation(setup())`: fresh `state = setup()`, run the operation
    interrupted at k, then `check(state, interrupted)`. Returns the number of runs made."""
    first = setup()
    total = count_line_events(lambda: operation(first), where)
    assert total > 0, f"the operation ran no code under {where!r}: nothing to interrupt"
    runs = 0
    for at in range(1, total + 1, step):
        state = setup()
        interrupted = run_interrupted(lambda state=state: operation(state), at, where)
        check(state, interrupted)
        runs += 1
    return runs
