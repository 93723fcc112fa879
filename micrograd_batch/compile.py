"""A library model and loss written out as straight-line Python: the δ recursion, unrolled.

`compile_loss(model, loss_fn)` reads the model's structure (layers, neurons, activations) and
writes one example's forward pass, loss and backward pass as Python statements, such as

    g_a1_2 = w2_1_2 * g_z2_1                                    # Σ_k w_k2 δ_k
    g_z1_2 = (1.0 if z1_2 > 0.0 else 0.0 if z1_2 <= 0.0 else z1_2) * g_a1_2   # δ = g'(z) · ...
    g_w1_2_1 += x1 * g_z1_2                                     # a weight's share: δ · a_in

each operation and addition the engine's, in `backward()`'s order: `.grad(examples)` is
`batch_mean([loss_fn(model(x), y) ...]).backward()` bit for bit. Names come from positions, never
labels; the code is cached per structure and a changed model never runs stale code. Only the
library's MLP (no norm layers), Layer, Neuron and losses are compiled; anything else raises
NotCompilable (use the graph path). See docs/performance.md.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

from .batch import as_inputs, float_mean
from .engine import Value, stable_sigmoid, stable_softplus
from .losses import bce_with_logits, hinge, logsumexp, mse, softmax_cross_entropy
from .nn import ACTIVATIONS, MLP, Layer, Neuron

LOSSES: dict[str, Callable[[Any, Any], Value]] = {
    "hinge": hinge, "mse": mse, "bce_with_logits": bce_with_logits, "softmax_cross_entropy": softmax_cross_entropy,
}
"""The losses compile_loss compiles, recognised by identity."""

_TERMS_PER_LINE = 32  # a long sum is split into statements: no expression too deep to compile
_LABELS = {"hinge": (-1, 1), "bce_with_logits": (0, 1)}

# Each activation's forward expression and its local derivative (times the upstream gradient),
# exactly as engine.py computes them; "linear" has no node of its own.
_ACTIVATE = {"relu": "0.0 if {z} <= 0.0 else {z}", "tanh": "_tanh({z})", "sigmoid": "_sigmoid({z})"}
_SLOPE = {"relu": "(1.0 if {z} > 0.0 else 0.0 if {z} <= 0.0 else {z})",
          "tanh": "(1.0 - {a} * {a})", "sigmoid": "{a} * (1.0 - {a})"}

Structure = tuple[int, tuple[tuple[str, ...], ...], str]  # inputs, each layer's activations, the loss


class NotCompilable(Exception):
    """The model or the loss is not one compile_loss compiles; the message names what (use the graph path)."""


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


def _activation(neuron: Neuron) -> str:
    """The name of the library activation the neuron calls, or NotCompilable."""
    for name, function in ACTIVATIONS.items():
        if neuron._act is function:
            return name
    raise NotCompilable(f"a neuron's activation {neuron._act!r:.60} is not one of the library's {sorted(ACTIVATIONS)}")


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
        shape.append(tuple(_activation(n) for n in neurons))
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


# ---- writing the code ------------------------------------------------------------------------

def _sum(name: str, terms: list[str]) -> list[str]:
    """`name = t1 + t2 + ...`, added left to right, split into statements of a few terms."""
    n = _TERMS_PER_LINE
    lines = [f"{name} = {' + '.join(terms[:n])}"]
    lines += [f"{name} = {name} + {' + '.join(terms[k:k + n])}" for k in range(n, len(terms), n)]
    return lines


def _names(structure: Structure) -> tuple[list[list[str]], list[str]]:
    """Each layer's inputs' names (the first layer's are x1, x2, ...; a linear neuron's output is
    its z) and the parameters' names in `parameters()` order."""
    nin, shape, _ = structure
    inputs = [[f"x{i + 1}" for i in range(nin)]]
    params = []
    for n, acts in enumerate(shape, 1):
        for j in range(1, len(acts) + 1):
            params += [f"w{n}_{j}_{i}" for i in range(1, len(inputs[-1]) + 1)] + [f"b{n}_{j}"]
        inputs.append([f"z{n}_{j}" if act == "linear" else f"a{n}_{j}" for j, act in enumerate(acts, 1)])
    return inputs, params


