"""The scalar autograd engine: `Value`, its operations, and reverse-mode backpropagation.

Every operation creates one new `Value` that remembers its parents and, beside its forward
value, the *local derivative* of its output with respect to each parent. `backward()` then walks
the graph once, from the output back to the leaves, in an iterative topological order (no
recursion, so graphs of millions of nodes are fine) and applies the chain rule:

    parent.grad += local_derivative * node.grad

That single rule is the whole of backpropagation; a batch of examples is nothing more than a
graph with one per-example sub-graph per example, joined by a batch-loss node (see `batch.py`).
"""

from __future__ import annotations

import gc
import math
from contextlib import contextmanager
from itertools import chain
from numbers import Real
from operator import attrgetter
from typing import Iterable, Iterator, Sequence, Union

from ._checks import as_float, check_values

Number = Union[int, float]
Operand = Union["Value", int, float]


class Op:
    """The node kinds other modules act on, as stored in `Value.op`. Compare `v.op` with these
    constants; never recognise a node by its label or its display text."""

    LEAF = ""  # an input or a parameter: made by hand, not computed
    CONST = "const"  # a plain number lifted into the graph by arithmetic
    WEIGHTED_SUM = "Σwx+b"  # a neuron's fused pre-activation (weighted_sum)
    BATCH_MEAN = "mean"  # the batch-loss node (batch.batch_mean): 1/m to each example
    BATCH_SUM = "Σ"  # the batch-sum node (batch.batch_sum): 1 to each example
    BATCH_STAT = "over the batch"  # a feature's batch mean or variance (norm.BatchNorm): couples examples


