"""The scalar autograd engine: `Value`, its operations, and backpropagation (docs/engine.md).

Each op computes its forward value and, beside it, the local derivative towards each parent;
`backward()` applies `parent.grad += local * node.grad` to every edge in topological order.
"""

from __future__ import annotations

import enum
import math

from ._checks import as_float, is_real


class Op(enum.Enum):
    """The kind of a node, `Value.op` (compare with members, never labels): `.symbol`, `.word`."""

    LEAF = ("", "leaf")  # an input or a parameter: made by hand, not computed
    CONST = ("const", "const")  # a plain number lifted into the graph by arithmetic
    ADD, SUB, MUL, DIV, NEG = ("+", "add"), ("-", "sub"), ("*", "mul"), ("/", "div"), ("neg", "neg")
    POW = ("**", "pow")  # x ** n for a number n, kept in the node's `arg`
    VALUE_POW = ("pow", "pow")  # a ** b with both Values
    EXP, LOG, TANH, SIGMOID = ("exp", "exp"), ("log", "log"), ("tanh", "tanh"), ("sigmoid", "sigmoid")
    RELU, SOFTPLUS, ABS, SQRT = ("relu", "relu"), ("softplus", "softplus"), ("abs", "abs"), ("sqrt", "sqrt")
    WEIGHTED_SUM = ("Σwx+b", "z")  # a neuron's w·x + b, parents (*w, *x, b)
    LOGSUMEXP, BCE = ("logsumexp", "logsumexp"), ("bce", "bce")  # BCE: bce_with_logits, the label in `arg`
    L2 = ("αΣp²", "l2")  # losses.l2_penalty: alpha is the node's `arg`
    NORMALISE = ("normalise", "normalise")  # norm.py: x̂ = (x - μ)/√(σ² + eps)
    MEAN, VARIANCE = ("mean of x", "mu"), ("variance of x", "var")  # LayerNorm's, over one example
    BATCH_MEAN, BATCH_SUM = ("mean", "mean"), ("Σ", "sum")  # batch.py: 1/m (or 1) to each example's loss
    BATCH_STAT = ("over the batch", "stat")  # BatchNorm's mean or variance of a feature over the batch

    def __init__(self, symbol: str, word: str) -> None:
        self.symbol, self.word = symbol, word

    def show(self, arg: float | None = None) -> str:
        """Display text for a node of this kind with argument `arg`: "**2" for x ** 2."""
        return f"**{arg:g}" if self is Op.POW and arg is not None else self.symbol


