"""Argument checks the library shares (internal): each says what was wrong and what was expected."""

from numbers import Integral, Real
from typing import Any


def as_float(data: object, what: str | None = None) -> float:
    """`data` (a real number, not a bool) as a float, or a TypeError naming `what` it should be."""
    if isinstance(data, Real) and not isinstance(data, bool):
        return float(data)
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