class Value:
    """A scalar in a computation graph: its `data`, its gradient `grad`, and how it was made.

    `data` is the forward value. `grad` is d(output)/d(this value) after `output.backward()`.
    `_parents` are the Values this one was computed from and `_local_grads` the partial
    derivatives of this value with respect to each of them, in the same order.
    (`_pending` is the backward pass's scratch counter; it is 0 outside of it.)
    """

    __slots__ = ("data", "grad", "_parents", "_local_grads", "_op", "label", "_pending")

    def __init__(
        self,
        data: Number,
        label: str = "",
        _parents: tuple[Value, ...] = (),
        _local_grads: tuple[float, ...] = (),
        _op: str = "",
    ) -> None:
        self.data: float = data if type(data) is float else as_float(data)
        self.grad: float = 0.0
        self._parents = _parents
        self._local_grads = _local_grads
        self._op = _op
        self.label = label
        self._pending = 0

    def __repr__(self) -> str:
        name = f"{self.label}, " if self.label else ""
        return f"Value({name}data={self.data:.6g}, grad={self.grad:.6g})"

    @property
    def op(self) -> str:
        """The operation that made this Value (see `Op`; "" for an input or parameter)."""
        return self._op

    @property
    def is_leaf(self) -> bool:
        """True for a Value not computed from others: an input, a parameter or a constant."""
        return not self._parents

    # ---- arithmetic: forward value, and the local derivative right beside it ----------------

    def __add__(self, other: Operand) -> Value:
        other = _coerce(other)
        if other is NotImplemented:
            return NotImplemented
        return Value(self.data + other.data, "", (self, other), (1.0, 1.0), "+")

    def __mul__(self, other: Operand) -> Value:
        other = _coerce(other)
        if other is NotImplemented:
            return NotImplemented
        return Value(self.data * other.data, "", (self, other), (other.data, self.data), "*")

    def __truediv__(self, other: Operand) -> Value:
        other = _coerce(other)
        if other is NotImplemented:
            return NotImplemented
        if other.data == 0.0:
            raise ZeroDivisionError(f"division by zero: {self.data!r} / {other!r}")
        inverse = 1.0 / other.data
        quotient = self.data * inverse
        # d(a/b)/da = 1/b,  d(a/b)/db = -a/b^2
        return Value(quotient, "", (self, other), (inverse, -quotient * inverse), "/")

    def __pow__(self, exponent: Operand) -> Value:
        if isinstance(exponent, Value):
            return _value_power(self, exponent)
        exponent = as_float(exponent)
        base = self.data
        if base == 0.0 and exponent < 0.0:
            raise ZeroDivisionError(f"0 cannot be raised to a negative power ({exponent!r})")
        if base < 0.0 and not exponent.is_integer():
            raise ValueError(
                f"a negative base ({base!r}) to a non-integer power ({exponent!r}) is not real"
            )
        # d(x^n)/dx = n x^(n-1); at x = 0 that is 0 for n = 0 or n >= 1 and +inf for 0 < n < 1
        if exponent == 0.0:
            local = 0.0
        elif base == 0.0 and exponent < 1.0:
            local = math.inf
        else:
            local = exponent * _power(base, exponent - 1.0)
        return Value(_power(base, exponent), "", (self,), (local,), f"**{exponent:g}")

    def __neg__(self) -> Value:
        return Value(-self.data, "", (self,), (-1.0,), "neg")

    def __sub__(self, other: Operand) -> Value:
        other = _coerce(other)
        if other is NotImplemented:
            return NotImplemented
        return Value(self.data - other.data, "", (self, other), (1.0, -1.0), "-")

    def __radd__(self, other: Operand) -> Value:
        return self + other

    def __rmul__(self, other: Operand) -> Value:
        return self * other

    def __rsub__(self, other: Operand) -> Value:
        other = _coerce(other)
        if other is NotImplemented:
            return NotImplemented
        return other - self

    def __rtruediv__(self, other: Operand) -> Value:
        other = _coerce(other)
        if other is NotImplemented:
            return NotImplemented
        return other / self

    def __rpow__(self, base: Operand) -> Value:
        base = _coerce(base)
        if base is NotImplemented:
            return NotImplemented
        return _value_power(base, self)

    # ---- elementwise functions -------------------------------------------------------------

    def exp(self) -> Value:
        """e^x; its derivative is itself. Overflows to +inf (like float arithmetic) past ~709."""
        try:
            out = math.exp(self.data)
        except OverflowError:
            out = math.inf
        return Value(out, "", (self,), (out,), "exp")

    def log(self) -> Value:
        """Natural logarithm, defined for x > 0 only; d/dx log x = 1/x."""
        x = self.data
        if not x > 0.0:
            raise ValueError(f"log is defined only for positive numbers, got {x!r}")
        return Value(math.log(x), "", (self,), (1.0 / x,), "log")

    def tanh(self) -> Value:
        """Hyperbolic tangent; d/dx tanh x = 1 - tanh(x)^2."""
        t = math.tanh(self.data)
        return Value(t, "", (self,), (1.0 - t * t,), "tanh")

    def sigmoid(self) -> Value:
        """Logistic sigmoid 1/(1+e^-x), computed without overflow; derivative s(1-s)."""
        x = self.data
        if x >= 0.0:
            s = 1.0 / (1.0 + math.exp(-x))
        else:
            e = math.exp(x)
            s = e / (1.0 + e)
        return Value(s, "", (self,), (s * (1.0 - s),), "sigmoid")

    def relu(self) -> Value:
        """max(0, x); its derivative is 1 for x > 0 and 0 otherwise (0 at x = 0, like PyTorch)."""
        x = self.data
        return Value(x if x > 0.0 else 0.0, "", (self,), (1.0 if x > 0.0 else 0.0,), "relu")

    def softplus(self) -> Value:
        """log(1 + e^x), computed without overflow; its derivative is sigmoid(x)."""
        x = self.data
        out = max(x, 0.0) + math.log1p(math.exp(-abs(x)))
        slope = 1.0 / (1.0 + math.exp(-x)) if x >= 0.0 else math.exp(x) / (1.0 + math.exp(x))
        return Value(out, "", (self,), (slope,), "softplus")

    def abs(self) -> Value:
        """|x|; its derivative is sign(x), taken as 0 at x = 0."""
        x = self.data
        sign = 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0)
        return Value(abs(x), "", (self,), (sign,), "abs")

    def __abs__(self) -> Value:
        return self.abs()

    def sqrt(self) -> Value:
        """Square root, x ** 0.5 (x >= 0)."""
        if self.data < 0.0:
            raise ValueError(f"sqrt is defined only for non-negative numbers, got {self.data!r}")
        return self**0.5

    # ---- backpropagation -------------------------------------------------------------------

    def backward(self, seed: float = 1.0) -> None:
        """Fill in `.grad` of every Value this one depends on: d(self)/d(that value).

        `self.grad` is set to `seed` (1.0: the derivative of a value with respect to itself).
        Gradients of intermediate nodes are recomputed from zero on every call, so each of them
        holds its derivative afterwards. Gradients of leaves (parameters, inputs) *accumulate*
        across calls, as in PyTorch: call `zero_grad()` on the model, or set them to 0.0,
        before the next backward pass. Calling backward() twice on one graph doubles the leaf
        gradients and leaves the intermediate ones as after the first call.
        """
        _apply_chain_rule(self, seed)