class Value:
    """A scalar in a graph: `data`, `grad` (d output/d this after `backward()`), its parents, the
    local derivative towards each, the `op` (an `Op`) that made it and that op's `arg` if it has
    one (the n of x ** n, the label y of a bce node)."""

    __slots__ = ("data", "grad", "label", "op", "arg", "_parents", "_local_grads")

    def __init__(self, data: float, label: str = "", parents: tuple[Value, ...] = (),
                 local_grads: tuple[float, ...] = (), op: Op = Op.LEAF, arg: float | None = None) -> None:
        if type(label) is not str or type(op) is not Op:
            raise TypeError(f"a Value's label must be a str and its op an Op, got {label!r:.40}, {op!r:.40}")
        self.data: float = data if type(data) is float else as_float(data)
        self.grad, self.label = 0.0, label
        self.op, self.arg, self._parents, self._local_grads = op, arg, parents, local_grads

    def __repr__(self) -> str:
        name = f"{self.label}, " if self.label else ""
        return f"Value({name}data={self.data:.6g}, grad={self.grad:.6g})"

    @property
    def is_leaf(self) -> bool:
        """True for a Value not computed from others: an input, a parameter or a constant."""
        return not self._parents

    def __add__(self, other: Value | float) -> Value:
        if (other := _coerce(other)) is NotImplemented:
            return NotImplemented
        return Value(self.data + other.data, "", (self, other), (1.0, 1.0), Op.ADD)  # d/da = d/db = 1

    def __sub__(self, other: Value | float) -> Value:
        if (other := _coerce(other)) is NotImplemented:
            return NotImplemented
        return Value(self.data - other.data, "", (self, other), (1.0, -1.0), Op.SUB)  # d/da = 1, d/db = -1

    def __mul__(self, other: Value | float) -> Value:
        if (other := _coerce(other)) is NotImplemented:
            return NotImplemented
        a, b = self.data, other.data
        return Value(a * b, "", (self, other), (b, a), Op.MUL)  # d(ab)/da = b, d(ab)/db = a

    def __truediv__(self, other: Value | float) -> Value:
        if (other := _coerce(other)) is NotImplemented:
            return NotImplemented
        a, b = self.data, other.data
        if b == 0.0:
            raise ZeroDivisionError(f"division by zero: {a!r} / {other!r}")
        q = a / b  # exactly Python's a / b; d(a/b)/da = 1/b, d(a/b)/db = -a/b² = -q/b
        return Value(q, "", (self, other), (1.0 / b, -(q / b)), Op.DIV)

    def __pow__(self, exponent: Value | float) -> Value:
        if isinstance(exponent, Value):  # d(a^b)/da = b a^(b-1), d(a^b)/db = a^b log a: a must be > 0
            a, b = self.data, exponent.data
            if a <= 0.0:
                raise ValueError(f"a Value exponent needs a positive base, got {a!r} ** {b!r}")
            out = _power(a, b)
            return Value(out, "", (self, exponent), (b * _power(a, b - 1.0), out * math.log(a)), Op.VALUE_POW)
        n, x = as_float(exponent, "the exponent"), self.data
        if x == 0.0 and n < 0.0:
            raise ZeroDivisionError(f"0 cannot be raised to a negative power ({n!r})")
        if x < 0.0 and math.isfinite(n) and not n.is_integer():
            raise ValueError(f"a negative base ({x!r}) to a non-integer power ({n!r}) is not real")
        # d(x^n)/dx = n x^(n-1): 0 for n = 0, and +inf at x = 0 for 0 < n < 1
        local = 0.0 if n == 0.0 else math.inf if x == 0.0 and n < 1.0 else n * _power(x, n - 1.0)
        return Value(_power(x, n), "", (self,), (local,), Op.POW, n)

    def __neg__(self) -> Value:
        return Value(-self.data, "", (self,), (-1.0,), Op.NEG)  # d(-x)/dx = -1

    __radd__, __rmul__ = __add__, __mul__  # b + a and b * a: the same nodes as a + b and a * b

    def __rsub__(self, other: float) -> Value:
        return NotImplemented if (o := _coerce(other)) is NotImplemented else o - self

    def __rtruediv__(self, other: float) -> Value:
        return NotImplemented if (o := _coerce(other)) is NotImplemented else o / self

    def __rpow__(self, base: float) -> Value:
        return NotImplemented if (o := _coerce(base)) is NotImplemented else o**self

    def exp(self) -> Value:
        """e^x (+inf past ~709, as float arithmetic overflows); d/dx e^x = e^x."""
        try:
            out = math.exp(self.data)
        except OverflowError:
            out = math.inf
        return Value(out, "", (self,), (out,), Op.EXP)

    def log(self) -> Value:
        """Natural logarithm, for x > 0 (NaN gives NaN); d/dx log x = 1/x."""
        if (x := self.data) <= 0.0:
            raise ValueError(f"log is defined only for positive numbers, got {x!r}")
        return Value(math.log(x), "", (self,), (1.0 / x,), Op.LOG)

    def tanh(self) -> Value:
        """Hyperbolic tangent; d/dx tanh x = 1 - tanh(x)²."""
        t = math.tanh(self.data)
        return Value(t, "", (self,), (1.0 - t * t,), Op.TANH)

    def sigmoid(self) -> Value:
        """Logistic sigmoid σ(x) = 1/(1 + e^-x), without overflow; dσ/dx = σ(1 - σ)."""
        s = stable_sigmoid(self.data)
        return Value(s, "", (self,), (s * (1.0 - s),), Op.SIGMOID)

    def relu(self) -> Value:
        """max(0, x); d/dx is 1 for x > 0 and 0 for x <= 0 (as PyTorch); NaN for NaN, never 0."""
        x = self.data
        out, local = (x, 1.0) if x > 0.0 else (0.0, 0.0) if x <= 0.0 else (x, x)
        return Value(out, "", (self,), (local,), Op.RELU)

    def softplus(self) -> Value:
        """log(1 + e^x), without overflow; d/dx softplus(x) = σ(x)."""
        return Value(stable_softplus(self.data), "", (self,), (stable_sigmoid(self.data),), Op.SOFTPLUS)

    def abs(self) -> Value:
        """|x|; d/dx |x| = sign(x), 0 at x = 0 and NaN for NaN."""
        x = self.data
        sign = 1.0 if x > 0.0 else -1.0 if x < 0.0 else 0.0 if x == 0.0 else x
        return Value(abs(x), "", (self,), (sign,), Op.ABS)
    __abs__ = abs

    def sqrt(self) -> Value:
        """√x for x >= 0, exactly `math.sqrt`; d/dx √x = 1/(2√x), +inf at 0."""
        if (x := self.data) < 0.0:
            raise ValueError(f"sqrt is defined only for non-negative numbers, got {x!r}")
        root = math.sqrt(x)
        return Value(root, "", (self,), (0.5 / root if root else math.inf,), Op.SQRT)

    def backward(self, seed: float = 1.0) -> None:
        """Set `.grad` of every Value this one depends on to d(self)/d(that Value): recomputed for
        computed nodes, *accumulated* in leaves (as in PyTorch: `zero_grad()` between steps)."""
        order = topological_order(self)  # each node before its parents
        for node in order:
            if node._parents:
                node.grad = 0.0
        self.grad = as_float(seed, "backward's seed")
        for node in order:  # from the output back to the inputs: the chain rule on every edge
            for parent, local in zip(node._parents, node._local_grads, strict=True):
                parent.grad += local * node.grad


