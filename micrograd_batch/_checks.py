"""Internal helpers the library shares: argument checks that name what was wrong and what was
expected, and `gc_paused` (docs/engine.md)."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any


def is_real(x: object) -> bool:
    """True for a real number (int, float, Fraction, numpy scalar), but not a bool."""
    return isinstance(x, Real) and not isinstance(x, bool)


def as_float(data: object, what: str | None = None) -> float:
    """`data` (a real number, not a bool) as a float, or a TypeError naming `what` it should be."""
    if is_real(data):
        return float(data)  # type: ignore[arg-type]
    wanted = f"{what} must be" if what is not None else "Value needs"
    raise TypeError(f"{wanted} a real number (int or float), got {type(data).__name__}: {data!r:.60}")


def is_whole_number(x: object, minimum: int = 1) -> bool:
    """True for an int (or numpy integer; not a bool) of at least `minimum`."""
    return isinstance(x, Integral) and not isinstance(x, bool) and int(x) >= minimum


def as_seed(seed: Any) -> Any:
    """A seed as `random.Random` takes it: a numpy integer becomes an int, the rest pass through."""
    return int(seed) if isinstance(seed, Integral) and not isinstance(seed, bool) else seed


def check_model_and_loss(model: object, loss_fn: object, caller: str) -> None:
    """TypeErrors for a model (a callable with `parameters()`) or a loss function of the wrong kind."""
    if not callable(model) or not callable(getattr(model, "parameters", None)):
        raise TypeError(f"{caller} needs a model (a callable Module), got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function (output, y) -> loss, got {type(loss_fn).__name__}")


_open_pauses: list[None] = []  # one item per gc_paused block open in any thread (append/pop are atomic)


@contextmanager
def gc_paused() -> Iterator[None]:
    """`with gc_paused():` Python's cyclic garbage collector off inside the block (Values form no
    cycles: reference counting frees each graph). Thread-safe without a lock (which a Ctrl-C
    could leave held): the collector is on again once the last block open in any thread closes."""
    _open_pauses.append(None)
    try:
        gc.disable()
        yield
    finally:
        _open_pauses.pop()
        if not _open_pauses:
            gc.enable()