def _forward(structure: Structure, inputs: list[list[str]]) -> list[str]:
    """The model's forward statements: each neuron's z = b + w·a (the engine's order), then its activation."""
    lines = []
    for n, acts in enumerate(structure[1], 1):
        lines.append(f"# layer {n}: z = b + w·a, a = g(z)")
        for j, act in enumerate(acts, 1):
            terms = [f"w{n}_{j}_{i} * {a}" for i, a in enumerate(inputs[n - 1], 1)]
            lines += _sum(f"z{n}_{j}", [f"b{n}_{j}", *terms])
            if act != "linear":
                lines.append(f"a{n}_{j} = " + _ACTIVATE[act].format(z=f"z{n}_{j}"))
    return lines


def _backward(structure: Structure, inputs: list[list[str]]) -> list[str]:
    """The δ recursion, layer by layer from the output, in the order backward() adds things up:
    each consumer of a hidden unit from the last neuron to the first."""
    shape = structure[1]
    lines = []
    for n in range(len(shape), 0, -1):
        lines.append(f"# layer {n}: δ = g'(z) · dL/da; each weight gets δ · (its input), the bias δ")
        for j in range(len(shape[n - 1]), 0, -1):
            a, act = inputs[n][j - 1], shape[n - 1][j - 1]
            if n < len(shape):  # dL/da: the shares its consumers in layer n+1 pass back
                lines += _sum(f"g_{a}", [f"w{n + 1}_{k}_{j} * g_z{n + 1}_{k}" for k in range(len(shape[n]), 0, -1)])
            if act != "linear":
                slope = _SLOPE[act].format(z=f"z{n}_{j}", a=a)
                lines.append(f"g_z{n}_{j} = {slope} * g_{a}")
            lines += [f"g_w{n}_{j}_{i} += {x} * g_z{n}_{j}" for i, x in enumerate(inputs[n - 1], 1)]
            lines.append(f"g_b{n}_{j} += g_z{n}_{j}")
    return lines


def _loss_code(loss: str, out: list[str]) -> tuple[list[str], list[str]]:
    """The loss's forward statements (ending in `loss`) and its backward ones (from g_loss to
    each output's g_), as the library's loss builds and differentiates its nodes."""
    k, o = len(out), out[0]
    if loss == "hinge":  # relu(1 - y·o)
        return ([f"margin = 1.0 - {o} * y", "loss = 0.0 if margin <= 0.0 else margin"],
                ["g_margin = " + _SLOPE["relu"].format(z="margin") + " * g_loss", f"g_{o} = y * -g_margin"])
    if loss == "bce_with_logits":  # softplus(o) - y·o, derivative sigmoid(o) - y
        return [f"loss = _softplus({o}) - y * {o}"], [f"g_{o} = (_sigmoid({o}) - y) * g_loss"]
    if loss == "softmax_cross_entropy":  # logsumexp(o) - o_y; d/do_j = softmax_j - [j = y]
        s = [f"s{j}" for j in range(1, k + 1)]
        return ([f"lse, {', '.join(s)}, = _lse({', '.join(out)})", f"loss = lse - ({', '.join(out)},)[y]"],
                [f"g_{o_j} = {s_j} * g_loss - (g_loss if y == {j} else 0.0)"
                 for j, (o_j, s_j) in reversed(list(enumerate(zip(out, s, strict=True))))])
    # mse: (1/k) Σ_j (o_j - t_j)², each square the engine's x ** 2 (derivative 2x)
    forward = [f"({', '.join(f't{j}' for j in range(1, k + 1))},) = y"]
    forward += [line for j, o_j in enumerate(out, 1) for line in (f"d{j} = {o_j} - t{j}", f"e{j} = _square(d{j})")]
    if k == 1:
        return [*forward, "loss = e1"], [f"g_{o} = 2.0 * d1 * g_loss"]
    forward += _sum("total", [f"e{j}" for j in range(1, k + 1)]) + [f"loss = total / {float(k)!r}"]
    backward = [f"g_total = {1.0 / k!r} * g_loss"]
    return forward, backward + [f"g_{out[j - 1]} = 2.0 * d{j} * g_total" for j in range(k, 0, -1)]


def _describe(structure: Structure) -> str:
    """'MLP 2-16-16-1 (relu, relu, linear), loss hinge' for the source's heading."""
    nin, shape, loss = structure
    acts = ", ".join("/".join(sorted(set(acts))) for acts in shape)
    return f"{'-'.join(map(str, [nin, *map(len, shape)]))} ({acts}), loss {loss}"