def topological_order(root: Value) -> list[Value]:
    """Every Value `root` depends on, `root` first, each before its parents, the leaves last:
    Kahn's algorithm (no recursion) releases a node once all its consumers are placed."""
    consumers: dict[Value, int] = {root: 0}
    leaves: dict[Value, None] = {}  # an ordered set: a leaf passes nothing on, so it goes last
    stack = [root]
    while stack:
        for parent in stack.pop()._parents:
            if not parent._parents:
                leaves[parent] = None
            elif parent in consumers:
                consumers[parent] += 1
            else:
                consumers[parent] = 1
                stack.append(parent)
    order, ready = [], [root]
    while ready:
        order.append(node := ready.pop())
        for parent in node._parents:
            if parent._parents:
                consumers[parent] -= 1
                if not consumers[parent]:
                    ready.append(parent)
    return order + list(leaves)


def _coerce(other: object) -> Value:
    """A Value as it is, a number as a constant leaf, else NotImplemented (Python's TypeError)."""
    if isinstance(other, Value):
        return other
    if type(other) in (float, int) or is_real(other):
        return Value(float(other), op=Op.CONST)  # type: ignore[arg-type]
    return NotImplemented  # type: ignore[return-value]


def _power(base: float, exponent: float) -> float:
    """base ** exponent, overflowing to ±inf (as float multiplication does) instead of raising."""
    try:
        return base**exponent
    except OverflowError:
        return -math.inf if base < 0.0 and exponent % 2.0 == 1.0 else math.inf


def stable_sigmoid(x: float) -> float:
    """1/(1 + e^-x) for a float, without overflow at either end."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)  # x < 0 or NaN: cannot overflow
    return e / (1.0 + e)


def stable_softplus(x: float) -> float:
    """log(1 + e^x) for a float, without overflow: max(x, 0) + log(1 + e^-|x|)."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))
