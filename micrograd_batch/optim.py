"""Optimisers: `step()` moves each parameter against its `.grad`, all or nothing (under a NaN and
under Ctrl-C); `state_dict()` / `load_state_dict()` carry the state exactly (docs/guarantees.md)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any, ClassVar

from ._checks import as_float
from .engine import Value
from .module import check_values
from .persist import assign, exact_floats


def _setting(value: object, name: str, ok: Callable[[float], bool], expected: str) -> float:
    """A hyper-parameter as a float: TypeError for a non-number, ValueError unless `ok`."""
    x = as_float(value, name)
    if not ok(x):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return x


class Optimizer:
    """Parameters, lr and weight decay; a subclass computes `_update`, names `SETTINGS` and `STATE`."""

    SETTINGS: ClassVar[tuple[str, ...]] = ("lr", "weight_decay")
    STATE: ClassVar[tuple[str, ...]] = ()
    NONNEGATIVE: ClassVar[tuple[str, ...]] = ()  # STATE lists that must hold numbers >= 0

    def __init__(self, params: Iterable[Value], lr: float, weight_decay: float = 0.0) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("the optimiser got no parameters to update")
        check_values(self.params, type(self).__name__, item="parameter")
        self.lr = _setting(lr, "lr", lambda x: 0.0 < x < math.inf, "a positive finite number")
        self.weight_decay = _setting(weight_decay, "weight_decay", lambda x: 0.0 <= x < math.inf,
                                     "a finite number >= 0")

    def zero_grad(self) -> None:
        """Set every parameter's gradient to 0 before the next backward pass."""
        for p in self.params:
            p.grad = 0.0

    def _update(self, data: list[float], grads: list[float]) -> tuple[list[float], dict[str, Any]]:
        """The new parameter values and the new `STATE` attributes (nothing is changed here)."""
        raise NotImplementedError

    def step(self) -> None:
        """Update every parameter once from its `.grad`: all of them, or (on a NaN or infinite
        gradient, new value or state) none of them, raising FloatingPointError."""
        data, grads = [p.data for p in self.params], [p.grad for p in self.params]
        new, state = self._update(data, grads)
        vectors = {k: v for k, v in state.items() if isinstance(v, list)}
        if not all(map(math.isfinite, chain(new, *vectors.values()))):  # the one check
            named = {"the gradient of": grads, "this step would make": new}
            named.update({f"this step would make the {k} of": v for k, v in vectors.items()})
            what, i = next((w, i) for w, v in named.items() for i, x in enumerate(v) if not math.isfinite(x))
            raise FloatingPointError(f"{what} parameter {i} ({self.params[i].label or 'unlabelled'}) "
                                     f"{'is ' * (what == 'the gradient of')}{named[what][i]}; no parameter was updated")
        assign(self.params, new, [(self, state)])

    def state_dict(self) -> dict[str, Any]:
        """The optimiser's kind, settings and state, JSON-ready, as copies: floats stay exact."""
        state = {name: getattr(self, name) for name in self.SETTINGS + self.STATE}
        return {"kind": type(self).__name__, **{k: list(v) if isinstance(v, list) else v for k, v in state.items()}}

    def load_state_dict(self, state: object) -> None:
        """Restore what `state_dict()` returned: a ValueError, with nothing changed, unless it is
        the state of an optimiser of this kind, with these settings and this many parameters."""
        vars(self).update(self._checked_state(state))  # one call: an interrupt cannot split it

    def _checked_state(self, saved: object) -> dict[str, Any]:
        """The `STATE` attributes `saved` holds, checked against this optimiser; changes nothing."""
        kind, mine = type(self).__name__, self.state_dict()
        if not isinstance(saved, dict) or saved.get("kind") != kind:
            found = saved.get("kind") if isinstance(saved, dict) else type(saved).__name__
            raise ValueError(f"the state is of a {found!r:.20} optimiser, this one is {kind!r}")
        if saved.keys() != mine.keys():
            raise ValueError(f"a {kind} state must have exactly the keys {list(mine)}")
        for k in self.SETTINGS:
            if saved[k] != mine[k] or type(saved[k]) is bool:
                raise ValueError(f"the saved optimiser has {k} = {saved[k]!r:.30}, this one {mine[k]!r}")
        return {k: self._checked_entry(k, saved[k]) for k in self.STATE}

    def _checked_entry(self, name: str, value: object) -> Any:
        """One `STATE` entry: `len(params)` exact floats (>= 0 if `NONNEGATIVE`), or a step count."""
        what = f"{type(self).__name__} {name}"
        if not isinstance(getattr(self, name), list):  # a step count
            if type(value) is not int or not 0 <= value <= 2**53:
                raise ValueError(f"{what} is {value!r:.40}, expected a whole number from 0 to 2**53")
            return value
        floats = exact_floats(value, len(self.params), what)
        if name in self.NONNEGATIVE and min(floats) < 0.0:  # a mean of squares
            raise ValueError(f"{what} holds a negative number ({min(floats)!r}), expected {name} >= 0")
        return floats


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and weight decay (PyTorch's rule).

    g = grad + weight_decay·p;  v = momentum·v + g;  p = p - lr·v   (v = g when momentum = 0)
    """

    SETTINGS = ("lr", "momentum", "weight_decay")
    STATE = ("velocity",)

    def __init__(self, params: Iterable[Value], lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, weight_decay)
        self.momentum = _setting(momentum, "momentum", lambda x: 0.0 <= x < 1.0, "in [0, 1)")
        self.velocity = [0.0] * len(self.params)

    def _update(self, data: list[float], grads: list[float]) -> tuple[list[float], dict[str, Any]]:
        wd, mu, lr = self.weight_decay, self.momentum, self.lr
        v = [g + wd * x for g, x in zip(grads, data, strict=True)]
        if mu:
            v = [mu * old + g for old, g in zip(self.velocity, v, strict=True)]
        return [x - lr * g for x, g in zip(data, v, strict=True)], ({"velocity": v} if mu else {})


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015): steps scaled by running estimates of the gradient's moments.

    m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²;  p -= lr · m̂ / (√v̂ + eps),
    with the bias corrections m̂ = m/(1-β1^t), v̂ = v/(1-β2^t).
    """

    SETTINGS = ("lr", "beta1", "beta2", "eps", "weight_decay")
    STATE = ("m", "v", "t")
    NONNEGATIVE = ("v",)

    def __init__(self, params: Iterable[Value], lr: float = 0.001,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr, weight_decay)
        self.beta1, self.beta2 = (_setting(b, "each of Adam's betas", lambda x: 0.0 <= x < 1.0, "in [0, 1)")
                                  for b in betas)
        # eps = 0 would divide 0 by 0 for a zero gradient
        self.eps = _setting(eps, "Adam eps", lambda x: 0.0 < x < math.inf, "a positive finite number")
        self.m, self.v, self.t = [0.0] * len(self.params), [0.0] * len(self.params), 0

    def _update(self, data: list[float], grads: list[float]) -> tuple[list[float], dict[str, Any]]:
        b1, b2, lr, eps, t = self.beta1, self.beta2, self.lr, self.eps, self.t + 1
        c1, c2 = 1.0 - b1**t, 1.0 - b2**t
        g = [g + self.weight_decay * x for g, x in zip(grads, data, strict=True)]
        m = [b1 * m + (1.0 - b1) * gi for m, gi in zip(self.m, g, strict=True)]
        v = [b2 * v + (1.0 - b2) * gi * gi for v, gi in zip(self.v, g, strict=True)]
        new = [x - lr * (mi / c1) / (math.sqrt(vi / c2) + eps) for x, mi, vi in zip(data, m, v, strict=True)]
        return new, {"m": m, "v": v, "t": t}
