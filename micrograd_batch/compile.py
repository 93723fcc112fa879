"""One example's graph traced once, turned into straight-line Python for its forward and backward.

Every example of a batch builds a graph of the same shape; only the numbers differ. So
`compile_loss(model, loss_fn)` builds ONE example's graph with the real engine, and writes it out
as Python source: one statement per node for the forward pass, then the backward pass -- the
chain rule, each node's gradient the sum of `local_derivative * g_consumer` -- in exactly the
order `backward()` visits the nodes. That backward part *is* the δ recursion, unrolled:

    g_L1_n1_a = L2_n2_w1 * g_L2_n2_z + L2_n1_w1 * g_L2_n1_z           # Σ_j w_j1 δ_j
    g_L1_n1_z = (g_L1_n1_a if L1_n1_z > 0.0 else 0.0 * g_L1_n1_a)     # times ReLU'(z): δ
    g_L1_n1_w1 += x1 * g_L1_n1_z                                      # a weight's share: δ·a_in

The source is `exec`-ed once and then run for every example of every batch, with the
parameters' current values read on each call. `.grad(examples)` gives exactly what
`batch_mean([loss_fn(model(x), y) for x, y in examples]).backward()` gives, bit for bit: the
same operations in the same order, the mean loss from the same `math.fsum`-based mean.
`.outputs(examples)` runs the model's forward statements alone: each example's output, exactly
`model(x)`'s numbers, without a graph (what `fit` measures its accuracy with).

Never a silently wrong gradient: a graph traced once is only right if its structure does not
depend on the numbers. So

  * while tracing, every read of `Value.data` from outside the library is caught: that is
    how a Python `if` on a value, or a value smuggled out as a plain number, shows itself;
  * every target y gets its own traced graph (targets enter a loss as constants or as the
    choice of an output), and each is traced twice, and on a second example, and compared;
  * every call re-traces one of its examples with the real engine and checks its structure,
    its loss and its output against the compiled code -- except for a library model with a
    library loss (`known_stable`, what `fit` compiles) while every module of it keeps the
    attributes it was compiled with (`_ModelState`: the same parameter Values, activations,
    layers): its graph is then the compiled one by construction, so a re-trace could find
    nothing. At the first change the re-trace is back, on that call and every later one.

Whatever fails a check runs on the graph path instead (or raises `NotCompilable` with
`strict=True`). ReLU, abs and hinge are no problem: their local derivatives are expressions
such as `(1.0 if z > 0.0 else 0.0)`. Operations whose formulas are less trivial (exp, log,
sigmoid, powers, logsumexp, the fused cross-entropy) are evaluated by the engine itself on a
fresh Value, so their values, errors and NaNs are the engine's own.
"""

from __future__ import annotations

import keyword
import math
import re
import sys
import threading
import types
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Optional, Sequence, Union

from ._checks import as_float, check_model_and_loss
from .batch import batch_mean, float_mean, per_example_grads
from .engine import Op, Value, gc_paused, logsumexp, topological_order
from .losses import LossFn, bce_with_logits, hinge, l2_penalty, mse, softmax_cross_entropy
from .nn import MLP, Layer, Neuron, Scores


MAX_TARGETS = 16  # distinct targets compiled per loss; beyond that, the graph path
_LIBRARY_MODULES = {f"{__package__}.{name}" for name in ("engine", "losses", "batch", "nn", "compile")}
_TRACE_LOCK = threading.RLock()  # one trace at a time patches the Value class


class NotCompilable(Exception):
    """The model and loss cannot be compiled safely (the message says why); use the graph path."""


class _Changed(NotCompilable):
    """A per-call check found a graph unlike the compiled one: worth a warning."""


# ---- tracing one example with the real engine ---------------------------------------------

@dataclass
class _Trace:
    """One example's graph as the engine built it, and what tracing saw on the way."""

    root: Value  # the example's loss L_i
    outputs: list[Value]  # the model's output(s)
    several_outputs: bool  # the model returned a list
    inputs: list[Value]  # the leaves made from x
    nodes: list[Value]  # every node, each after its parents (forward order)
    exponents: dict[Value, float]  # x ** e nodes -> e (the op text shows e rounded)
    data_reads: list[str]  # where code outside the library read Value.data


@contextmanager
def _watching() -> Iterator[tuple[list[str], dict[Value, float]]]:
    """While tracing: note every read of `Value.data` made outside the library, and the exact
    exponent of every `x ** e`. The class attributes are restored on the way out."""
    slot = Value.__dict__["data"]
    original_pow = Value.__dict__["__pow__"]
    reads: list[str] = []
    exponents: dict[Value, float] = {}

    def read(value: Value) -> float:
        frame = sys._getframe(1)
        if frame.f_globals.get("__name__") not in _LIBRARY_MODULES:
            reads.append(f"{frame.f_code.co_filename}:{frame.f_lineno} ({frame.f_code.co_name})")
        return slot.__get__(value, Value)

    def write(value: Value, data: float) -> None:
        slot.__set__(value, data)

    def power(base: Value, exponent: object) -> Value:
        out = original_pow(base, exponent)
        if not isinstance(exponent, Value) and isinstance(out, Value):
            exponents[out] = as_float(exponent)
        return out

    with _TRACE_LOCK:
        try:
            setattr(Value, "data", property(read, write))
            setattr(Value, "__pow__", power)
            yield reads, exponents
        finally:
            setattr(Value, "data", slot)
            setattr(Value, "__pow__", original_pow)


