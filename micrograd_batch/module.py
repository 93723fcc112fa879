"""`Module`, the base of everything with parameters, and `check_values`, the check of every list
of Values the library takes (nn, norm, batch, losses and optim use them)."""

from collections.abc import Sequence
from typing import Self

from .engine import Value


class Module:
    """Anything with parameters; calling it on ONE example's inputs builds that example's graph."""

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        raise NotImplementedError  # subclasses: the output for one example

    def parameters(self) -> list[Value]:
        """The trainable Values of this module, in a fixed order."""
        return []

    @property
    def couples_examples(self) -> bool:
        """True while its output for one example depends on other examples (BatchNorm in training mode)."""
        return False

    def train(self, mode: bool = True) -> Self:
        """Switch to training mode (or eval mode with `mode=False`), as PyTorch; returns the module."""
        return self

    def eval(self) -> Self:
        """Switch to eval mode (a BatchNorm then uses its running statistics); returns the module."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every parameter's `.grad` to 0 (gradients accumulate across backward calls)."""
        for p in self.parameters():
            p.grad = 0.0


def check_values(items: Sequence[object], name: str, item: str = "item", expected: str = "a Value") -> None:
    """A TypeError naming the first of `items` that is not a Value: "SGD: parameter 2 is float, ..."."""
    for i, x in enumerate(items):
        if not isinstance(x, Value):
            raise TypeError(f"{name}: {item} {i} is {type(x).__name__}, expected {expected}")
