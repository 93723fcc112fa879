"""The batch-loss node: `batch_mean(L_1..L_m)` is ONE node with the per-example losses as parents
and local derivative 1/m to each, so one backward pass gives every parameter the mean of the
per-example gradients (docs/api.md); `as_inputs` makes one example's numbers its graph's leaves."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence, Set

from ._checks import as_float
from .engine import Op, Value, topological_order
from .module import check_values


def _as_losses(losses: Iterable[Value], name: str) -> tuple[Value, ...]:
    """The per-example losses as a non-empty tuple of Values."""
    if isinstance(losses, Value):
        raise TypeError(f"{name} takes a list of per-example loss Values, got a single Value")
    parents = tuple(losses)
    if not parents:
        raise ValueError(f"{name} of an empty batch: there must be at least one example")
    check_values(parents, name, expected="a per-example loss Value")
    return parents


def input_row(x: object, width: int, where: str | None = None) -> list:
    """THE input rule of the graph and compiled paths: one example's features, a sequence of `width` items
    (a list, tuple or array; not a str, dict, set or Value), as a list; `where` names it in errors."""
    if isinstance(x, (str, bytes, Value, Mapping, Set)) or not hasattr(x, "__len__") or not hasattr(x, "__iter__"):
        raise TypeError(f"{where or 'a model input'} must be a list of {width} numbers, got {type(x).__name__}")
    row = list(x)  # type: ignore[call-overload]
    if len(row) != width:
        raise ValueError(f"{where} has {len(row)} features, expected {width}" if where
                         else f"expected {width} inputs, got {len(row)}")
    return row


def as_inputs(x: object, width: int, *, where: str | None = None, finite: bool = False) -> list[Value]:
    """One example's inputs as Values (`input_row`'s rule; numbers become leaves x1, x2, ...). `finite`
    refuses NaN and inf: a ValueError for an input, a FloatingPointError for a Value computed upstream."""
    row = input_row(x, width, where)
    values = [v if isinstance(v, Value) else Value(as_float(v), f"x{j + 1}") for j, v in enumerate(row)]
    for j, v in enumerate(values if finite else ()):
        if not math.isfinite(v.data):
            raise (FloatingPointError if v._parents else ValueError)(
                f"{where or 'a model input'}, feature {j + 1} is {v.data}: expected finite numbers")
    return values


def _float_sum(numbers: Sequence[float]) -> float:
    """The correctly rounded sum (math.fsum), but ±inf or NaN where float addition gives them."""
    try:
        return math.fsum(numbers)
    except OverflowError:  # finite numbers whose sum overflows
        return sum(numbers)
    except ValueError:  # inf + -inf
        return math.nan


def float_mean(numbers: Sequence[float]) -> float:
    """The mean of `numbers`, finite whenever they are, even if their sum overflows."""
    m = len(numbers)
    mean = _float_sum(numbers) / m
    if math.isinf(mean) and all(math.isfinite(x) for x in numbers):  # the sum overflowed
        mean = math.fsum(x / m for x in numbers)
    return mean


def mean_node(values: Sequence[Value], label: str, op: Op) -> Value:
    """μ = (1/m) Σ_k v_k (`float_mean`) as ONE node with the m values as parents, dμ/dv_k = 1/m."""
    return Value(float_mean([v.data for v in values]), label, tuple(values), (1.0 / len(values),) * len(values), op)


def batch_sum(losses: Iterable[Value]) -> Value:
    """One node L = Σ_i L_i over the per-example losses; dL/dL_i = 1 for every example."""
    parents = _as_losses(losses, "batch_sum")
    return Value(_float_sum([v.data for v in parents]), "Σ batch", parents, (1.0,) * len(parents), Op.BATCH_SUM)


def batch_mean(losses: Iterable[Value]) -> Value:
    """One node L = (1/m) Σ_i L_i, dL/dL_i = 1/m: backward gives each parameter its mean per-example gradient."""
    return mean_node(_as_losses(losses, "batch_mean"), "mean batch", Op.BATCH_MEAN)


def per_example_grads(losses: Sequence[Value], params: Sequence[Value]) -> list[list[float]]:
    """Each example's gradient [dL_i/dθ_1, ..., dL_i/dθ_n], one list per loss (their mean is what
    `batch_mean(losses).backward()` gives), leaving every `.grad` in the graph as it was."""
    losses = _as_losses(losses, "per_example_grads")
    params = list(params)
    check_values(params, "per_example_grads", item="parameter")
    saved = {v: v.grad for loss in losses for v in topological_order(loss)} | {p: p.grad for p in params}
    grads = []
    try:
        for loss in losses:
            for p in params:
                p.grad = 0.0
            loss.backward()
            grads.append([p.grad for p in params])
    finally:
        for v, g in saved.items():  # every gradient this function could touch
            v.grad = g
    return grads


def mean_of(vectors: Sequence[Sequence[float]]) -> list[float]:
    """The component-wise arithmetic mean of equally long vectors (e.g. per-example grads)."""
    if len(lengths := sorted({len(v) for v in vectors})) != 1:
        raise ValueError(f"mean_of needs a non-empty list of vectors, none of different lengths: got lengths {lengths}")
    return [float_mean(column) for column in zip(*vectors, strict=True)]


def clip_to_norm(vector: Sequence[float], max_norm: float) -> list[float]:
    """clip_C(g) = g · min(1, C/‖g‖) for C = `max_norm` > 0 (‖g‖ by `math.hypot`: no overflow)."""
    if not 0.0 < (max_norm := as_float(max_norm)) < math.inf:
        raise ValueError(f"max_norm must be a positive finite number, got {max_norm!r}")
    norm = math.hypot(*vector)
    return list(vector) if norm <= max_norm else [g * (max_norm / norm) for g in vector]


def clip_per_example(losses: Sequence[Value], params: Sequence[Value], max_norm: float) -> list[list[float]]:
    """Each example's gradient clipped to norm <= `max_norm` (`clip_to_norm`; the grads are left alone):
    DP-SGD's clipping step (Abadi et al., 2016), which bounds what any ONE example does to a step."""
    clip_to_norm([], max_norm)  # checks max_norm before any gradient is computed
    return [clip_to_norm(grad, max_norm) for grad in per_example_grads(losses, params)]
