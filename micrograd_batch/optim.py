"""Optimisers: turn the parameters' averaged gradients (`.grad`) into a step.

After `batch_mean(losses).backward()`, each parameter's `.grad` is the mean of its per-example
gradients; `step()` moves `.data` against it, `zero_grad()` clears it for the next batch.
"""

from __future__ import annotations

import math
from typing import Iterable

from .engine import Value, _as_float


class Optimizer:
    """Holds a list of parameters; subclasses define `step()`."""

    def __init__(self, params: Iterable[Value], lr: float) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("the optimiser got no parameters to update")
        for i, p in enumerate(self.params):
            if not isinstance(p, Value):
                raise TypeError(f"parameter {i} is {type(p).__name__}, expected a Value")
        self.lr = _as_float(lr)
        if not self.lr > 0.0:
            raise ValueError(f"learning rate must be positive, got {lr!r}")

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

    def step(self) -> None:
        """Update every parameter once from its `.grad`."""
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and weight decay (PyTorch's rule).

    g = grad + weight_decay·p;  v = momentum·v + g;  p = p - lr·v   (v = g when momentum = 0)
    """

    def __init__(
        self, params: Iterable[Value], lr: float = 0.01, momentum: float = 0.0,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        self.momentum = _as_float(momentum)
        self.weight_decay = _as_float(weight_decay)
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if self.weight_decay < 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.velocity = [0.0] * len(self.params)

    def step(self) -> None:
        grads = self._checked_grads()
        for i, (p, g) in enumerate(zip(self.params, grads)):
            g += self.weight_decay * p.data
            if self.momentum:
                g = self.velocity[i] = self.momentum * self.velocity[i] + g
            p.data -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015): steps scaled by running estimates of the gradient's moments.

    m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²;  p -= lr · m̂ / (√v̂ + eps),
    with the bias corrections m̂ = m/(1-β1^t), v̂ = v/(1-β2^t).
    """

    def __init__(
        self, params: Iterable[Value], lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8, weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr)
        self.beta1, self.beta2 = (_as_float(b) for b in betas)
        for b in (self.beta1, self.beta2):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Adam betas must be in [0, 1), got {betas!r}")
        self.eps = _as_float(eps)
        self.weight_decay = _as_float(weight_decay)
        self.m = [0.0] * len(self.params)
        self.v = [0.0] * len(self.params)
        self.t = 0

    def step(self) -> None:
        grads = self._checked_grads()
        self.t += 1
        correction1 = 1.0 - self.beta1**self.t
        correction2 = 1.0 - self.beta2**self.t
        for i, (p, g) in enumerate(zip(self.params, grads)):
            g += self.weight_decay * p.data
            self.m[i] = self.beta1 * self.m[i] + (1.0 - self.beta1) * g
            self.v[i] = self.beta2 * self.v[i] + (1.0 - self.beta2) * g * g
            m_hat = self.m[i] / correction1
            v_hat = self.v[i] / correction2
            p.data -= self.lr * m_hat / (math.sqrt(v_hat) + self.eps)
