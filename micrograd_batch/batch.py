"""The batch-loss node: how m per-example graphs become one mini-batch loss (docs/api.md).

`batch_mean(L_1..L_m)` is ONE node with the m per-example losses as parents, value
(L_1 + ... + L_m)/m and local derivative 1/m to each, so one backward pass gives every parameter
(1/m) Σ_i dL_i/dθ: the mean of the per-example gradients (Deep Learning Book, §8.1.3). Nothing
is averaged on the way forward. `as_inputs` turns one example's numbers into its graph's leaves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Set
from collections.abc import Iterable, Sequence

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
    """THE input rule, for every path (graph and compiled): one example's features are a sequence
    of `width` items (a list, tuple or array; not a str, dict, set or Value), returned as a list.
    `where` names the example in errors ("example 2 has 3 features, expected 2")."""
    if isinstance(x, (str, bytes, Value, Mapping, Set)) or not hasattr(x, "__len__") or not hasattr(x, "__iter__"):
        raise TypeError(f"{where or 'a model input'} must be a list of {width} numbers, got {type(x).__name__}")
    row = list(x)  # type: ignore[call-overload]
    if len(row) != width:
        raise ValueError(f"{where} has {len(row)} features, expected {width}" if where
                         else f"expected {width} inputs, got {len(row)}")
    return row


def as_inputs(x: object, width: int, *, where: str | None = None, finite: bool = False) -> list[Value]:
    """One example's inputs as Values (`input_row`'s rule; numbers become leaves x1, x2, ...).
    With `finite`, NaN or inf is refused: a ValueError for an input, a FloatingPointError (as
    the optimisers raise; `fit` reports TrainingDiverged) for a Value computed upstream."""
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
    """μ = (1/m) Σ_k v_k as ONE node with the m values as parents, dμ/dv_k = 1/m; its value is
    `float_mean`'s (finite whenever the values are)."""
    m = len(values)
    return Value(float_mean([v.data for v in values]), label, parents=tuple(values),
                 local_grads=(1.0 / m,) * m, op=op)


def batch_sum(losses: Iterable[Value]) -> Value:
    """One node L = Σ_i L_i over the per-example losses; dL/dL_i = 1 for every example."""
    parents = _as_losses(losses, "batch_sum")
    value = _float_sum([v.data for v in parents])
    return Value(value, "Σ batch", parents=parents, local_grads=(1.0,) * len(parents), op=Op.BATCH_SUM)


def batch_mean(losses: Iterable[Value]) -> Value:
    """One node L = (1/m) Σ_i L_i over the m per-example losses; dL/dL_i = 1/m: its backward
    pass gives each parameter the mean of its per-example gradients."""
    return mean_node(_as_losses(losses, "batch_mean"), "mean batch", Op.BATCH_MEAN)


def per_example_grads(losses: Sequence[Value], params: Sequence[Value]) -> list[list[float]]:
    """Each example's gradient [dL_i/dθ_1, ..., dL_i/dθ_n] of its own loss, one list per loss;
    their mean is what `batch_mean(losses).backward()` gives. Every `.grad` in the graph is as it
    was afterwards, so this can sit beside a training step."""
    losses = _as_losses(losses, "per_example_grads")
    params = list(params)
    check_values(params, "per_example_grads", item="parameter")
    graph = {id(v): v for loss in losses for v in topological_order(loss)}
    graph.update((id(p), p) for p in params)
    nodes = list(graph.values())
    saved = [v.grad for v in nodes]  # every gradient this function could touch
    grads = []
    try:
        for loss in losses:
            for p in params:
                p.grad = 0.0
            loss.backward()
            grads.append([p.grad for p in params])
    finally:
        for v, g in zip(nodes, saved, strict=True):
            v.grad = g
    return grads


def mean_of(vectors: Sequence[Sequence[float]]) -> list[float]:
    """The component-wise arithmetic mean of equally long vectors (e.g. per-example grads)."""
    if not vectors:
        raise ValueError("mean_of an empty list of vectors")
    lengths = {len(v) for v in vectors}
    if len(lengths) > 1:
        raise ValueError(f"mean_of vectors of different lengths {sorted(lengths)}")
    return [float_mean(column) for column in zip(*vectors, strict=True)]


def clip_to_norm(vector: Sequence[float], max_norm: float) -> list[float]:
    """clip_C(g) = g · min(1, C/‖g‖) for C = `max_norm` > 0 (‖g‖ by `math.hypot`: no overflow)."""
    if not 0.0 < (max_norm := as_float(max_norm)) < math.inf:
        raise ValueError(f"max_norm must be a positive finite number, got {max_norm!r}")
    norm = math.hypot(*vector)
    return list(vector) if norm <= max_norm else [g * (max_norm / norm) for g in vector]


def clip_per_example(losses: Sequence[Value], params: Sequence[Value], max_norm: float) -> list[list[float]]:
    """Each example's gradient clipped to norm at most `max_norm` (`clip_to_norm`): DP-SGD's
    clipping step (Abadi et al., 2016), which bounds what any ONE example does to a step; the
    params' grads are left alone."""
    clip_to_norm([], max_norm)  # checks max_norm before any gradient is computed
    return [clip_to_norm(grad, max_norm) for grad in per_example_grads(losses, params)]
