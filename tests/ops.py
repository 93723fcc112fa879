"""ONE table of the engine's operations, shared by every test that drives ops (minitorch-style).

Each `Case` is one operation in one form (`Value + Value`, `Value + 2.5`, `2.5 + Value` are three
cases): the operation on its arguments, its reference on plain floats (Python's own float
arithmetic or `math`), the domain of each argument, a point inside that domain, and whether the
engine's forward value must equal the reference bit for bit.

An argument is a Value unless its domain is a constant ("const", "const+"), which is passed
as a plain number. The domains:

    any       any float                     positive  > 0 (log, sqrt, a base with a real power)
    nonzero   a divisor, away from 0        off0/off1/off-1  away from a kink at 0, 1 or -1
    const     a plain number, |k| in [0.5, 3), either sign      const+  the same, positive

The table drives `pytest.mark.parametrize` (`NAMES`, `CASES`) and hypothesis (`arguments`,
and the random-graph interpreter in test_engine.py, which applies each argument's domain as a
guard inside the graph).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

from hypothesis import strategies as st

from micrograd_batch import Value, batch_mean, batch_sum, bce_with_logits, hinge, mse, softmax_cross_entropy
from micrograd_batch.losses import l2_penalty, logsumexp
from micrograd_batch.nn import weighted_sum


@dataclass(frozen=True)
class Case:
    """One operation in one form; see the module docstring."""

    name: str
    apply: Callable[..., Any]  # the operation: Values in (and plain numbers for constants)
    domains: tuple[str, ...]  # one per argument
    point: tuple[float, ...]  # inside the domain, away from kinks
    reference: Callable[..., float] | None = None  # on floats; None: `apply` itself on floats
    exact: bool = False  # the forward value is bit for bit `reference` (Python's float op / math)

    @property
    def arity(self) -> int:
        return len(self.domains)

    def on_values(self, xs: Any) -> Any:
        """The op on `xs`, each argument made a Value unless its domain is a constant."""
        return self.apply(*(x if is_const(d) or isinstance(x, Value) else Value(x)
                            for x, d in zip(xs, self.domains, strict=True)))

    def on_floats(self, xs: Any) -> float:
        """The reference on plain floats (a Value argument is its float, as Value(x) holds)."""
        args = [x if is_const(d) else float(x) for x, d in zip(xs, self.domains, strict=True)]
        return (self.reference or self.apply)(*args)


def is_const(domain: str) -> bool:
    return domain.startswith("const")


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _lse(*xs: float) -> float:
    return math.log(math.fsum(math.exp(x) for x in xs))


A, AA = ("any",), ("any", "any")
CASES = [
    # arithmetic in every form: Value op Value, Value op number, number op Value (exact)
    Case("add", lambda a, b: a + b, AA, (0.7, -1.3), exact=True),
    Case("add const", lambda a, k: a + k, ("any", "const"), (0.7, 2.5), exact=True),
    Case("radd", lambda k, a: k + a, ("const", "any"), (2.5, 0.4), exact=True),
    Case("sub", lambda a, b: a - b, AA, (0.7, -1.3), exact=True),
    Case("sub const", lambda a, k: a - k, ("any", "const"), (0.7, 1.5), exact=True),
    Case("rsub", lambda k, a: k - a, ("const", "any"), (1.0, 0.4), exact=True),
    Case("mul", lambda a, b: a * b, AA, (0.7, -1.3), exact=True),
    Case("mul const", lambda a, k: a * k, ("any", "const"), (0.7, -2.0), exact=True),
    Case("rmul", lambda k, a: k * a, ("const", "any"), (2.0, 0.4), exact=True),
    Case("div", lambda a, b: a / b, ("any", "nonzero"), (0.7, -1.3), exact=True),
    Case("div const", lambda a, k: a / k, ("any", "const"), (0.3, 0.4), exact=True),
    Case("rdiv", lambda k, a: k / a, ("const", "nonzero"), (1.0, 0.4), exact=True),
    Case("pow value", lambda a, b: a ** b, ("positive", "any"), (1.4, 0.6), exact=True),
    Case("pow const", lambda a, k: a ** k, ("positive", "const"), (0.9, 1.7), exact=True),
    Case("rpow", lambda k, a: k ** a, ("const+", "any"), (2.0, 0.4), exact=True),
    Case("pow 2", lambda a: a ** 2, A, (-0.8,), exact=True),
    Case("pow 3", lambda a: a ** 3, A, (-0.8,), exact=True),
    Case("pow -1", lambda a: a ** -1, ("nonzero",), (1.3,), exact=True),
    Case("pow -2", lambda a: a ** -2, ("nonzero",), (1.3,), exact=True),
    Case("pow 0.5", lambda a: a ** 0.5, ("positive",), (2.2,), exact=True),
    Case("pow -1.5", lambda a: a ** -1.5, ("positive",), (2.2,), exact=True),
    Case("pow 0", lambda a: a ** 0, A, (0.4,), exact=True),
    Case("pow 1", lambda a: a ** 1, A, (0.4,), exact=True),
    Case("neg", lambda a: -a, A, (0.4,), exact=True),
    # elementwise functions
    Case("exp", lambda a: a.exp(), A, (0.3,), math.exp, exact=True),
    Case("log", lambda a: a.log(), ("positive",), (1.7,), math.log, exact=True),
    Case("tanh", lambda a: a.tanh(), A, (0.3,), math.tanh, exact=True),
    Case("sqrt", lambda a: a.sqrt(), ("positive",), (2.2,), math.sqrt, exact=True),
    Case("abs", lambda a: abs(a), ("off0",), (-0.4,), abs, exact=True),
    Case("abs method", lambda a: a.abs(), ("off0",), (-0.4,), abs, exact=True),
    Case("relu", lambda a: a.relu(), ("off0",), (0.3,), lambda x: max(x, 0.0)),
    Case("sigmoid", lambda a: a.sigmoid(), A, (-0.6,), _sigmoid),
    Case("softplus", lambda a: a.softplus(), A, (-0.4,), lambda x: math.log1p(math.exp(x))),
    # fused nodes
    Case("weighted_sum", lambda w1, w2, x1, x2, b: weighted_sum([w1, w2], [x1, x2], b), ("any",) * 5,
         (0.3, -1.2, 0.5, 0.25, 0.1), lambda w1, w2, x1, x2, b: b + w1 * x1 + w2 * x2, exact=True),
    Case("logsumexp", lambda *v: logsumexp(v), ("any",) * 3, (0.3, -1.2, 2.0), _lse),
    Case("batch_mean", lambda *v: batch_mean(v), ("any",) * 3, (0.3, -1.2, 2.0),
         lambda *x: math.fsum(x) / 3),
    Case("batch_sum", lambda *v: batch_sum(v), AA, (0.3, -1.2), lambda *x: math.fsum(x)),
    # losses
    Case("mse", lambda a, k: mse(a, k), ("any", "const"), (0.5, 2.0), lambda a, k: (a - k) ** 2),
    Case("mse 2", lambda a, b, k: mse([a, b], [k, -k]), ("any", "any", "const"), (0.5, -1.0, 0.7),
         lambda a, b, k: ((a - k) ** 2 + (b + k) ** 2) / 2),
    Case("bce y=1", lambda z: bce_with_logits(z, 1), A, (0.7,), lambda z: -math.log(_sigmoid(z))),
    Case("bce y=0", lambda z: bce_with_logits(z, 0), A, (0.7,), lambda z: -math.log(1 - _sigmoid(z))),
    Case("hinge y=1", lambda s: hinge(s, 1), ("off1",), (0.3,), lambda s: max(1 - s, 0.0)),
    Case("hinge y=-1", lambda s: hinge(s, -1), ("off-1",), (0.3,), lambda s: max(1 + s, 0.0)),
    Case("softmax ce y=0", lambda *z: softmax_cross_entropy(z, 0), ("any",) * 3, (0.3, -1.1, 2.0),
         lambda *z: _lse(*z) - z[0]),
    Case("softmax ce y=2", lambda *z: softmax_cross_entropy(z, 2), ("any",) * 3, (0.3, -1.1, 2.0),
         lambda *z: _lse(*z) - z[2]),
    Case("l2", lambda a, b, k: l2_penalty([a, b], k), ("any", "any", "const+"), (0.5, -1.0, 0.1),
         lambda a, b, k: k * (a * a + b * b)),
]
BY_NAME = {case.name: case for case in CASES}
NAMES = [case.name for case in CASES]
EXACT = [case.name for case in CASES if case.exact]
assert len(BY_NAME) == len(CASES), "case names must be unique"

# ---- hypothesis strategies for each domain, at moderate magnitudes (for gradient checks) -------

_magnitude = st.floats(0.5, 3.0)
DOMAIN_STRATEGIES = {
    "any": st.floats(-2.0, 2.0),
    "positive": st.floats(0.05, 3.0),
    "nonzero": st.builds(lambda m, s: m if s else -m, _magnitude, st.booleans()),
    "off0": st.floats(-2.0, 2.0).filter(lambda x: abs(x) > 0.01),
    "off1": st.floats(-2.0, 2.0).filter(lambda x: abs(x - 1.0) > 0.01),
    "off-1": st.floats(-2.0, 2.0).filter(lambda x: abs(x + 1.0) > 0.01),
    "const": st.builds(lambda m, s: m if s else -m, _magnitude, st.booleans()),
    "const+": _magnitude,
}


def arguments(case: Case) -> st.SearchStrategy[tuple[float, ...]]:
    """Arguments inside `case`'s domain, one per argument."""
    return st.tuples(*(DOMAIN_STRATEGIES[d] for d in case.domains))
