"""Per-example losses: one example's model output and target in, its loss L_i out (docs/api.md).

A batch loss is `batch_mean([loss(model(x), y) for x, y in batch])`. Losses with exponentials
are single fused nodes in a numerically stable form (logits of ±1000 give finite losses).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from numbers import Real
from typing import Any

from ._checks import as_float, is_whole_number
from .engine import Op, Value, stable_sigmoid, stable_softplus
from .module import check_values

Output = Value | Sequence[Value]  # a model's output for one example: one Value or several
LossFn = Callable[[Any, Any], Value]  # loss_fn(model(x), y) -> L_i (Any: each loss takes its part of Output)


def _as_list(output: Output) -> list[Value]:
    """A model output (one Value or several) as a non-empty list of Values."""
    if isinstance(output, Value):
        return [output]
    if isinstance(output, (str, bytes)) or not isinstance(output, Iterable):
        raise TypeError(f"model output is {type(output).__name__}, expected a Value or a list")
    outputs = list(output)
    check_values(outputs, "loss", item="model output")
    if not outputs:
        raise ValueError("the model output is empty")
    return outputs


def _score_and_label(output: Output, y: object, allowed: tuple[float, float], loss: str) -> tuple[Value, float]:
    """The one output (score or logit) and the class label a two-class loss needs, checked."""
    label = as_float(y, f"the {loss} label y")
    if label not in allowed:
        raise ValueError(f"{loss} needs labels in {allowed}, got {y!r}")
    outputs = _as_list(output)
    if len(outputs) != 1:
        raise ValueError(f"{loss} takes one output (a score or logit), got {len(outputs)} outputs")
    return outputs[0], label


def logsumexp(values: Iterable[Value]) -> Value:
    """log Σ exp(v_i) as one node, shifted by the maximum (stable); d/dv_i = softmax(v)_i.
    An inf or NaN input gives an inf or NaN value with NaN local derivatives."""
    parents = tuple(values)
    if not parents:
        raise ValueError("logsumexp of an empty list")
    check_values(parents, "logsumexp")
    data = [v.data for v in parents]
    top = max(data)
    if not all(math.isfinite(x) for x in data):
        value = math.nan if any(math.isnan(x) for x in data) else top
        return Value(value, "", parents, (math.nan,) * len(parents), Op.LOGSUMEXP)
    exps = [math.exp(x - top) for x in data]
    total = sum(exps)
    return Value(top + math.log(total), "", parents, tuple(e / total for e in exps), Op.LOGSUMEXP)


def mse(output: Output, target: float | Sequence[float]) -> Value:
    """Squared error averaged over the outputs, (1/k) Σ_j (output_j - target_j)²; with one output
    (output - target)², whose `batch_mean` is the mean squared error."""
    outputs = _as_list(output)
    if isinstance(target, (str, bytes)) or not isinstance(target, (Real, Iterable)):
        raise TypeError(f"target is {type(target).__name__}, expected a number or a list")
    targets = [as_float(t, "each target") for t in ([target] if isinstance(target, Real) else target)]
    if len(targets) != len(outputs):
        raise ValueError(f"expected {len(outputs)} targets for {len(outputs)} outputs, got {len(targets)}")
    errors = [(o - t) ** 2 for o, t in zip(outputs, targets, strict=True)]
    total = sum(errors[1:], errors[0])  # errors[0] + errors[1] + ...: no constant 0 node
    return total if len(errors) == 1 else total / len(errors)


def hinge(score: Value, y: float) -> Value:
    """Max-margin loss relu(1 - y·score) for a label y in {-1, +1} (micrograd's SVM loss)."""
    score, label = _score_and_label(score, y, (-1.0, 1.0), "hinge")
    return (1.0 - label * score).relu()


def bce_with_logits(logit: Value, y: float) -> Value:
    """Binary cross-entropy of sigmoid(logit) against y in {0, 1} as one stable node:
    softplus(z) - y·z, with d/dz = sigmoid(z) - y (the label is the node's `arg`)."""
    logit, label = _score_and_label(logit, y, (0.0, 1.0), "bce_with_logits")
    z = logit.data
    return Value(stable_softplus(z) - label * z, "", (logit,), (stable_sigmoid(z) - label,), Op.BCE, label)


def softmax_cross_entropy(logits: Sequence[Value], y: int) -> Value:
    """-log softmax(logits)[y] for a class index y, as log Σ_j e^{z_j} - z_y (stable); its
    derivative with respect to z_j is softmax(z)_j - [j = y]. Needs 2 or more logits."""
    outputs = _as_list(logits)
    if len(outputs) < 2:
        raise ValueError("softmax_cross_entropy needs one logit per class, at least 2; with one output the "
                         "loss is always 0 and nothing is learnt (for two classes use bce_with_logits)")
    if not is_whole_number(y, 0) or not int(y) < len(outputs):  # type: ignore[call-overload]
        raise ValueError(f"class label must be an int in [0, {len(outputs)}), got {y!r:.40}")
    return logsumexp(outputs) - outputs[int(y)]  # type: ignore[call-overload]


def l2_penalty(params: Sequence[Value], alpha: float) -> Value:
    """alpha · Σ p² as one node (micrograd's `reg_loss`), d/dp = 2·alpha·p; alpha is its `arg`."""
    params = tuple(params)
    check_values(params, "l2_penalty", item="parameter")
    alpha = as_float(alpha, "l2_penalty's alpha")
    value = alpha * math.fsum(p.data * p.data for p in params)
    return Value(value, "L2", params, tuple(2.0 * alpha * p.data for p in params), Op.L2, alpha)