def _coerce(other: object) -> Value:
    """`other` as a Value: a Value is kept, a number becomes a constant leaf.

    Returns NotImplemented for anything else, so that Python raises its usual TypeError
    ("unsupported operand type(s) for +: 'Value' and 'str'"), which names both types.
    """
    if isinstance(other, Value):
        return other
    # float and int first: the common case, without the slower check against the Real ABC
    if type(other) is float or type(other) is int or (
        isinstance(other, Real) and not isinstance(other, bool)
    ):
        return Value(float(other), "", (), (), Op.CONST)
    return NotImplemented  # type: ignore[return-value]


def _value_power(base: Value, exponent: Value) -> Value:
    """base ** exponent when the exponent is itself a Value (so it gets a gradient too)."""
    a, b = base.data, exponent.data
    if a <= 0.0:
        raise ValueError(
            f"a Value exponent needs a positive base (got {a!r}): d(a^b)/db = a^b log a"
        )
    out = _power(a, b)
    # d(a^b)/da = b a^(b-1),  d(a^b)/db = a^b log a
    return Value(out, "", (base, exponent), (b * _power(a, b - 1.0), out * math.log(a)), "pow")


def _power(base: float, exponent: float) -> float:
    """base ** exponent, overflowing to ±inf (as float multiplication does) instead of raising."""
    try:
        return base**exponent
    except OverflowError:
        negative = base < 0.0 and exponent % 2.0 == 1.0
        return -math.inf if negative else math.inf


def topological_order(root: Value) -> list[Value]:
    """Every Value that `root` depends on, `root` first, each node before all of its parents.

    Kahn's algorithm, iteratively: first count, for each node, how many of its consumers lie
    in the graph; then release a node once all its consumers have been placed. Processing
    the nodes in this order means a node's gradient is complete before it is passed on.
    (Values are dict keys by identity: `Value` defines no `__eq__`/`__hash__`, on purpose.)
    """
    consumers: dict[Value, int] = {root: 0}
    stack = [root]
    while stack:
        node = stack.pop()
        for parent in node._parents:
            if parent in consumers:
                consumers[parent] += 1
            else:
                consumers[parent] = 1
                stack.append(parent)
    order: list[Value] = []
    ready = [root]
    while ready:
        node = ready.pop()
        order.append(node)
        for parent in node._parents:
            remaining = consumers[parent] - 1
            consumers[parent] = remaining
            if remaining == 0:
                ready.append(parent)
    return order


def backpropagate(root: Value, seed: float = 1.0) -> list[Value]:
    """Reverse-mode differentiation from `root`: the chain rule applied node by node.

    Returns the nodes processed (root first, in that order), then the leaves reached. See
    `Value.backward` for how gradients of intermediate nodes and of leaves are treated.
    """
    order = _apply_chain_rule(root, seed)
    return order + _leaves_below(order)


def _apply_chain_rule(root: Value, seed: float) -> list[Value]:
    """The backward pass itself; returns the non-leaf nodes in the order they were processed.

    The same walk as `topological_order`, with the chain rule applied as each node is
    released (its gradient is complete by then), and three savings that matter on big graphs:
    leaves (parameters, inputs, constants) take no part in the ordering -- they pass nothing
    on, they only receive; each node counts its pending consumers in its own `_pending` slot
    instead of a dict; and the cyclic garbage collector is paused meanwhile (see `gc_paused`).
    Non-leaf nodes are processed in exactly the order `topological_order` gives them, so
    every gradient is accumulated in the same order, bit for bit.
    """
    seed = as_float(seed)
    with gc_paused():
        try:
            nodes = _count_pending_consumers(root)
            for node in nodes:
                node.grad = 0.0
            root.grad = seed
            order: list[Value] = []
            ready = [root]
            while ready:
                node = ready.pop()
                order.append(node)
                upstream = node.grad
                for parent, local in zip(node._parents, node._local_grads):
                    parent.grad += local * upstream  # the chain rule, one edge
                    if parent._parents:  # release a non-leaf parent after its last consumer
                        parent._pending -= 1
                        if not parent._pending:
                            ready.append(parent)
        except BaseException:  # e.g. KeyboardInterrupt: leave every counter at 0 again
            for node in topological_order(root):
                node._pending = 0
            raise
        return order


