"""The scalar autograd engine: `Value`, its operations, and reverse-mode backpropagation.

Every operation creates one new `Value` that remembers its parents and, beside its forward
value, the *local derivative* of its output with respect to each parent. `backward()` then puts
the graph in topological order (each node before the nodes it was computed from) and walks it
once, from the output back to the leaves, applying the chain rule at every edge:

    parent.grad += local_derivative * node.grad

That single rule is the whole of backpropagation; a batch of examples is nothing more than a
graph with one per-example sub-graph per example, joined by a batch-loss node (see `batch.py`).

Forward values are exactly the floats Python computes: `Value(a) / b` is `a / b` bit for bit,
`Value(x).exp()` is `math.exp(x)`, and NaN goes in, NaN comes out.
"""

from __future__ import annotations

import enum
import gc
import math
from contextlib import contextmanager
from numbers import Real
from typing import Iterable, Iterator, Sequence, Union

from ._checks import as_float

Number = Union[int, float]
Operand = Union["Value", int, float]


class Op(enum.Enum):
    """The kind of a node, stored in `Value.op`: compare `v.op` with these members; never recognise
    a node by its label. Each has a `.symbol` (display text) and a `.word` (identifier-safe)."""

    LEAF = ("", "leaf")  # an input or a parameter: made by hand, not computed
    CONST = ("const", "const")  # a plain number lifted into the graph by arithmetic
    ADD = ("+", "add")
    SUB = ("-", "sub")
    MUL = ("*", "mul")
    DIV = ("/", "div")
    NEG = ("neg", "neg")
    POW = ("**", "pow")  # x ** constant: the exponent is the node's `arg`
    VALUE_POW = ("pow", "pow")  # a ** b with both Values
    EXP = ("exp", "exp")
    LOG = ("log", "log")
    TANH = ("tanh", "tanh")
    SIGMOID = ("sigmoid", "sigmoid")
    RELU = ("relu", "relu")
    SOFTPLUS = ("softplus", "softplus")
    ABS = ("abs", "abs")
    SQRT = ("sqrt", "sqrt")
    WEIGHTED_SUM = ("Σwx+b", "z")  # a neuron's fused pre-activation (weighted_sum)
    LOGSUMEXP = ("logsumexp", "logsumexp")
    BCE = ("bce", "bce")  # bce_with_logits: the label is the node's `arg`
    L2 = ("αΣp²", "l2")  # l2_penalty: alpha is the node's `arg`
    NORMALISE = ("normalise", "normalise")  # norm.py's x̂ = (x - μ)/√(σ² + eps)
    MEAN = ("mean of x", "mu")  # LayerNorm: the mean of one example's features
    VARIANCE = ("variance of x", "var")  # LayerNorm: the variance of one example's features
    BATCH_MEAN = ("mean", "mean")  # the batch-loss node (batch.batch_mean): 1/m to each example
    BATCH_SUM = ("Σ", "sum")  # the batch-sum node (batch.batch_sum): 1 to each example
    BATCH_STAT = ("over the batch", "stat")  # a feature's batch mean or variance (norm.BatchNorm)

    def __init__(self, symbol: str, word: str) -> None:
        self.symbol = symbol
        self.word = word

    def show(self, arg: float | None = None) -> str:
        """The display text of a node of this kind with argument `arg`: "**2" for x ** 2."""
        return f"**{arg:g}" if self is Op.POW and arg is not None else self.symbol


