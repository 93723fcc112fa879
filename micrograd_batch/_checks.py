"""Argument checks the library shares, each in one place (internal: not part of the public API).

Every public function checks what it is given and says what was wrong and what was expected,
so bad input never turns into a silent wrong number or a crash deep inside.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, Optional


def as_float(data: object, what: Optional[str] = None) -> float:
    """Return `data` as a float, or raise a TypeError that names `what` it was meant to be
    ("lr must be a real number ...") and what was given instead; `what` None: a Value's data."""
    if isinstance(data, Real) and not isinstance(data, bool):
        return float(data)
    wanted = f"{what} must be" if what is not None else "Value needs"
    raise TypeError(f"{wanted} a real number (int or float), got {type(data).__name__}: {data!r:.60}")


def is_whole_number(x: object, minimum: int = 1) -> bool:
    """True for a whole number (an int, or any `numbers.Integral` such as numpy.int64; not a
    bool) of at least `minimum`: a count, a size, a batch size. Callers keep `int(x)`."""
    return isinstance(x, Integral) and not isinstance(x, bool) and int(x) >= minimum


def as_seed(seed: Any) -> Any:
    """A random seed as `random.Random` takes it: any whole number (numpy.int64 too) becomes
    an int; None, str, bytes and the other seeds `random` accepts pass through unchanged."""
    if isinstance(seed, Integral) and not isinstance(seed, bool):
        return int(seed)
    return seed


def check_model_and_loss(model: object, loss_fn: object, caller: str) -> None:
    """TypeErrors for a model (a callable with `parameters()`) or a loss function of the wrong
    kind, naming `caller` ("fit", "compile_loss", ...)."""
    if not callable(model) or not callable(getattr(model, "parameters", None)):
        raise TypeError(f"{caller} needs a model (a callable Module), got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function (output, y) -> loss, got {type(loss_fn).__name__}")
