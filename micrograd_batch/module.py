"""`Module`: the base of everything with parameters (neurons, layers, MLPs, normalisation layers).

It lives on its own so that `nn.py` (which uses the normalisation layers) and `norm.py` (whose
layers are Modules) both build on it and neither imports the other in a circle.
"""

from __future__ import annotations

from typing import Sequence, Union

from .engine import Value


class Module:
    """Anything with parameters: lists them, zeroes their gradients, and maps one example's
    inputs to its output (subclasses define `__call__`)."""

    def __call__(self, x: Sequence[Union[Value, float]]) -> Union[Value, list[Value]]:
        """The output for ONE example: builds that example's graph."""
        raise NotImplementedError

    def parameters(self) -> list[Value]:
        """The trainable Values of this module, in a fixed order."""
        return []

    def zero_grad(self) -> None:
        """Set every parameter's `.grad` to 0 (gradients accumulate across backward calls)."""
        for p in self.parameters():
            p.grad = 0.0