def _trace(model: Callable, loss_fn: LossFn, x: Sequence[float], y: object, watch: bool) -> _Trace:
    """Build one example's graph with the real engine: model(x), then loss_fn(output, y)."""
    inputs = [Value(as_float(v), f"x{i + 1}") for i, v in enumerate(x)]
    reads: list[str] = []
    exponents: dict[Value, float] = {}
    with gc_paused():
        if watch:
            with _watching() as (reads, exponents):
                out = model(inputs)
                loss = loss_fn(out, y)
        else:
            out = model(inputs)
            loss = loss_fn(out, y)
    several = not isinstance(out, Value)
    outputs = list(out) if several else [out]
    if not isinstance(loss, Value) or not all(isinstance(o, Value) for o in outputs):
        raise NotCompilable("the model must return Values and the loss one Value")
    if not loss._parents:
        raise NotCompilable("the loss is a leaf, not computed from the model's output")
    return _Trace(loss, outputs, several, inputs, _forward_order([loss, *outputs]), exponents, reads)


def _forward_order(roots: Sequence[Value]) -> list[Value]:
    """Every node under `roots`, each after all of its parents (iterative depth-first postorder,
    parents in their stored order: layer by layer, neuron by neuron for an MLP)."""
    order: list[Value] = []
    seen: set[Value] = set()
    for root in roots:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(root._parents))]
        while stack:
            node, parents = stack[-1]
            for parent in parents:
                if parent not in seen:
                    seen.add(parent)
                    if not parent._parents:  # a leaf: placed at once, no stack frame
                        order.append(parent)
                        continue
                    stack.append((parent, iter(parent._parents)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def _signature(trace: _Trace, param_index: dict[Value, int]) -> tuple:
    """The graph's structure as a comparable tuple: each computed node's kind and parents, where
    a parent is named by its role (parameter i, input i, a constant and its value, or computed
    node k, numbered in forward order), and where the loss and the outputs are. Cheap: the
    per-call check runs it."""
    keys: dict[Value, object] = dict(param_index)
    keys.update((v, ("input", i)) for i, v in enumerate(trace.inputs))
    parts: list[tuple] = []
    for node in trace.nodes:
        if node in keys:
            continue
        if node._parents:
            keys[node] = ("node", len(parts))
            parts.append((node._op, node._arg, tuple(map(keys.__getitem__, node._parents))))
        else:
            keys[node] = _leaf_key(node)
    return (tuple(parts), keys[trace.root], tuple(keys[o] for o in trace.outputs), trace.several_outputs)


def _leaf_key(leaf: Value) -> tuple[str, str]:
    """A leaf that is neither a parameter nor an input, by its kind and exact value."""
    return (leaf._op.word, repr(leaf.data))


# ---- writing the code ------------------------------------------------------------------------

def _literal(x: float) -> str:
    """A float as Python source that reads back as exactly the same float."""
    if math.isnan(x):
        return "_NAN"
    if math.isinf(x):
        return "_INF" if x > 0 else "-_INF"
    return repr(x)


def _identifier(label: str) -> str:
    """A label such as 'L1.n2.w1' as a Python name: 'L1_n2_w1' ('' if it has no usable form)."""
    name = re.sub(r"\W", "_", label)
    if not name or name[0].isdigit() or keyword.iskeyword(name) or name.startswith("_"):
        return ""
    return name


class _Namer:
    """Unique Python names for a trace's nodes: parameters by label, neurons as `L1_n2_z` (w·a+b)
    and `L1_n2_a` (its activation), the loss `loss`, everything else `<op><k>`."""

    def __init__(self, reserved: set[str]) -> None:
        self.used = set(reserved)
        self.counts: dict[str, int] = {}

    def fresh(self, base: str) -> str:
        """`base`, or `base` with a number appended if that name is taken."""
        name, k = base, 1
        while name in self.used or f"g_{name}" in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    def numbered(self, word: str) -> str:
        """`word1`, `word2`, ...: the next free numbered name for an op."""
        while True:
            self.counts[word] = self.counts.get(word, 0) + 1
            name = f"{word}{self.counts[word]}"
            if name not in self.used:
                self.used.add(name)
                return name


def _neuron_prefix(node: Value) -> str:
    """'L1_n2' for the fused pre-activation of neuron L1.n2 (from its bias's label), else ''."""
    if node._op != Op.WEIGHTED_SUM or not node._parents[-1].label.endswith(".b"):
        return ""
    return _identifier(node._parents[-1].label[:-2])


def _node_names(trace: _Trace, namer: _Namer, leaf_names: dict[Value, str]) -> dict[Value, str]:
    """A name (or, for a constant, a literal) for every node of `trace`."""
    names = dict(leaf_names)
    for node in trace.nodes:
        if node in names:
            continue
        if not node._parents:
            if node._op != Op.CONST:
                raise NotCompilable(
                    f"the graph reads a Value that is neither a parameter of the model nor an "
                    f"input ({node!r}); its gradient would be lost, so it is not compiled"
                )
            names[node] = _literal(node.data)
            continue
        prefix = _neuron_prefix(node)
        parent_prefix = _neuron_prefix(node._parents[0]) if len(node._parents) == 1 else ""
        if node is trace.root:
            names[node] = namer.fresh("loss")
        elif prefix:
            names[node] = namer.fresh(f"{prefix}_z")
        elif parent_prefix:
            names[node] = namer.fresh(f"{parent_prefix}_a")
        else:
            word = _identifier(node._op.word) or "v"
            names[node] = namer.numbered(word)
    return names


class _Step(NamedTuple):
    """ReLU's local derivative at `z` (a name): 1 for z > 0, 0 for z <= 0, z itself (NaN) otherwise."""

    z: str


Local = Union[str, _Step]  # a local derivative: an expression, or ReLU's step
Rule = Callable[[str, list[str]], tuple[list[str], list[Local]]]  # (name, parents' names) -> code


# Inline forms of the common ops: the statements computing a node named v from its parents'
# names a, and each parent's local derivative. Each gives exactly the engine's value, chain-rule
# shares and errors, also on ±0, subnormals, ±inf and NaN (tests/test_compile.py checks it).

def _add(v: str, a: list[str]) -> tuple[list[str], list[Local]]:
    return [f"{v} = {a[0]} + {a[1]}"], ["1.0", "1.0"]


def _sub(v: str, a: list[str]) -> tuple[list[str], list[Local]]:
    return [f"{v} = {a[0]} - {a[1]}"], ["1.0", "-1.0"]


def _mul(v: str, a: list[str]) -> tuple[list[str], list[Local]]:
    return [f"{v} = {a[0]} * {a[1]}"], [a[1], a[0]]


def _neg(v: str, a: list[str]) -> tuple[list[str], list[Local]]:
    return [f"{v} = -{a[0]}"], ["-1.0"]


def _divide(v: str, a: list[str]) -> tuple[list[str], list[Local]]:
    return [f"{v} = {a[0]} / {a[1]}"], [f"(1.0 / {a[1]})", f"-({v} / {a[1]})"]


def _weighted_sum_rule(v: str, a: list[str]) -> tuple[list[str], list[Local]]:
    n = (len(a) - 1) // 2  # parents: n weights, n inputs, the bias; b + w1*x1 + w2*x2 + ... left to right
    terms = " + ".join(f"{w} * {x}" for w, x in zip(a[:n], a[n:2 * n]))
    return [f"{v} = {a[-1]} + {terms}"], [*a[n:2 * n], *a[:n], "1.0"]


def _relu(v: str, a: list[str]) -> tuple[list[str], list[Local]]:
    return [f"{v} = 0.0 if {a[0]} <= 0.0 else {a[0]}"], [_Step(a[0])]


def _tanh(v: str, a: list[str]) -> tuple[list[str], list[Local]]:
    return [f"{v} = _tanh({a[0]})"], [f"(1.0 - {v} * {v})"]


def _abs(v: str, a: list[str]) -> tuple[list[str], list[Local]]:
    x = a[0]
    return [f"{v} = abs({x})"], [f"(1.0 if {x} > 0.0 else -1.0 if {x} < 0.0 else 0.0 if {x} == 0.0 else {x})"]


_RULES: dict[Op, Rule] = {
    Op.ADD: _add, Op.SUB: _sub, Op.MUL: _mul, Op.NEG: _neg, Op.DIV: _divide, Op.WEIGHTED_SUM: _weighted_sum_rule,
    Op.RELU: _relu, Op.TANH: _tanh, Op.ABS: _abs,
}


def _forward(node: Value, var: str, args: list[str], trace: _Trace) -> tuple[list[str], list[Local]]:
    """The statements computing `node` (named `var`, parents named `args`) exactly as the engine
    does, and the expression for its local derivative with respect to each parent."""
    rule = _RULES.get(node._op)
    if rule is not None:
        return rule(var, args)
    call = _engine_call(node, args, trace)
    locals_: list[Local] = [f"d{k}_{var}" for k in range(len(args))]
    return [f"{var}, {', '.join(map(str, locals_))} = {call}"], locals_


_BY_ENGINE = {Op.EXP, Op.LOG, Op.SIGMOID, Op.SOFTPLUS, Op.SQRT}  # Value methods, named by op.word


def _engine_call(node: Value, args: list[str], trace: _Trace) -> str:
    """For the ops with longer formulas (no inline form): a call that lets the engine compute
    value and local derivatives on fresh Values, so the numbers, the errors and the NaNs are the
    engine's."""
    op = node._op
    if op in _BY_ENGINE:
        return f"_unary(_Value.{op.word}, {args[0]})"
    if op is Op.POW and node._arg is not None:
        return f"_power({args[0]}, {_literal(node._arg)})"
    if op is Op.VALUE_POW:
        return f"_value_power_of({args[0]}, {args[1]})"
    if op is Op.LOGSUMEXP:
        return f"_logsumexp(({', '.join(args)},))"
    if op is Op.BCE and node._arg is not None:
        return f"_bce({args[0]}, {_literal(node._arg)})"
    raise NotCompilable(
        f"the operation {op.symbol!r} has no compiled form (known: + - * / neg relu tanh abs exp log sqrt "
        "sigmoid softplus ** pow logsumexp bce and neurons' w·x+b)"
    )


def _same(a: Sequence[float], b: Sequence[float]) -> bool:
    """Equal numbers, NaN matching NaN."""
    return all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True))


