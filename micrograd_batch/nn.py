"""Neural-network building blocks made of Values: `Neuron`, `Layer`, `MLP`, drop-in compatible
with micrograd's `nn.py` where they overlap: same layers, weights, order of `parameters()`
(docs/api.md)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from contextlib import contextmanager
from itertools import zip_longest
from numbers import Integral

from ._checks import as_seed, is_whole_number
from .batch import as_inputs
from .engine import Op, Value
from .module import Module, check_values
from .norm import BatchNorm, LayerNorm

Activation = Callable[[Value], Value]


def weighted_sum(weights: Sequence[Value], inputs: Sequence[Value], bias: Value, *, check: bool = True) -> Value:
    """w·x + b as ONE node with parents (*w, *x, b), summed in the order of `b + w1*x1 + ...`:
    d/dw_i = x_i, d/dx_i = w_i, d/db = 1 (`check=False`: the caller made the Values itself)."""
    if check:
        weights, inputs = list(weights), list(inputs)
        check_values([*weights, *inputs, bias], "weighted_sum")
        if len(weights) != len(inputs):
            raise ValueError(f"weighted_sum: {len(weights)} weights but {len(inputs)} inputs")
    w_data, x_data = [w.data for w in weights], [x.data for x in inputs]
    total = bias.data
    for w, x in zip(w_data, x_data, strict=True):
        total += w * x
    return Value(total, "", (*weights, *inputs, bias), (*x_data, *w_data, 1.0), Op.WEIGHTED_SUM)


def _identity(z: Value) -> Value:
    """The 'linear' activation: z itself (a named function, so models can be pickled)."""
    return z


ACTIVATIONS: dict[str, Activation] = {"relu": Value.relu, "tanh": Value.tanh, "sigmoid": Value.sigmoid,
                                      "linear": _identity}


def _activation_named(name: str) -> Activation:
    """The activation function called `name`, or a ValueError listing the known names."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def _size(n: object, what: str) -> int:
    """A layer width as an int (numpy integers too), or a ValueError naming what it counts."""
    if not is_whole_number(n):
        raise ValueError(f"the number of {what} must be a positive whole number, got {n!r:.40}")
    return int(n)  # type: ignore[call-overload]


class Neuron(Module):
    """act(w·x + b), act 'relu', 'tanh', 'sigmoid' or 'linear' (`nonlin=False`, as in micrograd); w·x + b
    is one `weighted_sum` node (`fused`) or micrograd's chain of * and + nodes: the same numbers."""

    def __init__(self, nin: int, nonlin: bool = True, activation: str = "relu", rng: random.Random | None = None,
                 fused: bool = True, name: str = "n") -> None:
        draw = (rng or random).uniform
        self.w = [Value(draw(-1, 1), f"{name}.w{i + 1}") for i in range(_size(nin, "inputs"))]
        self.b = Value(0.0, f"{name}.b")
        self.activation = activation if nonlin else "linear"
        self._act = _activation_named(self.activation)
        self.fused = fused

    def __call__(self, x: Sequence[Value | float]) -> Value:
        return self.forward(as_inputs(x, len(self.w)))

    def forward(self, inputs: Sequence[Value]) -> Value:
        """act(w·x + b) for inputs already checked and made Values (the fast inner path)."""
        return self._act(self.pre_activation(inputs))

    def pre_activation(self, inputs: Sequence[Value]) -> Value:
        """z = w·x + b, before the activation (a normalisation layer goes in between)."""
        if self.fused:
            return weighted_sum(self.w, inputs, self.b, check=False)
        z = self.b
        for wi, xi in zip(self.w, inputs, strict=True):
            z = z + wi * xi  # micrograd's chain: one * and one + node per input
        return z

    def parameters(self) -> list[Value]:
        """The weights, then the bias."""
        return self.w + [self.b]

    def __repr__(self) -> str:
        return f"{self.activation.capitalize()}Neuron({len(self.w)})"