def _count_pending_consumers(root: Value) -> list[Value]:
    """Set each non-leaf Value's `_pending` to its number of consumers under `root`.

    Returns those Values, `root` first. A counter of 0 means "not reached yet", which holds
    for every Value before the walk, since the backward pass counts each one back down to 0.
    """
    nodes = [root]
    stack = [root]
    while stack:
        node = stack.pop()
        for parent in node._parents:
            if parent._parents:
                if parent._pending:
                    parent._pending += 1
                else:
                    parent._pending = 1
                    nodes.append(parent)
                    stack.append(parent)
    return nodes


def _leaves_below(order: list[Value]) -> list[Value]:
    """The distinct leaves that the nodes of `order` read, in the order they are first read."""
    parents = dict.fromkeys(chain.from_iterable(map(attrgetter("_parents"), order)))
    return [node for node in parents if not node._parents]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector inside a `with` block; restore it after.

    Values never form reference cycles (a node points only back to its parents), so
    reference counting alone frees a graph the moment it is dropped; the cyclic collector
    would only rescan the millions of live Values again and again while a big graph is
    being built. Wrap graph building and backward in it: `with gc_paused(): ...`.
    """
    was_enabled = gc.isenabled()
    try:  # disabled inside the try: a Ctrl-C right after it still re-enables the collector
        gc.disable()
        yield
    finally:
        if was_enabled:
            gc.enable()


def weighted_sum(weights: Sequence[Value], inputs: Sequence[Value], bias: Value) -> Value:
    """One node for w·x + b, with 2n+1 parents: the fused form of a neuron's pre-activation.

    Its value is computed in the same order as `bias + w1*x1 + w2*x2 + ...`, and its local
    derivatives are d/dw_i = x_i, d/dx_i = w_i, d/db = 1, so it gives exactly the numbers a
    chain of `*` and `+` nodes gives, with n+1 nodes fewer to build and walk.
    """
    weights, inputs = list(weights), list(inputs)
    check_values([*weights, *inputs, bias], "weighted_sum")
    if len(weights) != len(inputs):
        raise ValueError(f"weighted_sum: {len(weights)} weights but {len(inputs)} inputs")
    return _weighted_sum(weights, inputs, bias)


def _weighted_sum(weights: Sequence[Value], inputs: Sequence[Value], bias: Value) -> Value:
    """`weighted_sum` without the argument checks, for callers that made the Values (nn)."""
    w_data = [w.data for w in weights]
    x_data = [x.data for x in inputs]
    total = bias.data
    for w, x in zip(w_data, x_data):
        total += w * x
    # d/dw_i = x_i, d/dx_i = w_i, d/db = 1
    return Value(total, "", (*weights, *inputs, bias), (*x_data, *w_data, 1.0), Op.WEIGHTED_SUM)


def logsumexp(values: Iterable[Value]) -> Value:
    """log Σ exp(v_i), computed stably (shifted by the maximum); d/dv_i = softmax(v)_i.

    An infinite or NaN input gives an infinite or NaN result with NaN local derivatives,
    as float arithmetic would, so a training loop's NaN guard sees it.
    """
    parents = tuple(values)
    if not parents:
        raise ValueError("logsumexp of an empty list")
    check_values(parents, "logsumexp")
    data = [v.data for v in parents]
    top = max(data)
    if not all(math.isfinite(x) for x in data):
        value = math.nan if any(math.isnan(x) for x in data) else top
        return Value(value, "", parents, (math.nan,) * len(parents), "logsumexp")
    exps = [math.exp(x - top) for x in data]
    total = sum(exps)
    return Value(top + math.log(total), "", parents, tuple(e / total for e in exps), "logsumexp")