def _share(local: Local, upstream: str) -> str:
    """The chain rule on one edge, `local * upstream`, written so that it gives the same float:
    1.0·g is g, -1.0·g is -g, and ReLU's step is g, 0.0·g (which keeps NaN) or z·g for a NaN z."""
    if isinstance(local, _Step):
        z = local.z
        return f"({upstream} if {z} > 0.0 else 0.0 * {upstream} if {z} <= 0.0 else {z} * {upstream})"
    if local == "1.0":
        return upstream
    if local == "-1.0":
        return f"-{upstream}"
    return f"{local} * {upstream}"


def _example_code(trace: _Trace, names: dict[Value, str],
                  accumulators: dict[Value, str]) -> tuple[list[str], list[str]]:
    """For one example of one target: its forward statements, then its backward statements; and
    the model's forward statements alone (the same statements, the loss's left out)."""
    layers = _layers(_forward_order(trace.outputs))
    lines, model_lines, local_derivatives = _forward_code(trace, names, layers)
    output = ", ".join(names[o] for o in trace.outputs)
    append_output = f"append_output([{output}])" if trace.several_outputs else f"append_output({output})"
    lines.extend([f"append_loss({names[trace.root]})", append_output])
    lines.extend(_backward_code(trace, names, accumulators, layers, local_derivatives))
    return lines, [*model_lines, append_output]


