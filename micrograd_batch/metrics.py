"""Accuracy: the fraction of examples a model classifies right, by a decision rule that follows the
model's output and, in `fit`, the loss it was trained with; and the check of the examples that
`fit` and `accuracy` share. See docs/api.md#training."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

from ._checks import as_float, is_whole_number
from ._checks import gc_paused
from .losses import bce_with_logits, hinge, mse


def checked_examples(examples: Sequence[Any], caller: str) -> list[tuple]:
    """The examples as a list; ValueError if none, or naming the first not an (x, y) pair or not finite."""
    examples = list(examples)
    if not examples:
        raise ValueError(f"{caller}: no examples")
    for i, example in enumerate(examples):
        if not isinstance(example, (tuple, list)) or len(example) != 2:
            raise ValueError(f"{caller}: each example must be an (x, y) pair; got {example!r:.40} at index {i} "
                             "(for inputs xs and targets ys, pass list(zip(xs, ys)))")
        numbers = [v for part in example for v in (part if isinstance(part, (list, tuple)) else [part])]
        if any(isinstance(v := getattr(n, "data", n), float) and not math.isfinite(v) for n in numbers):
            raise ValueError(f"{caller}: example {i} ({example!r:.80}) holds a NaN or an infinity; inputs and targets "
                             "must be finite")
    return examples


def decision_threshold(model: object, labels: set[object], loss_fn: object = None) -> float | None:
    """A one-output model's decision threshold: 0.5 for a sigmoid, and for a linear or tanh output 0.5
    for mse on 0/1 labels, 0 for a score or logit (hinge, bce_with_logits, labels -1/+1); else None."""
    unit = getattr(model, "neurons", [model])[0]  # (a Layer: its one neuron)
    kind = getattr(unit, "output_activation", getattr(unit, "activation", None))
    score = kind in ("linear", "tanh")
    if kind == "sigmoid" or (score and loss_fn is mse and labels <= {0, 1}):
        return 0.5
    return 0.0 if score and (loss_fn in (hinge, bce_with_logits, mse) or -1 in labels) else None


def _scores(model: Callable[..., Any], examples: list[tuple]) -> list[Any]:
    """Each example's model output as plain numbers (a batch norm model in eval mode, restored after)."""
    coupled = getattr(model, "couples_examples", False)
    with gc_paused(), model.evaluating() if coupled else nullcontext():  # type: ignore[attr-defined]
        outputs = [model(x) for x, _ in examples]
    return [[o.data for o in out] if isinstance(out, list) else getattr(out, "data", out) for out in outputs]


def _argmax_right(scores: list[list[float]], ys: list[Any]) -> float:
    """Several outputs: the fraction whose largest output is the class of the label (0..n-1)."""
    for y in (y for y in ys if not is_whole_number(y, 0) or y >= len(scores[0])):
        raise ValueError(f"label {y!r:.40} is not a class of a model with {len(scores[0])} outputs (0 to n-1)")
    return sum(s.index(max(s)) == y for s, y in zip(scores, ys, strict=True)) / len(ys)


def _fraction_right(model: object, scores: list[Any], ys: list[Any], threshold: float | None,
                    loss_fn: object) -> float:
    """The fraction of `scores` right for the labels `ys`; ValueError where no rule applies."""
    if any(math.isnan(v) for s in scores for v in (s if isinstance(s, list) else [s])):
        raise ValueError("the model outputs NaN, and a NaN output classifies nothing")
    if isinstance(scores[0], list):
        return _argmax_right(scores, ys)
    if not all(isinstance(y, (int, float)) and not isinstance(y, bool) and y in (-1, 0, 1) for y in ys):
        raise ValueError("accuracy needs class labels (-1/+1, 0/1, or class indices)")
    threshold = threshold if threshold is not None else decision_threshold(model, set(ys), loss_fn)
    if threshold is None:
        raise ValueError("no decision rule for this model and labels: pass threshold= (0: score or logit, 0.5: else)")
    return sum((s > threshold) == (y == 1) for s, y in zip(scores, ys, strict=True)) / len(ys)


def accuracy(model: Callable[..., Any], examples: Sequence[tuple], *, threshold: float | None = None) -> float:
    """The fraction of `examples` (x, y) classified right: the argmax of several outputs; one output above
    `threshold` (default 0.5 for a sigmoid, 0 for a score with labels ±1; 0/1 labels need it given)."""
    if threshold is not None and not math.isfinite(as_float(threshold, "threshold")):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    examples = checked_examples(examples, "accuracy")
    return _fraction_right(model, _scores(model, examples), [y for _, y in examples], threshold, None)


def training_accuracy(model: Callable[..., Any], examples: list[tuple], loss_fn: object,
                      scores: list[Any] | None = None) -> float | None:
    """`fit`'s accuracy of the model as it stands, by the rule of `loss_fn` too (mse on 0/1 labels: 0.5),
    from `scores` if given (the compiled outputs); None where no decision rule applies."""
    try:
        return _fraction_right(model, scores or _scores(model, examples), [y for _, y in examples], None, loss_fn)
    except ValueError:
        return None
