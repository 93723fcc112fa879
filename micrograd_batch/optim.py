"""Optimisers: turn the parameters' averaged gradients (`.grad`) into a step.

After `batch_mean(losses).backward()`, each parameter's `.grad` is the mean of its per-example
gradients; `step()` moves `.data` against it, `zero_grad()` clears it for the next batch.
"""

from __future__ import annotations

import math
from typing import Iterable

from ._checks import as_float
from .engine import Value, check_values


class Optimizer:
    """Holds a list of parameters, the learning rate and the weight decay (checked here, once);
    subclasses define `step()`."""

    def __init__(self, params: Iterable[Value], lr: float, weight_decay: float = 0.0) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("the optimiser got no parameters to update")
        check_values(self.params, type(self).__name__, item="parameter")
        self.lr = as_float(lr, "lr")
        if not 0.0 < self.lr < math.inf:
            raise ValueError(f"learning rate must be a positive finite number, got {lr!r}")
        self.weight_decay = as_float(weight_decay, "weight_decay")
        if not 0.0 <= self.weight_decay < math.inf:
            raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")

    def zero_grad(self) -> None:
        """Set every parameter's gradient to 0 before the next backward pass."""
        for p in self.params:
            p.grad = 0.0

    def _checked_grads(self) -> list[float]:
        """The current gradients; a NaN or infinite one raises before anything is changed."""
        grads = [p.grad for p in self.params]
        for i, g in enumerate(grads):
            if not math.isfinite(g):
                raise FloatingPointError(
                    f"gradient of parameter {i} ({self.params[i].label or 'unlabelled'}) is {g}; "
                    "no parameter was updated"
                )
        return grads

    def _check_new_values(self, new_data: list[float], state: str = "") -> None:
        """Refuse a step that would make a parameter, or the optimiser's `state` for one (its
        velocity, its moments), NaN or infinite (called before any change)."""
        for i, value in enumerate(new_data):
            if not math.isfinite(value):
                what = f"parameter {i} ({self.params[i].label or 'unlabelled'})"
                raise FloatingPointError(
                    f"this step would make {f'the {state} of ' if state else ''}{what} {value}; "
                    "no parameter was updated"
                )

    def _commit(self, new_data: list[float], **state: object) -> None:
        """Write a computed step: every parameter's new value and the optimiser's new state
        (attributes named by `state`), all of it or -- if interrupted, e.g. by Ctrl-C -- none.

        The old values are read first, before anything changes; if anything interrupts the
        writes, they are all put back before the interrupt goes on.
        """
        old_data = [p.data for p in self.params]
        old_state = {name: getattr(self, name) for name in state}
        try:
            for name, value in state.items():
                setattr(self, name, value)
            for p, value in zip(self.params, new_data):
                p.data = value
        except BaseException:  # KeyboardInterrupt above all: undo every write, then re-raise
            for name, value in old_state.items():
                setattr(self, name, value)
            for p, value in zip(self.params, old_data):
                p.data = value
            raise

    def step(self) -> None:
        """Update every parameter once from its `.grad` -- all of them, or (on a NaN or infinite
        gradient or result) none of them, raising FloatingPointError."""
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and weight decay (PyTorch's rule).

    g = grad + weight_decay·p;  v = momentum·v + g;  p = p - lr·v   (v = g when momentum = 0)
    """

    def __init__(
        self, params: Iterable[Value], lr: float = 0.01, momentum: float = 0.0,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr, weight_decay)
        self.momentum = as_float(momentum, "momentum")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.velocity = [0.0] * len(self.params)

    def step(self) -> None:
        """One SGD update of every parameter (all or nothing)."""
        grads = self._checked_grads()
        velocity, new_data = [], []  # computed in full first, committed only if all finite
        for i, (p, g) in enumerate(zip(self.params, grads)):
            g += self.weight_decay * p.data
            if self.momentum:
                g = self.momentum * self.velocity[i] + g
            velocity.append(g)
            new_data.append(p.data - self.lr * g)
        self._check_new_values(new_data)
        self._check_new_values(velocity, "velocity")
        if self.momentum:
            self._commit(new_data, velocity=velocity)
        else:
            self._commit(new_data)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015): steps scaled by running estimates of the gradient's moments.

    m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²;  p -= lr · m̂ / (√v̂ + eps),
    with the bias corrections m̂ = m/(1-β1^t), v̂ = v/(1-β2^t).
    """

    def __init__(
        self, params: Iterable[Value], lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8, weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr, weight_decay)
        self.beta1, self.beta2 = (as_float(b, "each of Adam's betas") for b in betas)
        for b in (self.beta1, self.beta2):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Adam betas must be in [0, 1), got {betas!r}")
        self.eps = as_float(eps, "Adam eps")
        if not 0.0 < self.eps < math.inf:  # eps = 0 would divide 0 by 0 for a zero gradient
            raise ValueError(f"Adam eps must be a positive finite number, got {eps!r}")
        self.m = [0.0] * len(self.params)
        self.v = [0.0] * len(self.params)
        self.t = 0

    def step(self) -> None:
        """One Adam update of every parameter (all or nothing)."""
        grads = self._checked_grads()
        t = self.t + 1
        correction1 = 1.0 - self.beta1**t
        correction2 = 1.0 - self.beta2**t
        ms, vs, new_data = [], [], []  # computed in full first, committed only if all finite
        for i, (p, g) in enumerate(zip(self.params, grads)):
            g += self.weight_decay * p.data
            m = self.beta1 * self.m[i] + (1.0 - self.beta1) * g
            v = self.beta2 * self.v[i] + (1.0 - self.beta2) * g * g
            m_hat = m / correction1
            v_hat = v / correction2
            ms.append(m)
            vs.append(v)
            new_data.append(p.data - self.lr * m_hat / (math.sqrt(v_hat) + self.eps))
        self._check_new_values(new_data)
        self._check_new_values(ms, "first moment m")
        self._check_new_values(vs, "second moment v")
        self._commit(new_data, t=t, m=ms, v=vs)