def _layers(model_nodes: Iterable[Value]) -> dict[Value, str]:
    """The part of the model each computed node of `model_nodes` (each after its parents) is in:
    'layer L1' for a node with a parameter labelled 'L1.…' among its parents, else the part of
    its first computed parent, else 'the model'."""
    layers: dict[Value, str] = {}
    for node in model_nodes:
        if not node._parents:
            continue
        labelled = next((p.label for p in node._parents if not p._parents and "." in p.label), None)
        computed = next((p for p in node._parents if p._parents), None)
        if labelled is not None:
            layers[node] = f"layer {labelled.split('.')[0]}"
        else:
            layers[node] = layers[computed] if computed is not None else "the model"
    return layers


def _sections(nodes: Iterable[Value], layers: dict[Value, str]) -> Iterator[tuple[Optional[str], Value]]:
    """Each computed node of `nodes`, with the name of its part ('layer L1', ..., 'the loss')
    when the node starts a new part, else None."""
    section = None
    for node in nodes:
        if not node._parents:
            continue
        part = layers.get(node, "the loss")
        yield (part if part != section else None), node
        section = part


def _forward_code(trace: _Trace, names: dict[Value, str],
                  layers: dict[Value, str]) -> tuple[list[str], list[str], dict[Value, list[Local]]]:
    """The forward statements, node by node; the model's nodes' statements among them; and each
    node's local derivatives."""
    lines: list[str] = []
    model_lines: list[str] = []
    local_derivatives: dict[Value, list[Local]] = {}
    for part, node in _sections(trace.nodes, layers):
        if part is not None:
            lines.append(f"# ---- forward: {part}")
        statements, local_derivatives[node] = _forward(node, names[node], [names[p] for p in node._parents], trace)
        lines.extend(statements)
        if node in layers:
            model_lines.extend(statements)
    return lines, model_lines, local_derivatives


def _backward_code(trace: _Trace, names: dict[Value, str], accumulators: dict[Value, str],
                   layers: dict[Value, str], local_derivatives: dict[Value, list[Local]]) -> list[str]:
    """The backward statements, node by node in backward()'s order. A node's gradient is the sum
    of the shares its consumers passed back, added in the order backward() adds them (all
    consumers come before it); a parameter's share goes into its accumulator at once."""
    lines: list[str] = []
    shares: dict[Value, list[str]] = {trace.root: ["seed"]}
    for part, node in _sections(topological_order(trace.root), layers):
        if part is not None:
            lines.append(f"# ---- backward: {part}")
        upstream = f"g_{names[node]}"
        note = "  # dL/dL_i = 1/m: the batch-mean node's share" if node is trace.root else ""
        lines.append(f"{upstream} = {' + '.join(shares.pop(node))}{note}")
        for parent, local in zip(node._parents, local_derivatives[node]):
            if parent in accumulators:
                lines.append(f"{accumulators[parent]} += {_share(local, upstream)}")
            elif parent._parents:
                shares.setdefault(parent, []).append(_share(local, upstream))
    return lines


# ---- helpers the generated code calls ----------------------------------------------------

def _unary(method: Callable[[Value], Value], x: float) -> tuple[float, float]:
    node = method(Value(x))
    return node.data, node._local_grads[0]


def _power(x: float, exponent: float) -> tuple[float, float]:
    node = Value(x) ** exponent
    return node.data, node._local_grads[0]


def _value_power_of(base: float, exponent: float) -> tuple[float, float, float]:
    node = Value(base) ** Value(exponent)  # Value ** Value: the exponent gets a gradient too
    return node.data, node._local_grads[0], node._local_grads[1]


def _logsumexp(xs: Sequence[float]) -> tuple[float, ...]:
    node = logsumexp([Value(x) for x in xs])
    return (node.data, *node._local_grads)


def _bce(z: float, label: float) -> tuple[float, float]:
    node = bce_with_logits(Value(z), label)
    return node.data, node._local_grads[0]


_NAMESPACE = {
    "_Value": Value, "_unary": _unary, "_power": _power, "_value_power_of": _value_power_of,
    "_logsumexp": _logsumexp, "_bce": _bce, "_tanh": math.tanh, "_INF": math.inf, "_NAN": math.nan,
}