def _sources(structure: Structure) -> tuple[str, str]:
    """The generated module: `run_batch` (forward, loss, backward for every example) and
    `run_outputs` (the forward statements alone)."""
    nin, shape, loss = structure
    inputs, params = _names(structure)
    out = inputs[-1]
    x = ", ".join(inputs[0]) + ","
    output = out[0] if len(out) == 1 else f"[{', '.join(out)}]"
    forward = _forward(structure, inputs)
    loss_forward, loss_backward = _loss_code(loss, out)
    unpack = [f"    ({', '.join(params)},) = parameters"]
    run = [
        f"# Generated by micrograd_batch.compile_loss for {_describe(structure)}.",
        "# Names are positions: w2_1_3 is layer 2, neuron 1, weight 3; b2_1 its bias; z2_1 = b + w·a its",
        "# weighted input, a2_1 = g(z2_1) its activation. g_X is dL/dX, so g_z2_1 is the neuron's δ.",
        "# Examples come last to first, as backward() reaches them through the batch-mean node,",
        "# so every gradient is added up in the engine's order; seed is that node's 1/m.",
        "def run_batch(xs, ys, seed, parameters, gradients):",
        *unpack,
        f"    ({', '.join(f'g_{p}' for p in params)},) = gradients",
        "    losses, outputs = [], []",
        f"    for ({x}), y in zip(xs, ys):",
        *("        " + line for line in [*forward, "# the loss", *loss_forward, "losses.append(loss)",
                                        f"outputs.append({output})", "# backward: the δ recursion, unrolled",
                                        "g_loss = seed", *loss_backward, *_backward(structure, inputs)]),
        f"    return losses, outputs, [{', '.join(f'g_{p}' for p in params)}]",
    ]
    outputs = ["def run_outputs(xs, parameters):", *unpack, "    outputs = []", f"    for ({x}) in xs:",
               *("        " + line for line in [*forward, f"outputs.append({output})"]), "    return outputs"]
    return "\n".join(run) + "\n", "\n".join(outputs) + "\n"


def _lse(*xs: float) -> tuple[float, ...]:
    """logsumexp's value and local derivatives (the softmax), by the engine itself."""
    node = logsumexp([Value(x) for x in xs])
    return (node.data, *node._local_grads)


def _square(x: float) -> float:
    """x ** 2 as the engine computes it: +inf where it overflows."""
    try:
        return x ** 2.0
    except OverflowError:
        return math.inf


_NAMESPACE = {"_tanh": math.tanh, "_sigmoid": stable_sigmoid, "_softplus": stable_softplus,
              "_lse": _lse, "_square": _square}


@dataclass(frozen=True)
class _Program:
    """One structure's generated source and its two functions."""
    source: str
    run_batch: Callable[..., tuple[list[float], list[Any], list[float]]]
    run_outputs: Callable[..., list[Any]]
    nin: int
    nout: int
    loss: str


@functools.lru_cache(maxsize=32)
def _program(structure: Structure) -> _Program:
    """The code for `structure`, generated and compiled once (a thread-safe cache)."""
    nin, shape, loss = structure
    nout = len(shape[-1])
    try:
        LOSSES[loss](_dummy(nout), {"mse": [0.0] * nout, "softmax_cross_entropy": 0}.get(loss, 1))
    except (TypeError, ValueError) as error:
        raise NotCompilable(f"{loss} does not take this model's {nout} output(s): {error}") from None
    source, outputs_source = _sources(structure)
    namespace = dict(_NAMESPACE)
    exec(compile(source, f"<compiled {loss}>", "exec"), namespace)
    exec(compile(outputs_source, "<compiled outputs>", "exec"), namespace)
    return _Program(source, namespace["run_batch"], namespace["run_outputs"], nin, nout, loss)  # type: ignore[arg-type]


def _dummy(nout: int) -> Value | list[Value]:
    """A model output of `nout` Values, shaped as the library's models return it."""
    return Value(0.0) if nout == 1 else [Value(0.0) for _ in range(nout)]


def _inputs(x: object, nin: int) -> Sequence[float]:
    """One example's inputs as floats, refused exactly where the graph path refuses them."""
    if type(x) in (list, tuple) and len(x) == nin and set(map(type, x)) == {float}:  # type: ignore[arg-type, call-overload]
        return x  # type: ignore[return-value]
    values = as_inputs(x, nin)  # the graph path's checks and errors (a set, a str, a wrong length)
    if any(isinstance(v, Value) for v in x):  # type: ignore[attr-defined]
        raise TypeError("a compiled loss takes numbers as inputs, not Values (their gradients would be lost)")
    return [v.data for v in values]


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


