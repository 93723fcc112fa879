"""Test helper: central finite differences, the independent reference for every gradient."""

from __future__ import annotations

import math

from collections.abc import Callable, Sequence


def central_difference(
    f: Callable[[Sequence[float]], float], xs: Sequence[float], i: int, h: float = 1e-6
) -> float:
    """(f(x + h e_i) - f(x - h e_i)) / 2h: error O(h²) from truncation plus O(eps·|f|/h)."""
    up = list(xs)
    down = list(xs)
    up[i] += h
    down[i] -= h
    return (f(up) - f(down)) / (2.0 * h)


def numeric_gradient(
    f: Callable[[Sequence[float]], float], xs: Sequence[float], h: float = 1e-6
) -> list[float]:
    """The central-difference gradient of f at xs, one component per input."""
    return [central_difference(f, xs, i, h) for i in range(len(xs))]


RTOL = 1e-5


def assert_close(ad: float, fd: float, what: str) -> None:
    """A backward gradient `ad` against a central difference `fd`: |ad - fd| <= 1e-5·max(1, |fd|)
    (the tolerance is derived in test_engine.py's docstring)."""
    assert math.isfinite(ad), f"{what}: backward gave {ad}"
    assert abs(ad - fd) <= RTOL * max(1.0, abs(fd)), f"{what}: backward {ad!r} vs finite difference {fd!r}"
