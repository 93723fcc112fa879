"""Neural-network building blocks made of Values: `Module`, `Neuron`, `Layer`, `MLP`.

Drop-in compatible with micrograd's `nn.py` where they overlap: `MLP(2, [16, 16, 1])` has ReLU
hidden layers and a linear output, weights start uniform in [-1, 1) drawn from Python's
`random` module (so `random.seed(...)` gives micrograd's weights) and biases at 0, and
`parameters()` lists, layer by layer and neuron by neuron, each neuron's weights then its bias.
Calling a model on ONE example builds that example's graph; a batch is a list of such calls.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Set
from numbers import Integral
from typing import Callable, Sequence, Union

from ._checks import as_float, as_seed, is_whole_number
from .engine import Value, weighted_sum

Activation = Callable[[Value], Value]


def _identity(z: Value) -> Value:
    """The 'linear' activation: z itself (a named function, so models can be pickled)."""
    return z


ACTIVATIONS: dict[str, Activation] = {
    "relu": Value.relu,
    "tanh": Value.tanh,
    "sigmoid": Value.sigmoid,
    "linear": _identity,
}


def _activation_named(name: str) -> Activation:
    """The activation function called `name`, or a ValueError listing the known names."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def _as_inputs(x: Sequence[Union[Value, float]], expected: int) -> list[Value]:
    """One example's inputs as Values (numbers become leaves labelled x1, x2, ...), checked."""
    if isinstance(x, (str, bytes, Mapping, Set)) or not hasattr(x, "__len__"):
        raise TypeError(f"a model takes a list of {expected} numbers, got {type(x).__name__}")
    if len(x) != expected:
        raise ValueError(f"expected {expected} inputs, got {len(x)}")
    return [xi if isinstance(xi, Value) else Value(as_float(xi), f"x{i + 1}") for i, xi in enumerate(x)]


def _size(n: object, what: str) -> int:
    """A layer width as an int (numpy integers too), or a ValueError naming what it counts."""
    if not is_whole_number(n):
        raise ValueError(f"a layer needs a positive whole number of {what}, got {n!r:.40}")
    return int(n)  # type: ignore[call-overload]


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


class Neuron(Module):
    """act(w·x + b): n weights, a bias, and an activation ('relu', 'tanh', 'sigmoid', 'linear').

    `nonlin=False` is micrograd's spelling of `activation='linear'`. `fused=True` (default)
    builds w·x + b as one node with 2n+1 parents (`engine.weighted_sum`); `fused=False` builds
    micrograd's chain of `*` and `+` nodes. Both give exactly the same numbers.
    """

    def __init__(
        self,
        nin: int,
        nonlin: bool = True,
        activation: str = "relu",
        rng: random.Random | None = None,
        fused: bool = True,
        name: str = "n",
    ) -> None:
        if not is_whole_number(nin):
            raise ValueError(f"a neuron needs a positive whole number of inputs, got {nin!r}")
        draw = (rng or random).uniform
        self.w = [Value(draw(-1, 1), f"{name}.w{i + 1}") for i in range(int(nin))]
        self.b = Value(0.0, f"{name}.b")
        self.activation = activation if nonlin else "linear"
        self._act = _activation_named(self.activation)
        self.fused = fused

    def __call__(self, x: Sequence[Union[Value, float]]) -> Value:
        return self.forward(_as_inputs(x, len(self.w)))

    def forward(self, inputs: Sequence[Value]) -> Value:
        """act(w·x + b) for inputs already checked and made Values (the fast inner path)."""
        if self.fused:
            z = weighted_sum(self.w, inputs, self.b, check=False)
        else:
            z = self.b
            for wi, xi in zip(self.w, inputs):
                z = z + wi * xi  # micrograd's chain: one * and one + node per input
        return self._act(z)

    def parameters(self) -> list[Value]:
        """The weights, then the bias."""
        return self.w + [self.b]

    def __repr__(self) -> str:
        return f"{self.activation.capitalize()}Neuron({len(self.w)})"


class Layer(Module):
    """`nout` neurons that all read the same inputs; returns one Value per neuron."""

    def __init__(self, nin: int, nout: int, name: str = "L", **kwargs: object) -> None:
        if not is_whole_number(nout):
            raise ValueError(f"a layer needs a positive whole number of neurons, got {nout!r}")
        self.neurons = [Neuron(nin, name=f"{name}.n{j + 1}", **kwargs) for j in range(int(nout))]  # type: ignore[arg-type]

    def __call__(self, x: Sequence[Union[Value, float]]) -> Union[Value, list[Value]]:
        out = self.forward(_as_inputs(x, len(self.neurons[0].w)))
        return out[0] if len(out) == 1 else out

    def forward(self, inputs: Sequence[Value]) -> list[Value]:
        """Every neuron's output for inputs already checked and made Values."""
        return [n.forward(inputs) for n in self.neurons]

    def parameters(self) -> list[Value]:
        """Each neuron's parameters, neuron by neuron."""
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """A multi-layer perceptron: `MLP(nin, [h1, h2, ..., nout])`.

    Hidden layers use `activation` (default ReLU), the last layer `output_activation`
    (default linear). `seed` makes the initial weights reproducible without touching the
    global `random` state; without it they come from `random`, as in micrograd.
    Calling it on one example (a list of `nin` numbers) returns a Value, or a list of Values
    when there are several outputs.
    """

    def __init__(
        self,
        nin: int,
        nouts: Sequence[int],
        activation: str = "relu",
        output_activation: str = "linear",
        seed: int | None = None,
        fused: bool = True,
    ) -> None:
        if isinstance(nouts, (Integral, str, bytes, Mapping, Set)) or not nouts:
            raise ValueError(f"nouts must be a non-empty list of layer sizes, got {nouts!r:.60}")
        _activation_named(activation)
        _activation_named(output_activation)
        rng = random.Random(as_seed(seed)) if seed is not None else None
        sizes = [_size(nin, "inputs"), *(_size(n, "neurons") for n in nouts)]
        self.nin = sizes[0]
        self.activation = activation
        self.output_activation = output_activation
        self.layers = [
            Layer(
                sizes[i],
                sizes[i + 1],
                name=f"L{i + 1}",
                activation=activation if i < len(nouts) - 1 else output_activation,
                rng=rng,
                fused=fused,
            )
            for i in range(len(nouts))
        ]

    def __call__(self, x: Sequence[Union[Value, float]]) -> Union[Value, list[Value]]:
        out = _as_inputs(x, self.nin)
        for layer in self.layers:
            out = layer.forward(out)
        return out[0] if len(out) == 1 else out

    @property
    def sizes(self) -> list[int]:
        """Layer widths, inputs first: [nin, h1, ..., nout]."""
        return [self.nin, *(len(layer.neurons) for layer in self.layers)]

    def parameters(self) -> list[Value]:
        """Each layer's parameters, layer by layer (micrograd's order)."""
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"