class Value:
    """A scalar in a computation graph: its `data`, its gradient `grad`, and how it was made.

    `Value(2.0, "w")` is a leaf (an input or a parameter). Operations make the other nodes,
    as `Value(data, parents=(a, b), local_grads=(da, db), op=Op.MUL)`: `parents` are the Values
    this one was computed from and `local_grads` the partial derivatives of this value with
    respect to each of them, in the same order. `data` is the forward value, `grad` is
    d(output)/d(this value) after `output.backward()`.
    """

    __slots__ = ("data", "grad", "_parents", "_local_grads", "_op", "_arg", "label", "_pending", "_pass")
    _pending: int  # backward's scratch: consumers not yet processed in the pass stamped `_pass`
    # (set only once a pass has stamped the node: never read before, so never initialised)

    def __init__(
        self,
        data: Number,
        label: str = "",
        parents: tuple[Value, ...] = (),
        local_grads: tuple[float, ...] = (),
        op: Op = Op.LEAF,
        arg: float | None = None,
    ) -> None:
        self.data: float = data if type(data) is float else as_float(data)
        if type(label) is not str:
            raise TypeError(f"a Value's label must be a str, got {type(label).__name__}: {label!r:.40}")
        self.grad: float = 0.0
        self._parents = parents
        self._local_grads = local_grads
        self._op = op
        self._arg = arg
        self.label = label
        self._pass: object = None  # the backward pass that last counted this node's consumers

    def __repr__(self) -> str:
        name = f"{self.label}, " if self.label else ""
        return f"Value({name}data={self.data:.6g}, grad={self.grad:.6g})"

    @property
    def op(self) -> Op:
        """The operation that made this Value (an `Op`; Op.LEAF for an input or parameter)."""
        return self._op

    @property
    def arg(self) -> float | None:
        """The op's argument, if it has one: the exponent of x ** n, the label of a bce node."""
        return self._arg

    @property
    def is_leaf(self) -> bool:
        """True for a Value not computed from others: an input, a parameter or a constant."""
        return not self._parents

    # ---- arithmetic: the forward value, and beside it the local derivative of each parent ---

    def __add__(self, other: Operand) -> Value:
        other = _coerce(other)
        if other is NotImplemented:
            return NotImplemented
        # d(a+b)/da = 1, d(a+b)/db = 1
        return Value(self.data + other.data, parents=(self, other), local_grads=(1.0, 1.0), op=Op.ADD)

    def __sub__(self, other: Operand) -> Value:
        other = _coerce(other)
        if other is NotImplemented:
            return NotImplemented
        # d(a-b)/da = 1, d(a-b)/db = -1
        return Value(self.data - other.data, parents=(self, other), local_grads=(1.0, -1.0), op=Op.SUB)

    def __mul__(self, other: Operand) -> Value:
        a, other = self.data, _coerce(other)
        if other is NotImplemented:
            return NotImplemented
        b = other.data
        # d(ab)/da = b, d(ab)/db = a
        return Value(a * b, parents=(self, other), local_grads=(b, a), op=Op.MUL)

    def __truediv__(self, other: Operand) -> Value:
        a, other = self.data, _coerce(other)
        if other is NotImplemented:
            return NotImplemented
        b = other.data
        if b == 0.0:
            raise ZeroDivisionError(f"division by zero: {a!r} / {other!r}")
        quotient = a / b  # exactly Python's a / b (not a * (1/b), which can differ by an ulp)
        # d(a/b)/da = 1/b, d(a/b)/db = -a/b² = -(a/b)/b
        return Value(quotient, parents=(self, other), local_grads=(1.0 / b, -(quotient / b)), op=Op.DIV)

    def __pow__(self, exponent: Operand) -> Value:
        if isinstance(exponent, Value):
            return _value_power(self, exponent)
        n, x = as_float(exponent, "the exponent"), self.data
        if x == 0.0 and n < 0.0:
            raise ZeroDivisionError(f"0 cannot be raised to a negative power ({n!r})")
        if x < 0.0 and math.isfinite(n) and not n.is_integer():
            raise ValueError(f"a negative base ({x!r}) to a non-integer power ({n!r}) is not real")
        # d(x^n)/dx = n x^(n-1); at x = 0 that is 0 for n = 0 or n >= 1 and +inf for 0 < n < 1
        if n == 0.0:
            local = 0.0
        elif x == 0.0 and n < 1.0:
            local = math.inf
        else:
            local = n * _power(x, n - 1.0)
        return Value(_power(x, n), parents=(self,), local_grads=(local,), op=Op.POW, arg=n)

    def __neg__(self) -> Value:
        # d(-x)/dx = -1
        return Value(-self.data, parents=(self,), local_grads=(-1.0,), op=Op.NEG)

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

    # ---- elementwise functions: the forward value, and beside it the local derivative ---------

    def exp(self) -> Value:
        """e^x; its derivative is itself. Overflows to +inf (like float arithmetic) past ~709."""
        try:
            out = math.exp(self.data)
        except OverflowError:
            out = math.inf
        # d(e^x)/dx = e^x
        return Value(out, parents=(self,), local_grads=(out,), op=Op.EXP)

    def log(self) -> Value:
        """Natural logarithm, defined for x > 0 (and NaN gives NaN); d/dx log x = 1/x."""
        x = self.data
        if x <= 0.0:
            raise ValueError(f"log is defined only for positive numbers, got {x!r}")
        # d(log x)/dx = 1/x
        return Value(math.log(x), parents=(self,), local_grads=(1.0 / x,), op=Op.LOG)

    def tanh(self) -> Value:
        """Hyperbolic tangent; d/dx tanh x = 1 - tanh(x)^2."""
        t = math.tanh(self.data)
        # d(tanh x)/dx = 1 - tanh(x)²
        return Value(t, parents=(self,), local_grads=(1.0 - t * t,), op=Op.TANH)

    def sigmoid(self) -> Value:
        """Logistic sigmoid 1/(1+e^-x), computed without overflow; derivative s(1-s)."""
        s = stable_sigmoid(self.data)
        # dσ/dx = σ(1 - σ)
        return Value(s, parents=(self,), local_grads=(s * (1.0 - s),), op=Op.SIGMOID)

    def relu(self) -> Value:
        """max(0, x); its derivative is 1 for x > 0 and 0 otherwise (0 at x = 0, like PyTorch).
        NaN in gives NaN out, with a NaN derivative (as in PyTorch), never a silent 0."""
        x = self.data
        # d relu/dx = 1 for x > 0, 0 for x <= 0
        if x > 0.0:
            return Value(x, parents=(self,), local_grads=(1.0,), op=Op.RELU)
        if x <= 0.0:
            return Value(0.0, parents=(self,), local_grads=(0.0,), op=Op.RELU)
        return Value(x, parents=(self,), local_grads=(x,), op=Op.RELU)  # NaN

    def softplus(self) -> Value:
        """log(1 + e^x), computed without overflow; its derivative is sigmoid(x)."""
        x = self.data
        # d softplus/dx = σ(x)
        return Value(stable_softplus(x), parents=(self,), local_grads=(stable_sigmoid(x),), op=Op.SOFTPLUS)

    def abs(self) -> Value:
        """|x|; its derivative is sign(x), taken as 0 at x = 0 (NaN for NaN)."""
        x = self.data
        # d|x|/dx = sign(x)
        sign = 1.0 if x > 0.0 else -1.0 if x < 0.0 else 0.0 if x == 0.0 else x
        return Value(abs(x), parents=(self,), local_grads=(sign,), op=Op.ABS)

    def __abs__(self) -> Value:
        return self.abs()

    def sqrt(self) -> Value:
        """Square root (x >= 0), exactly `math.sqrt`; d/dx √x = 1/(2√x), +inf at 0."""
        x = self.data
        if x < 0.0:
            raise ValueError(f"sqrt is defined only for non-negative numbers, got {x!r}")
        root = math.sqrt(x)
        # d√x/dx = 1/(2√x)
        local = 0.5 / root if root else math.inf
        return Value(root, parents=(self,), local_grads=(local,), op=Op.SQRT)

    # ---- backpropagation -------------------------------------------------------------------

    def backward(self, seed: float = 1.0) -> None:
        """Fill in `.grad` of every Value this one depends on: d(self)/d(that value).

        The algorithm is the textbook one, spelled out in `textbook_backward`: put the graph in
        topological order, each node before its parents (`topological_order`); set this
        node's grad to `seed`; then, node by node in that order, apply the chain rule
        `parent.grad += local * node.grad` to each of its edges. It runs as `fused_backward`,
        the same walk in one pass, which gives bit for bit the same numbers, faster.

        `self.grad` is set to `seed` (1.0: the derivative of a value with respect to itself).
        Gradients of intermediate nodes are recomputed from zero on every call, so each of them
        holds its derivative afterwards. Gradients of leaves (parameters, inputs) *accumulate*
        across calls, as in PyTorch: call `zero_grad()` on the model, or set them to 0.0,
        before the next backward pass. Calling backward() twice on one graph doubles the leaf
        gradients and leaves the intermediate ones as after the first call. An interrupted
        pass (Ctrl-C) leaves the leaves' gradients partly accumulated, but never affects a
        later pass.
        """
        fused_backward(self, as_float(seed, "backward's seed"))


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
        return Value(float(other), op=Op.CONST)  # type: ignore[arg-type]
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
    local_grads = (b * _power(a, b - 1.0), out * math.log(a))
    return Value(out, parents=(base, exponent), local_grads=local_grads, op=Op.VALUE_POW)


