"""What compile_loss and the numpy backend accept: a library model's structure, a library loss, and
examples refused exactly where the graph path refuses them (shared by compile.py and numpy_backend.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Real
from typing import Any

from .batch import as_inputs
from .engine import Value
from .losses import bce_with_logits, hinge, mse, softmax_cross_entropy
from .nn import ACTIVATIONS, MLP, Layer, Neuron

LOSSES: dict[str, Callable[[Any, Any], Value]] = {
    "hinge": hinge, "mse": mse, "bce_with_logits": bce_with_logits, "softmax_cross_entropy": softmax_cross_entropy,
}
"""The losses compile_loss compiles, recognised by identity."""

_LABELS = {"hinge": (-1, 1), "bce_with_logits": (0, 1)}


class NotCompilable(Exception):
    """The model or the loss is not one compile_loss compiles; the message names what (use the graph path)."""


def _named(table: dict[str, Any], function: object, kind: str) -> str:
    """The name under which `table` holds `function` (by identity), or NotCompilable naming it."""
    name = next((n for n, f in table.items() if f is function), None)
    if name is None:
        raise NotCompilable(f"compile_loss compiles the library's {kind} ({', '.join(table)}), not "
                            f"{getattr(function, '__name__', type(function).__name__)!r:.60}")
    return name


def _library_attributes() -> dict[type, frozenset[str]]:
    """The instance attributes of the library's MLP, Layer and Neuron (an instance's own `forward`: not)."""
    model = MLP(1, [1, 1], seed=0)
    return {type(m): frozenset(vars(m)) for m in (model, model.layers[0], model.layers[0].neurons[0])}


_ATTRIBUTES = _library_attributes()


def _check_module(module: object, kind: type) -> None:
    """NotCompilable unless `module` is exactly a library `kind` with the library's attributes."""
    if type(module) is not kind:
        raise NotCompilable(f"compile_loss compiles the library's MLP, Layer and Neuron, not "
                            f"{type(module).__name__} (where a {kind.__name__} was expected)")
    extra = set(vars(module)) - _ATTRIBUTES[kind]
    if extra:
        raise NotCompilable(f"a {kind.__name__} with attributes of its own ({', '.join(sorted(extra))}) "
                            "may compute something else than the library's")


def _layers(model: object) -> tuple[list[list[Neuron]], int | None, list[object]]:
    """The model's neurons layer by layer, its declared number of inputs (None: the first
    neuron's) and the modules that hold the neurons, or NotCompilable."""
    if type(model) is Neuron:
        return [[model]], None, []
    if type(model) is Layer:
        _check_module(model, Layer)
        return [model.neurons], None, [model]
    _check_module(model, MLP)
    if model.norms:  # type: ignore[attr-defined]
        raise NotCompilable(f"norm layers (norm={model.norm!r}) are not compiled")  # type: ignore[attr-defined]
    for layer in model.layers:  # type: ignore[attr-defined]
        _check_module(layer, Layer)
    return [layer.neurons for layer in model.layers], model.nin, [model, *model.layers]  # type: ignore[attr-defined]


def _inspect(model: object) -> tuple[tuple[int, tuple[tuple[str, ...], ...]], list[Value], list[object]]:
    """The model's structure (its number of inputs and each layer's activations, neuron by
    neuron), its parameters in `parameters()` order and all its modules; NotCompilable naming
    what is unsupported."""
    layers, width, modules = _layers(model)
    params: list[Value] = []
    shape = []
    nin = width
    for neurons in layers:
        if type(neurons) is not list or not neurons:
            raise NotCompilable("a layer's neurons must be a non-empty list")
        for neuron in neurons:
            _check_module(neuron, Neuron)
            modules.append(neuron)
            if type(neuron.w) is not list or width not in (None, len(neuron.w)):
                raise NotCompilable(f"a neuron's weights must be a list of one per input ({width})")
            width = len(neuron.w)
            params += neuron.w
            params.append(neuron.b)
        nin = nin if nin is not None else len(neurons[0].w)
        shape.append(tuple(_named(ACTIVATIONS, n._act, "activations") for n in neurons))
        width = len(neurons)
    if set(map(type, params)) != {Value}:
        raise NotCompilable("every weight and bias must be a Value")
    if len(set(map(id, params))) != len(params):
        raise NotCompilable("a parameter appears twice in the model (tied weights)")
    assert nin is not None
    return (nin, tuple(shape)), params, modules


