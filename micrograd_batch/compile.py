"""A library model and loss written out as straight-line Python: the δ recursion, unrolled.

`compile_loss(model, loss_fn)` reads the model's structure and writes one example's forward pass,
loss and backward pass as Python statements (`.source`), each operation and addition the engine's,
in `backward()`'s order: `.grad(examples)` is `batch_mean([loss_fn(model(x), y) ...]).backward()`
bit for bit. The code is cached per structure; a changed model never runs stale code. Only the
library's MLP (no norm layers), Layer, Neuron and losses are compiled; anything else raises
NotCompilable. See docs/performance.md (the generated code, the numbers, backend="numpy").
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

from ._structure import NotCompilable as NotCompilable  # its public home: micrograd_batch.compile
from ._structure import (LOSSES, _batch_inputs, _check_outputs, _inputs, _inspect, _named, _parameter_values, _state,
                         _target, _unchanged)
from .batch import float_mean
from .engine import Value, stable_sigmoid, stable_softplus
from .losses import logsumexp

if TYPE_CHECKING:
    from .numpy_backend import MatrixLoss

_TERMS_PER_LINE = 32  # a long sum is split into statements: no expression too deep to compile

# Each activation's forward expression and its local derivative (times the upstream gradient),
# exactly as engine.py computes them; "linear" has no node of its own.
_ACTIVATE = {"relu": "0.0 if {z} <= 0.0 else {z}", "tanh": "_tanh({z})", "sigmoid": "_sigmoid({z})"}
_SLOPE = {"relu": "(1.0 if {z} > 0.0 else 0.0 if {z} <= 0.0 else {z})",
          "tanh": "(1.0 - {a} * {a})", "sigmoid": "{a} * (1.0 - {a})"}

Structure = tuple[int, tuple[tuple[str, ...], ...], str]  # inputs, each layer's activations, the loss


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


def _sources(structure: Structure) -> str:
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
    return "\n".join([*run, "", "", *outputs]) + "\n"


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
    _check_outputs(loss, nout)
    source, namespace = _sources(structure), dict(_NAMESPACE)
    exec(compile(source, f"<compiled {loss}>", "exec"), namespace)
    return _Program(source, namespace["run_batch"], namespace["run_outputs"], nin, nout, loss)  # type: ignore[arg-type]


class CompiledLoss:
    """`loss_fn(model(x), y)` for a library model and loss as generated straight-line Python
    (`.source`); each call reads the model's structure again, so a changed model runs new code."""

    def __init__(self, model: Any, loss_fn: Callable[[Any, Any], Value]) -> None:
        self.model, self.loss_fn, self._loss = model, loss_fn, _named(LOSSES, loss_fn, "losses")
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
        """The generated Python: forward, loss and the δ recursion for each example; then the forward alone."""
        return self._current()[0].source

    def _batch(self, program: _Program, examples: Iterable[tuple]) -> tuple[list, list]:
        """Inputs and targets of the examples, last to first, checked as the graph path checks them."""
        examples = list(examples)[::-1]
        return _batch_inputs(examples, program.nin), [_target(program.loss, y, program.nout) for _, y in examples]

    def run(self, examples: Iterable[tuple], params: Sequence[float] | None = None,
            seed: float | None = None) -> tuple[list[float], list[float], list]:
        """(each example's loss, the gradient Σ_i seed·dL_i/dθ in `parameters()` order, each
        example's output as numbers). `params`: numbers to use instead of the parameters'
        values; `seed`: the batch node's local derivative (default 1/m). Touches no Value."""
        program, model_params = self._current()
        values = _parameter_values(params, model_params)
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


@overload
def compile_loss(model: Any, loss_fn: Callable[..., Value], backend: Literal["python"] = "python") -> CompiledLoss: ...
@overload
def compile_loss(model: Any, loss_fn: Callable[..., Value], backend: str) -> CompiledLoss | MatrixLoss: ...
def compile_loss(model: Any, loss_fn: Callable[..., Value], backend: str = "python") -> CompiledLoss | MatrixLoss:
    """`loss_fn(model(x), y)` compiled for a library model (MLP without norm layers, Layer, Neuron) and a library
    loss; NotCompilable, naming what is unsupported, for anything else. `backend="numpy"`: numpy matrix code."""
    if backend == "python":
        return CompiledLoss(model, loss_fn)
    from .numpy_backend import MatrixLoss  # numpy is imported there, and only when asked for (the `fast` extra)
    return MatrixLoss(model, loss_fn, backend)