def _power(base: float, exponent: float) -> float:
    """base ** exponent, overflowing to ±inf (as float multiplication does) instead of raising."""
    try:
        return base**exponent
    except OverflowError:
        negative = base < 0.0 and exponent % 2.0 == 1.0
        return -math.inf if negative else math.inf


def stable_sigmoid(x: float) -> float:
    """1 / (1 + e^-x) for a float, without overflow at either end (the one home of the formula,
    used by `Value.sigmoid`, `Value.softplus` and `losses.bce_with_logits`)."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)  # x < 0 or NaN: e^x cannot overflow
    return e / (1.0 + e)


def stable_softplus(x: float) -> float:
    """log(1 + e^x) for a float, without overflow: max(x, 0) + log(1 + e^-|x|)."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


# ---- backpropagation ---------------------------------------------------------------------------

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


def textbook_backward(root: Value, seed: float = 1.0) -> None:
    """Backpropagation as a textbook writes it: a topological order, then the chain rule.

    This is the definition `Value.backward()` follows; `fused_backward` computes exactly
    these numbers (the same additions in the same order), in one walk instead of two.
    """
    order = topological_order(root)  # root first, every node before its parents
    for node in order:
        if node._parents:  # intermediate nodes start from zero; leaves accumulate
            node.grad = 0.0
    root.grad = as_float(seed, "backward's seed")
    for node in order:  # from the output back to the inputs
        for parent, local in zip(node._parents, node._local_grads):
            parent.grad += local * node.grad  # the chain rule, one edge