class Layer(Module):
    """`nout` neurons that all read the same inputs; returns one Value per neuron."""

    def __init__(self, nin: int, nout: int, name: str = "L", **kwargs: object) -> None:
        self.neurons = [Neuron(nin, name=f"{name}.n{j + 1}", **kwargs)  # type: ignore[arg-type]
                        for j in range(_size(nout, "neurons"))]

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        out = self.forward(as_inputs(x, len(self.neurons[0].w)))
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
    """`MLP(nin, [h1, ..., nout])`: hidden layers with `activation`, the last with `output_activation`;
    `seed` draws the weights from its own `random.Random`; `norm="batch"` or `"layer"` puts a norm
    before each hidden activation (then `forward_batch(xs)`, `train()`, `eval()`; docs/api.md)."""

    def __init__(self, nin: int, nouts: Sequence[int], activation: str = "relu", output_activation: str = "linear",
                 seed: int | None = None, fused: bool = True, norm: str | None = None) -> None:
        if isinstance(nouts, (Integral, str, bytes, Mapping, Set)) or not nouts:
            raise ValueError(f"nouts must be a non-empty list of layer sizes, got {nouts!r:.60}")
        _activation_named(activation)
        _activation_named(output_activation)
        sizes = [_size(nin, "inputs"), *(_size(n, "neurons") for n in nouts)]
        kinds: dict[str, type[BatchNorm | LayerNorm]] = {"batch": BatchNorm, "layer": LayerNorm}
        if norm is not None and norm not in kinds:  # checked before any weight is drawn
            raise ValueError(f"unknown norm {norm!r}; choose one of {list(kinds)} or None")
        self.norm, self.norms = norm, [kinds[norm](width, name=f"{norm[0]}n{i + 1}")
                                       for i, width in enumerate(sizes[1:-1])] if norm else []
        rng = random.Random(as_seed(seed)) if seed is not None else None
        self.sizes, self.nin = sizes, sizes[0]  # layer widths, inputs first: [nin, h1, ..., nout]
        self.activation, self.output_activation = activation, output_activation
        self.layers = [Layer(sizes[i], sizes[i + 1], name=f"L{i + 1}", rng=rng, fused=fused,
                             activation=activation if i < len(nouts) - 1 else output_activation)
                       for i in range(len(nouts))]

    def __call__(self, x: Sequence[Value | float]) -> Value | list[Value]:
        if self.norms:
            if self.couples_examples:
                raise ValueError("batch norm in training mode normalises each feature over the whole batch: "
                                 "pass it, model.forward_batch([x1, x2, ...]), or call model.eval() first")
            return self.forward_batch([x])[0]
        out = as_inputs(x, self.nin)
        for layer in self.layers:
            out = layer.forward(out)
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        """Layer by layer (micrograd's order), each hidden layer's followed by its norm's γs and βs."""
        modules = [m for pair in zip_longest(self.layers, self.norms) for m in pair if m is not None]
        return [p for m in modules for p in m.parameters()]

    @property
    def couples_examples(self) -> bool:
        """True with a BatchNorm in training mode: the model must see the whole batch (`forward_batch`)."""
        return any(n.couples_examples for n in self.norms)

    def train(self, mode: bool = True) -> MLP:
        """Put every norm in training mode (or eval mode with `mode=False`); returns the model."""
        for n in self.norms:
            n.train(mode)
        return self

    @contextmanager
    def evaluating(self) -> Iterator[MLP]:
        """`with model.evaluating():` eval mode inside the block, each norm's mode restored after."""
        modes = [getattr(n, "training", False) for n in self.norms]
        try:
            yield self.eval()
        finally:
            for n, mode in zip(self.norms, modes, strict=True):
                n.train(mode)

    def forward_batch(self, xs: Sequence[Sequence[Value | float]]) -> list[Value | list[Value]]:
        """The batch's outputs, layer by layer over all its examples (a BatchNorm sees the batch)."""
        if isinstance(xs, (str, bytes, Value)) or not hasattr(xs, "__len__") or not len(xs):
            raise ValueError(f"forward_batch takes a non-empty list of examples, got {xs!r:.60}")
        rows: list[list[Value]] = []
        for i, x in enumerate(xs):
            try:
                rows.append(as_inputs(x, self.nin))
            except (TypeError, ValueError) as error:  # the error names the example
                raise type(error)(f"example {i + 1}: {error}") from None
        for layer, norm in zip_longest(self.layers, self.norms):
            if norm is None:
                rows = [layer.forward(row) for row in rows]
            else:
                pre = [[n.pre_activation(row) for n in layer.neurons] for row in rows]
                rows = [[layer.neurons[0]._act(z) for z in row] for row in norm.normalise_batch(pre)]
        return [row[0] if len(row) == 1 else row for row in rows]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"