def _program_source(param_names: list[str], nin: int, bodies: list[tuple[str, list[str]]]) -> str:
    """The whole generated module: one function that runs a batch, examples last to first."""
    grads = [f"g_{name}" for name in param_names]
    lines = [
        "# Generated by micrograd_batch.compile_loss from one traced example's graph.",
        "# Forward: one statement per node. Backward: the chain rule, node by node in the order",
        "# Value.backward() takes them: g_X is dL/dX (for a neuron's z: its δ), the sum of the",
        "# shares local_derivative * g_consumer its consumers pass back; a parameter's share is",
        "# added to its gradient g_w at once. Examples run last to first, as backward() reaches",
        "# them through the batch-mean node, so every sum is added up in the same order.",
        "",
        "def run_batch(xs, targets, seed, parameters, gradients):",
        "    # the parameters' current values, and their gradients so far (each example adds its share)",
        f"    ({', '.join(param_names)},) = parameters",
        f"    ({', '.join(grads)},) = gradients",
        "    losses = []",
        "    outputs = []",
        "    append_loss, append_output = losses.append, outputs.append",
        *_example_loop(nin, bodies),
        f"    return losses, outputs, ({', '.join(grads)},)",
    ]
    return "\n".join(lines) + "\n"


def _outputs_source(param_names: list[str], nin: int, bodies: list[tuple[str, list[str]]]) -> str:
    """A module with one function that gives each example's model output: the model's forward
    statements of `run_batch` alone (`bodies`: each target's)."""
    lines = [
        "def run_outputs(xs, targets, parameters):",
        f"    ({', '.join(param_names)},) = parameters",
        "    outputs = []",
        "    append_output = outputs.append",
        *_example_loop(nin, bodies),
        "    return outputs",
    ]
    return "\n".join(lines) + "\n"


def _example_loop(nin: int, bodies: list[tuple[str, list[str]]]) -> list[str]:
    """The loop over the examples, each running the body of its target (`bodies`: description
    and statements of each target, by its number)."""
    inputs = ", ".join(f"x{i + 1}" for i in range(nin)) + ("," if nin == 1 else "")
    lines = [f"    for ({inputs}), target in zip(xs, targets):"]
    for k, (description, body) in enumerate(bodies):
        indent = "        "
        if len(bodies) > 1:
            lines.append(f"        {'if' if k == 0 else 'elif'} target == {k}:  # y = {description}")
            indent += "    "
        lines.extend(indent + line for line in body)
    return lines


# ---- the compiled loss -----------------------------------------------------------------------

def _target_key(y: object) -> Optional[tuple]:
    """A dict key for a target: its type and value (1, 1.0 and True stay apart); None when it
    is unhashable."""
    try:
        key = (type(y), tuple((type(v), v) for v in y)) if isinstance(y, (list, tuple)) else (type(y), y)
        hash(key)
    except TypeError:
        return None
    return key


def _plain_inputs(x: object, nin: int) -> Optional[Sequence[float]]:
    """x as `nin` floats, or None when the graph path should see it (wrong length, Values,
    not a sequence: it raises its own error or handles it). A number the engine refuses
    (a string, a bool) raises the engine's TypeError."""
    if isinstance(x, (str, bytes)) or not hasattr(x, "__len__") or len(x) != nin:
        return None
    if all(type(v) is float for v in x):  # type: ignore[attr-defined]
        return x  # type: ignore[return-value]
    if any(isinstance(v, Value) for v in x):  # type: ignore[attr-defined]
        return None
    return [as_float(v) for v in x]  # type: ignore[attr-defined]


@dataclass
class _Target:
    """One target's compiled body and the structure it was compiled from."""

    description: str
    signature: tuple
    body: list[str]  # forward, loss, backward
    outputs_body: list[str]  # the model's forward statements of `body` alone


@dataclass
class _ModelState:
    """A library model's modules and a copy of each one's attributes (its lists copied), taken
    when it was compiled: everything its forward pass reads besides the parameters' numbers."""

    modules: list[Any]
    classes: list[type]
    attributes: list[dict[str, object]]

    @classmethod
    def of(cls, model: Any) -> Optional[_ModelState]:
        """The state of `model`, or None unless every module in it is the library's MLP, Layer
        or Neuron and every attribute a Value, a module, a number, a string, a library
        function, or a list of these (so that nothing but library code builds its graph)."""
        modules: list[Any] = []
        attributes: list[dict[str, object]] = []
        stack = [model]
        while stack:
            module = stack.pop()
            if type(module) not in _stable_module_types() or any(module is m for m in modules):
                return None
            copied = _attributes_copy(module, stack)
            if copied is None:
                return None
            modules.append(module)
            attributes.append(copied)
        return cls(modules, list(map(type, modules)), attributes)

    def unchanged(self) -> bool:
        """Whether every module is still of its class with the same attributes: the same
        objects (Values, modules, functions) and equal numbers and strings, and every list the
        same items in the same order. C-level comparisons only: a few µs for an MLP."""
        return list(map(type, self.modules)) == self.classes and list(map(vars, self.modules)) == self.attributes


_ATOMS = (str, int, float, bool, type(None))  # attribute values compared by value


def _attributes_copy(module: Any, found: list[Any]) -> Optional[dict[str, object]]:
    """`module`'s attributes, each list copied; the modules among them are appended to `found`.
    None if an attribute is anything else than `_ModelState.of` accepts."""
    copied: dict[str, object] = {}
    for name, value in vars(module).items():
        items = value if type(value) is list else [value]
        for item in items:
            if type(item) in _stable_module_types():
                found.append(item)
            elif not (type(item) is Value or type(item) in _ATOMS or _is_library_function(item)):
                return None
        copied[name] = list(value) if type(value) is list else value
    return copied


def _is_library_function(item: object) -> bool:
    """A plain function defined in the library (an activation such as `Value.relu`)."""
    return type(item) is types.FunctionType and item.__module__ in _LIBRARY_MODULES


