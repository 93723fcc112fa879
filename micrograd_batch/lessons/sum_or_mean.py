"""Lesson: "Sum or mean?" -- the batch loss's reduction and the learning rate.

`batch_sum` gives every example's loss local derivative 1, `batch_mean` 1/m: the sum's gradient
is m times the mean's. Plain SGD sees that factor (lr/m on the sum is lr on the mean); Adam
divides it out (its step is m̂/√v̂), except for its eps: Adam on the sum with eps equals Adam on
the mean with eps/m. Multiplying by a power of two is exact in floating point, so for m a power
of two these equalities hold bit for bit; for other m, to rounding.
"""

from __future__ import annotations

import math
from functools import partial
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Sequence

from .by_hand import max_abs_difference
from .common import PathLike, random_batch, say
from ..batch import batch_mean, batch_sum
from ..engine import Value
from ..losses import mse
from ..nn import MLP
from ..optim import SGD, Adam, Optimizer

Reduction = Callable[[Sequence[Value]], Value]


def lesson_model(seed: int = 0) -> MLP:
    """The lesson's network: 2 inputs, 8 tanh hidden units, 1 linear output."""
    return MLP(2, [8, 1], activation="tanh", seed=seed)


def gradient(model: MLP, m: int, reduction: Reduction, seed: int = 0) -> list[float]:
    """The gradient of `reduction` (batch_mean or batch_sum) of m seeded examples' mse losses."""
    model.zero_grad()
    reduction([mse(model(x), y) for x, y in random_batch(2, m, "mse", 1, seed)]).backward()  # type: ignore[arg-type]
    return [p.grad for p in model.parameters()]


def train(reduction: Reduction, make_optimizer: Callable[[list[Value]], Optimizer], m: int,
          steps: int, seed: int = 0) -> list[float]:
    """The parameters after `steps` steps on seeded batches of m examples (the same batches for
    every call), the batch loss reduced by `reduction`."""
    model = lesson_model(seed)
    optimizer = make_optimizer(model.parameters())
    for step in range(steps):
        gradient(model, m, reduction, seed=1000 * seed + step)
        optimizer.step()
    return [p.data for p in model.parameters()]


@dataclass
class ScaleRow:
    """For a batch of m: the sum's gradient vs m × the mean's, and SGD with lr/m on the sum vs
    lr on the mean after `steps` steps (max |difference|, and whether it is bit for bit)."""

    m: int
    gradient_difference: float
    gradient_exact: bool
    sgd_difference: float
    sgd_exact: bool


@dataclass
class AdamRow:
    """Adam with this eps on the sum vs on the mean: max |parameter difference| after `steps`
    steps, relative to how far the parameters moved; and the exact rule (eps/m on the mean)."""

    eps: float
    difference: float
    relative_to_movement: float
    eps_over_m_difference: float


@dataclass
class SumOrMeanResult:
    """The lesson's tables."""

    steps: int
    lr: float
    scale_rows: list[ScaleRow]
    adam_m: int
    rms_gradient: float  # RMS of the mean-loss gradient's components at the start
    adam_rows: list[AdamRow]


def sum_or_mean(batch_sizes: Sequence[int] = (3, 10, 16, 64), steps: int = 20, lr: float = 0.1,
                adam_m: int = 10, adam_eps: Sequence[float] = (1e-8, 1e-4, 1e-2, 1.0)) -> SumOrMeanResult:
    """Every number of the lesson (the model and batches are seeded)."""
    rows = []
    for m in batch_sizes:
        model = lesson_model()
        g_mean, g_sum = gradient(model, m, batch_mean), gradient(model, m, batch_sum)
        scaled = [m * g for g in g_mean]
        on_mean = train(batch_mean, partial(SGD, lr=lr), m, steps)
        on_sum = train(batch_sum, partial(SGD, lr=lr / m), m, steps)
        rows.append(ScaleRow(m, max_abs_difference(g_sum, scaled), g_sum == scaled,
                             max_abs_difference(on_sum, on_mean), on_sum == on_mean))
    start = [p.data for p in lesson_model().parameters()]
    g0 = gradient(lesson_model(), adam_m, batch_mean)
    adam_rows = []
    for eps in adam_eps:
        on_mean = train(batch_mean, partial(Adam, lr=0.01, eps=eps), adam_m, steps)
        on_sum = train(batch_sum, partial(Adam, lr=0.01, eps=eps), adam_m, steps)
        rule = train(batch_mean, partial(Adam, lr=0.01, eps=eps / adam_m), adam_m, steps)
        difference = max_abs_difference(on_sum, on_mean)
        adam_rows.append(AdamRow(eps, difference, difference / max_abs_difference(on_mean, start),
                                 max_abs_difference(on_sum, rule)))
    rms = math.sqrt(math.fsum(g * g for g in g0) / len(g0))
    return SumOrMeanResult(steps, lr, rows, adam_m, rms, adam_rows)


def demo_sum_or_mean(out_dir: PathLike = "out", quick: bool = False) -> list[Path]:
    """Print the lesson's tables. Writes nothing; returns []."""
    r = sum_or_mean(steps=5 if quick else 20)
    say("batch_sum: every loss enters with local derivative 1; batch_mean: with 1/m.")
    say(f"A 2-8-1 tanh network, mse, seeded batches; SGD for {r.steps} steps.\n")
    say(f"{'m':>4} {'max|g_sum - m·g_mean|':>23} {'bit-exact':>10} {'max|θ(sum, lr/m) - θ(mean, lr)|':>33}"
        f" {'bit-exact':>10}")
    for row in r.scale_rows:
        say(f"{row.m:>4} {row.gradient_difference:>23.1e} {str(row.gradient_exact):>10} "
            f"{row.sgd_difference:>33.1e} {str(row.sgd_exact):>10}")
    say("Bit-exact when m is a power of two (16, 64): multiplying by 1/m then changes only the exponent.")
    say("Otherwise the two differ by rounding (about 1e-16 relative per operation), nothing more.\n")
    say(f"Adam, lr 0.01, m = {r.adam_m}, {r.steps} steps: the SAME lr on the sum and on the mean.")
    say("Its step is lr·m̂/(√v̂ + eps): scaling every gradient by m scales m̂ by m and √v̂ by m, so only eps")
    say(f"sees the scale. The RMS gradient component here is {r.rms_gradient:.3f}.")
    say(f"{'eps':>8} {'max|θ_sum - θ_mean|':>20} {'relative to movement':>21} {'vs mean with eps/m':>19}")
    for a in r.adam_rows:
        say(f"{a.eps:>8.0e} {a.difference:>20.2e} {a.relative_to_movement:>21.2e} {a.eps_over_m_difference:>19.1e}")
    say("Nearly invariant while √v̂ >> eps (default eps 1e-8); once eps is comparable to the gradients'")
    say("size, the sum (m times larger gradients) takes larger steps. Exactly: Adam on the sum with eps")
    say("is Adam on the mean with eps/m (last column: rounding only).")
    return []