class CompiledLoss:
    """`loss_fn(model(x), y)` for a library model and loss as generated straight-line Python.

    `.grad(examples)` adds into `.grad` exactly what `batch_mean([...]).backward()` adds;
    `.run(...)` computes losses, gradient and outputs as plain numbers; `.outputs(examples)` runs
    the model alone; `.source` is the readable code. Each call reads the model's structure
    again, so a changed model runs new code (or raises NotCompilable), never stale code.
    """

    def __init__(self, model: Any, loss_fn: Callable[[Any, Any], Value]) -> None:
        name = next((n for n, f in LOSSES.items() if f is loss_fn), None)
        if name is None:
            raise NotCompilable(f"compile_loss compiles the library's losses ({', '.join(LOSSES)}), not "
                                f"{getattr(loss_fn, '__name__', type(loss_fn).__name__)!r}")
        self.model, self.loss_fn, self._loss = model, loss_fn, name
        self._checked: tuple[list[Any], Any, _Program, list[Value]] | None = None
        self._current()

    def _current(self) -> tuple[_Program, list[Value]]:
        """The code for the model as it is now, and its parameters: inspected anew unless every
        module has the class and attributes it had when last inspected (a few µs)."""
        checked = self._checked
        if checked is not None and _unchanged(checked[0], checked[1]):
            return checked[2], checked[3]
        (nin, shape), params, modules = _inspect(self.model)
        program = _program((nin, shape, self._loss))
        self._checked = (modules, _state(modules), program, params)
        return program, params

    def __reduce__(self) -> tuple[type, tuple[Any, Any]]:
        """Pickled as its model and loss (a worker process compiles again, from its cache)."""
        return CompiledLoss, (self.model, self.loss_fn)

    @property
    def source(self) -> str:
        """The generated Python: forward, loss and the δ recursion for one example, in a loop."""
        return self._current()[0].source

    def _batch(self, program: _Program, examples: Iterable[tuple]) -> tuple[list, list]:
        """Inputs and targets of the examples, last to first, checked as the graph path checks them."""
        examples = list(examples)
        if not examples:
            raise ValueError("an empty batch: there must be at least one example")
        xs = [_inputs(x, program.nin) for x, _ in reversed(examples)]
        ys = [_target(program.loss, y, program.nout) for _, y in reversed(examples)]
        return xs, ys

    def run(self, examples: Iterable[tuple], params: Sequence[float] | None = None,
            seed: float | None = None) -> tuple[list[float], list[float], list]:
        """(each example's loss, the gradient Σ_i seed·dL_i/dθ in `parameters()` order, each
        example's output as numbers). `params`: numbers to use instead of the parameters'
        values; `seed`: the batch node's local derivative (default 1/m). Touches no Value."""
        program, model_params = self._current()
        values = [p.data for p in model_params] if params is None else [float(v) for v in params]
        if len(values) != len(model_params):
            raise ValueError(f"run: {len(values)} parameter values for a model of {len(model_params)}")
        xs, ys = self._batch(program, examples)
        seed = 1.0 / len(xs) if seed is None else float(seed)
        losses, outputs, grads = program.run_batch(xs, ys, seed, values, [0.0] * len(values))
        return losses[::-1], grads, outputs[::-1]

    def grad(self, examples: Iterable[tuple]) -> float:
        """The batch's mean loss; adds its gradient into every parameter's `.grad`, bit for bit
        as `batch_mean([loss_fn(model(x), y) for x, y in examples]).backward()` does."""
        program, params = self._current()
        xs, ys = self._batch(program, examples)
        losses, _, grads = program.run_batch(xs, ys, 1.0 / len(xs), [p.data for p in params],
                                             [p.grad for p in params])
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        return float_mean(losses[::-1])

    def outputs(self, examples: Iterable[tuple]) -> list:
        """Each example's model output as numbers (a float, or a list for several outputs),
        exactly `model(x)`'s, built without a graph. The targets are not read."""
        program, params = self._current()
        return program.run_outputs([_inputs(x, program.nin) for x, _ in examples], [p.data for p in params])


def compile_loss(model: Any, loss_fn: Callable[[Any, Any], Value]) -> CompiledLoss:
    """`loss_fn(model(x), y)` compiled for a library model (MLP without norm layers, Layer,
    Neuron) and a library loss; NotCompilable, naming what is unsupported, for anything else."""
    return CompiledLoss(model, loss_fn)