def _stable_module_types() -> tuple[type, ...]:
    """The library's modules whose graph is the same for every example: MLP, Layer, Neuron."""
    return (MLP, Layer, Neuron)


class CompiledLoss:
    """`loss_fn(model(x), y)` compiled to straight-line Python; see the module docstring.

    `.grad(examples)` returns the mean loss and adds the mean gradient (1/m) Σ_i ∇θ L_i into
    each parameter's `.grad`, exactly as `batch_mean([...]).backward()` would; `.outputs(examples)`
    gives the model's outputs by the forward statements alone. `.source` is the generated code.
    `fallback_reason` is None while the compiled code is in use, else why the graph path is used
    instead. With `strict=True`, that case raises `NotCompilable`.
    """

    def __init__(self, model: Any, loss_fn: LossFn, *, strict: bool = False) -> None:
        check_model_and_loss(model, loss_fn, "compile_loss")
        self.model = model
        self.loss_fn = loss_fn
        self.strict = strict
        self.params: list[Value] = list(model.parameters())
        self.fallback_reason: Optional[str] = None
        self._param_index = {p: i for i, p in enumerate(self.params)}
        self._nin: Optional[int] = None
        self._targets: dict[tuple, int] = {}
        self._compiled: list[_Target] = []
        self._run: Optional[Callable] = None
        self._run_outputs: Optional[Callable] = None
        self._source = ""
        self._calls = 0
        # A library model with a library loss, in the state it is compiled in: while that state is
        # unchanged, the per-call re-trace could find nothing and is skipped (see `_model_unchanged`).
        self._stable_state = _ModelState.of(model) if known_stable(model, loss_fn) else None
        self._stable_loss_fn = loss_fn

    @property
    def source(self) -> str:
        """The generated Python (after the first example was traced: `.grad(...)`, or
        `compile_loss(..., example=(x, y))`)."""
        if not self._source and self.fallback_reason is not None:
            raise RuntimeError(f"nothing was compiled: {self.fallback_reason}")
        if not self._source:
            raise RuntimeError("nothing traced yet: call .grad(examples) or compile_loss(..., example=(x, y))")
        return self._source

    def trace(self, x: Sequence[float], y: object) -> None:
        """Compile for the target `y`, tracing the example (x, y) (`.grad` does this as needed)."""
        plain = _plain_inputs(x, len(x)) if hasattr(x, "__len__") else None
        key = _target_key(y)
        if plain is None or key is None:
            self._give_up(NotCompilable("inputs must be a list of numbers and the target hashable"))
            return
        if key not in self._targets and self.fallback_reason is None:
            self._model_unchanged()  # a target is traced in the state checked, or the check stays on
            try:
                self._add_target(key, plain, y, [])
            except NotCompilable as error:
                self._give_up(error)

    def grad(self, examples: Sequence[tuple]) -> float:
        """The mean loss over `examples` [(x, y), ...]; adds the mean gradient into each
        parameter's `.grad` (accumulating, like `backward()`)."""
        start = [p.grad for p in self.params]
        result = self._run_batch(examples, start)
        if result is None:
            with gc_paused():
                loss = batch_mean([self.loss_fn(self.model(x), y) for x, y in examples])
                loss.backward()
            return loss.data
        losses, _, grads = result
        for p, g in zip(self.params, grads):
            p.grad = g
        return float_mean(losses)

    def loss_and_grads(self, examples: Sequence[tuple], l2: float = 0.0) -> Optional[tuple[float, list[Scores]]]:
        """`fit`'s step: the mean loss plus `l2`·Σp², with the gradients of
        `(batch_mean(...) + l2_penalty(params, l2)).backward()` added into `.grad` (only when
        the loss is finite, as `train_step` does), and each example's output as numbers.
        None when the graph path must be used (nothing was changed then)."""
        start = [p.grad for p in self.params]
        penalty = l2_penalty(self.params, l2) if l2 else None
        if penalty is not None:  # backward() reaches the l2 node before the examples
            start = [g + d for g, d in zip(start, penalty._local_grads)]
        result = self._run_batch(examples, start)
        if result is None:
            return None
        losses, outputs, grads = result
        loss = float_mean(losses)
        if penalty is not None:
            loss = loss + penalty.data
        if math.isfinite(loss):
            for p, g in zip(self.params, grads):
                p.grad = g
        return loss, outputs

    def outputs(self, examples: Sequence[tuple]) -> Optional[list[Scores]]:
        """Each example's model output as numbers, `plain_scores(model(x))` bit for bit, by the
        compiled forward statements of the model alone (no loss, no backward; nothing changed).
        None when the graph path must be used. Targets are needed: each has its own code."""
        result = self._run_batch(examples, None)
        return None if result is None else result[1]

    # -- internals ---------------------------------------------------------------------

    def _give_up(self, error: NotCompilable) -> None:
        """Use the graph path from now on (or raise, when strict)."""
        if self.strict:
            raise error
        self.fallback_reason = str(error)

    def _run_batch(self, examples: Sequence[tuple], start: Optional[list[float]]) -> Optional[tuple]:
        """Run the compiled code over `examples`: (losses, outputs, new gradients); with `start`
        None, the forward statements of the model only: (None, outputs, None). None for the
        graph path."""
        if isinstance(examples, Value) or not hasattr(examples, "__len__") or not len(examples):
            raise ValueError("examples must be a non-empty list of (x, y) pairs")
        if self.fallback_reason is not None:
            return None
        try:
            return self._run_checked(examples, start)
        except NotCompilable as error:
            self._give_up(error)
            if isinstance(error, _Changed):
                warnings.warn(f"compiled loss: using the graph path from now on: {error}", stacklevel=3)
            return None

    def _run_checked(self, examples: Sequence[tuple], start: Optional[list[float]]) -> Optional[tuple]:
        """`_run_batch` after the argument checks: compile new targets, run the code, and (unless
        the model is a library one in its compiled state) re-trace one example to check it."""
        checked = not self._model_unchanged()  # asked first: new targets are traced in this state
        prepared = self._prepare(examples)
        if prepared is None:
            return None
        xs, targets = prepared
        check = self._calls % len(examples)
        expected = self._check_structure(examples[check]) if checked else None
        self._calls += checked
        assert self._run is not None and self._run_outputs is not None
        parameters = [p.data for p in self.params]
        losses, grads = None, None
        if start is None:
            outputs = self._run_outputs(xs, targets, parameters)
        else:
            losses, outputs, grads = self._run(xs, targets, 1.0 / len(examples), parameters, start)
            losses.reverse()
        outputs.reverse()
        if expected is not None:
            _compare(check, expected, losses, outputs)
        return losses, outputs, grads

    def _model_unchanged(self) -> bool:
        """True while the model is a library model with a library loss (`known_stable`) and every
        module of it has the attributes it had when compiled (`_ModelState`). Then the graph of
        any example is, by construction, the compiled one with other numbers: the library code
        builds the same graph for every example of a target (checked anyway when each target is
        traced: twice, with every read of `.data` watched), and the parameters are the same Value
        objects (their numbers are read on every call). So the per-call re-trace could find
        nothing and is skipped. At the first difference (a parameter replaced, an activation or
        a layer changed) the re-trace runs on this and every later call."""
        state = self._stable_state
        if state is None:
            return False
        if state.unchanged() and self.model is state.modules[0] and self.loss_fn is self._stable_loss_fn:
            return True
        self._stable_state = None
        return False

    def _prepare(self, examples: Sequence[tuple]) -> Optional[tuple[list, list[int]]]:
        """The inputs and target numbers of `examples`, last to first; compiles new targets."""
        xs, targets = [], []
        added = False
        for x, y in reversed(examples):
            plain = _plain_inputs(x, self._nin if self._nin is not None else len(x)) if hasattr(x, "__len__") else None
            key = _target_key(y)
            if plain is None or key is None:
                return None  # the graph path takes it (and raises its own error if it is bad)
            number = self._targets.get(key)
            if number is None:
                number = self._add_target(key, plain, y, examples)
                added = True
            xs.append(plain)
            targets.append(number)
        if added:
            self._build()
        return xs, targets

    def _add_target(self, key: tuple, x: Sequence[float], y: object, examples: Sequence[tuple]) -> int:
        """Trace (x, y), check the trace is repeatable, and keep the code for target y."""
        if len(self._targets) >= MAX_TARGETS:
            raise NotCompilable(
                f"more than {MAX_TARGETS} distinct targets: targets are compiled in as constants, "
                "so a regression with many target values runs on the graph path")
        trace, signature = self._repeatable_trace(x, y)
        self._check_other_example(key, x, y, examples, signature)
        self._nin = len(x)
        body, outputs_body = self._example_body(trace, nin=len(x))
        self._targets[key] = len(self._compiled)
        self._compiled.append(_Target(" ".join(repr(y).split())[:60], signature, body, outputs_body))
        self._verify(trace, x, len(self._compiled) - 1)
        return self._targets[key]

    def _repeatable_trace(self, x: Sequence[float], y: object) -> tuple[_Trace, tuple]:
        """A trace of (x, y) and its signature, after checking that tracing again gives a graph
        of the same structure and loss, built anew (no computed node shared)."""
        trace = self._checked_trace(x, y)
        signature = _signature(trace, self._param_index)
        again = self._checked_trace(x, y)
        if _signature(again, self._param_index) != signature or not _same([again.root.data], [trace.root.data]):
            raise NotCompilable("tracing the same example twice gave different graphs: the model or the loss "
                                "depends on something besides its inputs (randomness, a counter, a global)")
        own = {id(n) for n in trace.nodes if n._parents}
        if own & {id(n) for n in again.nodes if n._parents}:
            raise NotCompilable("two traces share a computed node: the graph is not built per example")
        return trace, signature

    def _check_other_example(self, key: tuple, x: Sequence[float], y: object, examples: Sequence[tuple],
                             signature: tuple) -> None:
        """Another example of `examples` with the same target, if any, must give the same structure."""
        other = next((ex[0] for ex in examples if _target_key(ex[1]) == key and ex[0] is not x), None)
        other_x = _plain_inputs(other, len(x)) if other is not None and hasattr(other, "__len__") else None
        if other_x is not None and _signature(self._checked_trace(other_x, y), self._param_index) != signature:
            raise NotCompilable("two examples with the same target gave graphs of different structure")

    def _example_body(self, trace: _Trace, *, nin: int) -> tuple[list[str], list[str]]:
        """Name the inputs, the parameters and the nodes, and write the traced example's code:
        all of it, and the model's forward statements alone."""
        namer = _Namer(set(_NAMESPACE) | {"run_batch", "xs", "targets", "target", "seed", "parameters",
                                          "gradients", "losses", "outputs", "append_loss",
                                          "append_output"} | {f"x{i + 1}" for i in range(nin)})
        names, accumulators = self._leaf_names(trace, namer)
        return _example_code(trace, _node_names(trace, namer, names), accumulators)

    def _checked_trace(self, x: Sequence[float], y: object) -> _Trace:
        """A trace of (x, y) that read no Value's number outside the library."""
        trace = _trace(self.model, self.loss_fn, x, y, watch=True)
        if trace.data_reads:
            raise NotCompilable(
                f"{trace.data_reads[0]} reads a Value's .data while the graph is built, so the graph "
                "may depend on the numbers (a Python `if` on a value?) and cannot be traced once")
        return trace

    def _leaf_names(self, trace: _Trace, namer: _Namer) -> tuple[dict[Value, str], dict[Value, str]]:
        """Names of the inputs and of ALL parameters (by label), and their gradient accumulators."""
        names = {v: f"x{i + 1}" for i, v in enumerate(trace.inputs)}
        self._param_names = []
        for i, p in enumerate(self.params):
            name = namer.fresh(_identifier(p.label) or f"p{i + 1}")
            namer.used.add(f"g_{name}")
            self._param_names.append(name)
        names.update(zip(self.params, self._param_names))
        return names, {p: f"g_{name}" for p, name in zip(self.params, self._param_names)}

    def _build(self) -> None:
        """exec the generated module once (again, when a new target was added)."""
        assert self._nin is not None
        self._source = _program_source(self._param_names, self._nin, [(t.description, t.body) for t in self._compiled])
        outputs_source = _outputs_source(self._param_names, self._nin,
                                         [(t.description, t.outputs_body) for t in self._compiled])
        namespace = dict(_NAMESPACE)
        exec(compile(self._source, "<compiled loss>", "exec"), namespace)
        exec(compile(outputs_source, "<compiled outputs>", "exec"), namespace)
        self._run = namespace["run_batch"]  # type: ignore[assignment]
        self._run_outputs = namespace["run_outputs"]  # type: ignore[assignment]

    def _verify(self, trace: _Trace, x: Sequence[float], number: int) -> None:
        """The new code's loss, gradient and output for the traced example (and the forward
        statements' output) equal its graph's, bit for bit."""
        self._build()
        assert self._run is not None and self._run_outputs is not None
        parameters = [p.data for p in self.params]
        losses, outputs, grads = self._run([x], [number], 1.0, parameters, [0.0] * len(self.params))
        (expected,) = per_example_grads([trace.root], self.params)
        want = [o.data for o in trace.outputs]
        if (not _same(losses, [trace.root.data]) or not _same(list(grads), expected)
                or not _same(_numbers(outputs[0]), want)
                or not _same(_numbers(self._run_outputs([x], [number], parameters)[0]), want)):
            raise NotCompilable("the compiled code disagrees with the graph on the traced example")

    def _check_structure(self, example: tuple) -> _Trace:
        """Re-trace one example of this call with the real engine; its structure must be the
        one compiled for its target. Returns the trace, to compare its numbers with the code's."""
        x, y = example
        trace = _trace(self.model, self.loss_fn, list(x), y, watch=False)
        target = self._compiled[self._targets[_target_key(y)]]  # type: ignore[index]
        if _signature(trace, self._param_index) != target.signature:
            raise _Changed("an example's graph has a different structure from the compiled one: "
                                "the model or the loss changed, or depends on the data")
        return trace


