"""`Module`: the base of everything with parameters (its own file: nn.py and norm.py both use it)."""

from collections.abc import Sequence

from .engine import Value


class Module:
    """Anything with parameters; calling it on ONE example's inputs builds that example's graph."""

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        raise NotImplementedError  # subclasses: the output for one example

    def parameters(self) -> list[Value]:
        """The trainable Values of this module, in a fixed order."""
        return []

    def zero_grad(self) -> None:
        """Set every parameter's `.grad` to 0 (gradients accumulate across backward calls)."""
        for p in self.parameters():
            p.grad = 0.0