def _state(modules: list[Any]) -> tuple[list[type], list[dict[str, object]]]:
    """Each module's class and attributes (lists copied): all its forward pass reads but numbers."""
    return list(map(type, modules)), [{k: list(v) if type(v) is list else v for k, v in vars(m).items()}
                                      for m in modules]


def _unchanged(modules: list[Any], state: tuple[list[type], list[dict[str, object]]]) -> bool:
    """Whether every module has the class and attributes of `state` (Values, modules by identity)."""
    return list(map(type, modules)) == state[0] and list(map(vars, modules)) == state[1]


def _dummy(nout: int) -> Value | list[Value]:
    """A model output of `nout` Values, shaped as the library's models return it."""
    return Value(0.0) if nout == 1 else [Value(0.0) for _ in range(nout)]


def _check_outputs(loss: str, nout: int) -> None:
    """NotCompilable unless the library loss `loss` takes a model output of `nout` numbers."""
    try:
        LOSSES[loss](_dummy(nout), {"mse": [0.0] * nout, "softmax_cross_entropy": 0}.get(loss, 1))
    except (TypeError, ValueError) as error:
        raise NotCompilable(f"{loss} does not take this model's {nout} output(s): {error}") from None


def _inputs(x: object, nin: int) -> Sequence[float]:
    """One example's inputs as floats, refused exactly where the graph path refuses them."""
    if type(x) in (list, tuple) and len(x) == nin and set(map(type, x)) == {float}:  # type: ignore[arg-type, call-overload]
        return x  # type: ignore[return-value]
    values = as_inputs(x, nin)  # the graph path's checks and errors (a set, a str, a wrong length)
    if any(isinstance(v, Value) for v in x):  # type: ignore[attr-defined]
        raise TypeError("a compiled loss takes numbers as inputs, not Values (their gradients would be lost)")
    return [v.data for v in values]


def _batch_inputs(examples: Sequence[tuple], nin: int) -> list[Sequence[float]]:
    """The examples' inputs as floats (see `_inputs`); a ValueError for an empty batch."""
    if not examples:
        raise ValueError("an empty batch: there must be at least one example (x, y)")
    return [_inputs(x, nin) for x, _ in examples]


def _parameter_values(params: Sequence[float] | None, model_params: list[Value]) -> list[float]:
    """`params` as floats (default: the model's values), one per parameter, or a ValueError."""
    values = [p.data for p in model_params] if params is None else [float(v) for v in params]
    if len(values) != len(model_params):
        raise ValueError(f"params must be one number per parameter: {len(values)} parameter values for a model "
                         f"of {len(model_params)}")
    return values


def _target(loss: str, y: Any, nout: int) -> Any:
    """y as the generated code reads it (a float, a class index, or for mse a tuple of floats),
    refused with the loss's own error wherever the loss refuses it."""
    kind = type(y)
    if loss == "softmax_cross_entropy" and kind is int and 0 <= y < nout:
        return y
    if loss == "mse" and kind is float and nout == 1:
        return (y,)
    if loss in _LABELS and kind in (int, float) and y in _LABELS[loss]:
        return float(y)
    LOSSES[loss](_dummy(nout), y)  # the library's error for a target it refuses
    if loss == "softmax_cross_entropy":
        return int(y)
    if loss == "mse":
        return tuple(float(t) for t in ([y] if isinstance(y, Real) else y))
    return float(y)