def _compare(check: int, trace: _Trace, losses: Optional[list[float]], outputs: list[Scores]) -> None:
    """`_Changed` unless example `check`'s compiled loss (when computed) and output equal its
    re-traced graph's."""
    if losses is not None and not _same([losses[check]], [trace.root.data]):
        raise _Changed(f"example {check}'s compiled loss {losses[check]!r} differs from its graph's "
                       f"{trace.root.data!r}: the model or loss changed")
    want = [o.data for o in trace.outputs]
    if not _same(_numbers(outputs[check]), want):
        raise _Changed(f"example {check}'s compiled output {outputs[check]!r} differs from its graph's "
                       f"{want!r}: the model changed")


def _numbers(scores: Scores) -> list[float]:
    """One example's output as a list of numbers."""
    return scores if isinstance(scores, list) else [scores]


def known_stable(model: Any, loss_fn: object) -> bool:
    """True for a library model (MLP, Layer, Neuron; no normalisation layers) with a library loss (hinge, mse,
    bce_with_logits, softmax_cross_entropy): code known to build the same graph for every
    example of a target and to have no side effects, so tracing it changes nothing. `fit`
    compiles these by itself; other models and losses can be compiled with `compile_loss`."""
    if getattr(model, "norms", None) or getattr(model, "couples_examples", False):
        return False  # normalisation layers: batch statistics couple the examples, or new node kinds
    return type(model) in _stable_module_types() and loss_fn in (hinge, mse, bce_with_logits, softmax_cross_entropy)


def compile_loss(model: Any, loss_fn: LossFn, *, example: Optional[tuple] = None,
                 strict: bool = False) -> CompiledLoss:
    """`loss_fn(model(x), y)` compiled: one example's graph traced once and written out as
    straight-line Python (`.source`), run for every example by `.grad(examples)`.

    Tracing happens on first use, or now for `example=(x, y)`. Whatever cannot be compiled
    safely runs on the graph path (`.fallback_reason` says why), or raises `NotCompilable`
    when `strict`.
    """
    compiled = CompiledLoss(model, loss_fn, strict=strict)
    if example is not None:
        x, y = example
        compiled.trace(x, y)
    return compiled
