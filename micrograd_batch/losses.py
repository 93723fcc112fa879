"""Per-example losses: one example's model output and target in, that example's loss L_i out.

A batch loss is `batch_mean([loss(model(x), y) for x, y in batch])`. The losses that involve
exponentials are single fused nodes computed in a numerically stable form (logits of ±1000
give finite losses and exact gradients), with their local derivatives stored beside the value.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, Callable, Iterable, Sequence, Union

from ._checks import as_float, is_whole_number
from .engine import Op, Value, check_values, logsumexp, stable_sigmoid, stable_softplus

Output = Union[Value, Sequence[Value]]  # a model's output for one example: one Value or several
# loss_fn(model(x), y): that example's loss L_i. The output is typed Any, not Output: a loss takes
# the part of Output it handles (hinge one Value, softmax_cross_entropy a list), and a Callable
# whose first parameter is narrower than Output would not be accepted as a LossFn.
LossFn = Callable[[Any, Any], Value]


def _as_list(output: Output) -> list[Value]:
    """A model output (one Value or several) as a list of Values."""
    if isinstance(output, Value):
        return [output]
    if isinstance(output, (str, bytes)) or not isinstance(output, Iterable):
        raise TypeError(f"model output is {type(output).__name__}, expected a Value or a list")
    outputs = list(output)
    check_values(outputs, "loss", item="model output")
    if not outputs:
        raise ValueError("the model output is empty")
    return outputs


def _as_targets(target: object, count: int) -> list[float]:
    """Regression targets as floats, as many as there are outputs."""
    if isinstance(target, (str, bytes)) or not isinstance(target, (Real, Iterable)):
        raise TypeError(f"target is {type(target).__name__}, expected a number or a list")
    targets = [target] if isinstance(target, Real) else list(target)
    if len(targets) != count:
        raise ValueError(f"expected {count} targets for {count} outputs, got {len(targets)}")
    return [as_float(t, "each target") for t in targets]


def _one_output(output: Output, loss: str) -> Value:
    """The single output a loss of one score or logit needs, or a clear error."""
    outputs = _as_list(output)
    if len(outputs) != 1:
        raise ValueError(f"{loss} takes one output (a score or logit), got {len(outputs)} outputs")
    return outputs[0]


def _check_label(y: object, allowed: tuple[float, ...], loss: str) -> float:
    """A class label, checked against the values `loss` accepts."""
    label = as_float(y, f"the {loss} label y")
    if label not in allowed:
        raise ValueError(f"{loss} needs labels in {allowed}, got {y!r}")
    return label


def mse(output: Output, target: Union[float, Sequence[float]]) -> Value:
    """Squared error of one example, averaged over its outputs: (1/k) Σ_j (output_j - target_j)².

    With one output it is (output - target)²; `batch_mean` of it is the mean squared error.
    """
    outputs = _as_list(output)
    targets = _as_targets(target, len(outputs))
    errors = [(o - t) ** 2 for o, t in zip(outputs, targets)]
    total = errors[0]
    for e in errors[1:]:
        total = total + e
    return total if len(errors) == 1 else total / len(errors)


def hinge(score: Value, y: float) -> Value:
    """Max-margin loss relu(1 - y·score) for a label y in {-1, +1} (micrograd's SVM loss)."""
    label = _check_label(y, (-1.0, 1.0), "hinge")
    score = _one_output(score, "hinge")
    return (1.0 - label * score).relu()


def bce_with_logits(logit: Value, y: float) -> Value:
    """Binary cross-entropy of sigmoid(logit) against y in {0, 1}, as one stable node.

    value  softplus(z) - y·z  =  max(z, 0) - y·z + log(1 + e^-|z|)
    local derivative  d/dz = sigmoid(z) - y
    """
    label = _check_label(y, (0.0, 1.0), "bce_with_logits")
    logit = _one_output(logit, "bce_with_logits")
    z = logit.data
    # d/dz = σ(z) - y
    return Value(stable_softplus(z) - label * z, parents=(logit,),
                 local_grads=(stable_sigmoid(z) - label,), op=Op.BCE, arg=label)


def softmax_cross_entropy(logits: Sequence[Value], y: int) -> Value:
    """-log softmax(logits)[y] for a class index y, as log Σ_j e^{z_j} - z_y (stable).

    Its derivative with respect to z_j is softmax(z)_j - [j = y].
    """
    outputs = _as_list(logits)
    if not is_whole_number(y, 0) or not int(y) < len(outputs):  # type: ignore[call-overload]
        raise ValueError(f"class label must be an int in [0, {len(outputs)}), got {y!r:.40}")
    return logsumexp(outputs) - outputs[int(y)]  # type: ignore[call-overload]


def l2_penalty(params: Sequence[Value], alpha: float) -> Value:
    """alpha · Σ p², the weight-decay term added to a batch loss (micrograd's `reg_loss`).

    One node with the parameters as parents; local derivative d/dp = 2·alpha·p.
    """
    params = tuple(params)
    check_values(params, "l2_penalty", item="parameter")
    alpha = as_float(alpha, "l2_penalty's alpha")
    value = alpha * math.fsum(p.data * p.data for p in params)
    # d/dp = 2·alpha·p
    return Value(value, "L2", parents=params, local_grads=tuple(2.0 * alpha * p.data for p in params),
                 op=Op.L2, arg=alpha)