def fused_backward(root: Value, seed: float) -> None:
    """The backward pass `Value.backward()` runs: `textbook_backward` in one walk, faster.

    The chain rule is applied to a node's edges the moment its gradient is complete, i.e.
    when all its consumers have been processed, so ordering and chain rule share one walk
    (Kahn's algorithm, as in `topological_order`). Three savings matter on big graphs:
    leaves (parameters, inputs, constants) take no part in the ordering -- they pass nothing
    on, they only receive; each node counts its pending consumers in its own `_pending` slot
    instead of a dict; and the cyclic garbage collector is paused meanwhile (`gc_paused`).
    Non-leaf nodes are processed in exactly the order `topological_order` gives them, so
    every gradient is accumulated in the same order, bit for bit.

    Each pass stamps the nodes it counts with a token of its own (`_pass`): a counter left
    over from an interrupted pass belongs to an old token and is simply counted afresh, so a
    Ctrl-C at any moment cannot affect a later pass, and there is nothing to clean up.
    """
    with gc_paused():
        _count_pending_consumers(root, this_pass=object())
        root.grad = seed
        ready = [root]
        while ready:
            node = ready.pop()
            upstream = node.grad
            for parent, local in zip(node._parents, node._local_grads):
                parent.grad += local * upstream  # the chain rule, one edge
                if parent._parents:  # release a non-leaf parent after its last consumer
                    parent._pending -= 1
                    if not parent._pending:
                        ready.append(parent)


def _count_pending_consumers(root: Value, this_pass: object) -> None:
    """Stamp each non-leaf Value under `root` with `this_pass`, set its `_pending` to its number
    of consumers under `root`, and its grad to 0 (intermediate gradients start from zero)."""
    stack = [root]
    while stack:
        node = stack.pop()
        for parent in node._parents:
            if parent._parents:
                if parent._pass is this_pass:
                    parent._pending += 1
                else:  # first reached in this pass: whatever an old pass left is overwritten
                    parent._pass = this_pass
                    parent._pending = 1
                    parent.grad = 0.0
                    stack.append(parent)


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


# ---- fused nodes ---------------------------------------------------------------------------------

def weighted_sum(
    weights: Sequence[Value], inputs: Sequence[Value], bias: Value, *, check: bool = True
) -> Value:
    """One node for w·x + b, with 2n+1 parents: the fused form of a neuron's pre-activation.

    Its value is computed in the same order as `bias + w1*x1 + w2*x2 + ...`, and its local
    derivatives are d/dw_i = x_i, d/dx_i = w_i, d/db = 1, so it gives exactly the numbers a
    chain of `*` and `+` nodes gives, with n+1 nodes fewer to build and walk.
    `check=False` skips the argument checks, for a caller that made the Values itself
    (a neuron, on its inner path).
    """
    if check:
        weights, inputs = list(weights), list(inputs)
        check_values([*weights, *inputs, bias], "weighted_sum")
        if len(weights) != len(inputs):
            raise ValueError(f"weighted_sum: {len(weights)} weights but {len(inputs)} inputs")
    w_data = [w.data for w in weights]
    x_data = [x.data for x in inputs]
    total = bias.data
    for w, x in zip(w_data, x_data):
        total += w * x
    # d/dw_i = x_i, d/dx_i = w_i, d/db = 1
    return Value(total, parents=(*weights, *inputs, bias), local_grads=(*x_data, *w_data, 1.0),
                 op=Op.WEIGHTED_SUM)


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
        return Value(value, parents=parents, local_grads=(math.nan,) * len(parents), op=Op.LOGSUMEXP)
    exps = [math.exp(x - top) for x in data]
    total = sum(exps)
    # d/dv_i = e^(v_i - top) / Σ_j e^(v_j - top) = softmax(v)_i
    return Value(top + math.log(total), parents=parents, local_grads=tuple(e / total for e in exps),
                 op=Op.LOGSUMEXP)


def check_values(
    items: Sequence[object], name: str, item: str = "item", expected: str = "a Value"
) -> None:
    """Raise a TypeError naming the first of `items` that is not a Value, e.g.
    "SGD: parameter 2 is float, expected a Value" (`name`: the function; `item`: what one of
    `items` is called there; `expected`: what it should have been)."""
    for i, x in enumerate(items):
        if not isinstance(x, Value):
            raise TypeError(f"{name}: {item} {i} is {type(x).__name__}, expected {expected}")
