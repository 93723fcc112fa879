"""Normalisation layers: `BatchNorm` couples the examples of a batch; `LayerNorm` does not
(docs/coupled_batches.md). In training mode BatchNorm normalises feature j of example i with the
mean μ_j and variance σ²_j of feature j over the WHOLE batch (Ioffe & Szegedy, 2015):

    μ_j, σ²_j                                two nodes (Op.BATCH_STAT), parents x_1j..x_mj
    x̂_ij = (x_ij - μ_j) / √(σ²_j + eps)      one node per example, parents x_ij, μ_j, σ²_j
    y_ij = γ_j · x̂_ij + β_j

so ∂y_ij/∂x_kj ≠ 0 for k ≠ i; eval mode uses running statistics (constants). LayerNorm
normalises over the features of ONE example."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ._checks import as_float, is_whole_number
from .batch import as_inputs, float_mean, mean_node
from .engine import Op, Value
from .module import Module

Feature = Value | float  # one feature of one example: a number, or a Value computed upstream


# ---- the nodes: forward value, parents, and the local derivatives beside it ------------------


def _variance_node(values: Sequence[Value], mean: float, label: str, kind: Op) -> Value:
    """σ² = (1/m) Σ_k (v_k - μ)² (biased) as ONE node with the m values as parents. Its local
    derivatives dσ²/dv_k = 2 (v_k - μ)/m are total ones: the path through μ adds -(2/m²) Σ_k (v_k - μ) = 0."""
    m = len(values)
    deviations = [v.data - mean for v in values]
    variance = float_mean([d * d for d in deviations])  # finite even if Σ d² overflows
    return Value(variance, label, tuple(values), tuple(2.0 * d / m for d in deviations), kind)


def _normalised(x: Value, mean: Value, variance: Value, eps: float) -> Value:
    """x̂ = (x - μ)/s with s = √(σ² + eps), one node with parents x, μ, σ²:
    dx̂/dx = 1/s,  dx̂/dμ = -1/s,  dx̂/dσ² = -(x - μ)/(2 s³) = -x̂/(2 s²) (no s³ to overflow)."""
    s_squared = variance.data + eps
    s = math.sqrt(s_squared)
    normalised = (x.data - mean.data) / s
    return Value(normalised, "", (x, mean, variance), (1.0 / s, -1.0 / s, -0.5 * normalised / s_squared),
                 Op.NORMALISE)


def _as_batch(batch: object, width: int) -> list[list[Value]]:
    """A batch of m examples, each `width` finite features, as m lists of Values (`as_inputs`)."""
    if isinstance(batch, (str, bytes, Value)) or not hasattr(batch, "__len__"):
        raise TypeError(f"BatchNorm takes a batch: a list of examples, each a list of {width} "
                        f"numbers, got {type(batch).__name__}")
    rows = list(batch)  # type: ignore[call-overload]
    if not rows:
        raise ValueError("BatchNorm got an empty batch: there must be at least one example")
    return [as_inputs(x, width, where=f"example {i + 1}", finite=True) for i, x in enumerate(rows)]


class _Norm(Module):
    """What both norms share: `num_features` γs (1) then βs (0) as parameters, and `eps`."""

    def __init__(self, num_features: int, eps: float = 1e-5, name: str = "norm") -> None:
        if not is_whole_number(num_features):
            raise ValueError(f"num_features must be a whole number >= 1, got {num_features!r}")
        if not 0.0 < (eps := as_float(eps)) < math.inf:
            raise ValueError(f"eps must be a positive finite number, got {eps!r}")
        self.num_features, self.eps, self.name = int(num_features), eps, name  # type: ignore[call-overload]
        self.gamma = [Value(1.0, f"{name}.γ{j + 1}") for j in range(self.num_features)]
        self.beta = [Value(0.0, f"{name}.β{j + 1}") for j in range(self.num_features)]

    def parameters(self) -> list[Value]:
        """γ_1..γ_n, then β_1..β_n."""
        return self.gamma + self.beta


class BatchNorm(_Norm):
    """PyTorch's `BatchNorm1d(num_features, eps, momentum)`: `bn(batch)` maps m examples to m
    lists of Values. Training mode normalises with the batch mean and biased variance and updates
    `running_mean`/`running_var` (floats, from 0s and 1s) by r ← (1 - momentum)·r + momentum·s,
    with the UNBIASED variance; eval mode (`eval()`) uses them. Parameters: γs (1), then βs (0)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, name: str = "bn") -> None:
        super().__init__(num_features, eps, name)
        self.momentum = as_float(momentum)
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        self.running_mean = [0.0] * self.num_features
        self.running_var = [1.0] * self.num_features
        self.training = True

    def __call__(self, batch: Sequence[Sequence[Feature]]) -> list[list[Value]]:  # type: ignore[override]
        """The normalised batch: m lists of `num_features` Values (see the class docstring)."""
        rows = _as_batch(batch, self.num_features)
        if self.training:
            means, variances = self._batch_statistics(rows)
        else:
            means, variances = self._running_statistics(len(rows))
        out = [[g * _normalised(x, mean, var, self.eps) + b
                for x, mean, var, g, b in zip(row, means[i], variances[i], self.gamma, self.beta, strict=True)]
               for i, row in enumerate(rows)]
        if self.training:  # last, and both at once: an interrupted call leaves them all-old
            self._update_running_statistics(means[0], variances[0], len(rows))
        return out

    def _batch_statistics(self, rows: list[list[Value]]) -> tuple[list[list[Value]], list[list[Value]]]:
        """μ_j and σ²_j nodes, one list per example (the same nodes: shared by every example)."""
        m = len(rows)
        if m < 2:
            raise ValueError(
                "BatchNorm in training mode needs a batch of at least 2 examples: it normalises "
                "each feature with its variance over the batch, which is 0 for one example (every "
                "output would be β). Pass a bigger batch, or call eval() to use the running statistics")
        columns = [[row[j] for row in rows] for j in range(self.num_features)]
        means = [mean_node(col, f"μ{j + 1}", Op.BATCH_STAT) for j, col in enumerate(columns)]
        variances = [_variance_node(col, mu.data, f"σ²{j + 1}", Op.BATCH_STAT)
                     for j, (col, mu) in enumerate(zip(columns, means, strict=True))]
        return [means] * m, [variances] * m

    def _update_running_statistics(self, means: list[Value], variances: list[Value], m: int) -> None:
        """r ← (1 - momentum)·r + momentum·s, with the unbiased variance σ²·m/(m - 1)."""
        keep, new = 1.0 - self.momentum, self.momentum
        running_mean = [keep * r + new * mu.data for r, mu in zip(self.running_mean, means, strict=True)]
        unbiased = m / (m - 1)  # one factor, so σ²·m cannot overflow where σ²·m/(m - 1) would not
        running_var = [keep * r + new * var.data * unbiased for r, var in zip(self.running_var, variances, strict=True)]
        self.running_mean, self.running_var = running_mean, running_var

    def _running_statistics(self, m: int) -> tuple[list[list[Value]], list[list[Value]]]:
        """The running statistics as constants, fresh ones for each example: every example's
        graph stays its own, as without normalisation."""
        def constants(stats: list[float], name: str) -> list[list[Value]]:
            return [[Value(r, f"running {name}{j + 1}", op=Op.CONST) for j, r in enumerate(stats)] for _ in range(m)]

        return constants(self.running_mean, "μ"), constants(self.running_var, "σ²")

    normalise_batch = __call__  # the interface MLP uses (LayerNorm's normalises each example on its own)

    @property
    def couples_examples(self) -> bool:
        """True in training mode: each example's output then depends on the others' inputs."""
        return self.training

    def train(self, mode: bool = True) -> BatchNorm:
        """Switch to training mode (batch statistics), or to eval mode with `mode=False`."""
        self.training = bool(mode)
        return self

    def __repr__(self) -> str:
        mode = "train" if self.training else "eval"
        return f"BatchNorm({self.num_features}, eps={self.eps:g}, momentum={self.momentum:g}, {mode})"


class LayerNorm(_Norm):
    """Layer normalisation (Ba et al., 2016) of ONE example over its own features:
    y_j = γ_j · (x_j - μ)/√(σ² + eps) + β_j with μ, σ² the mean and biased variance of its x_j,
    so examples stay independent. Parameters: γs (1), then βs (0)."""

    def __init__(self, num_features: int, eps: float = 1e-5, name: str = "ln") -> None:
        super().__init__(num_features, eps, name)

    def __call__(self, x: Sequence[Feature]) -> list[Value]:
        """One example, normalised over its features: a list of `num_features` Values."""
        row = as_inputs(x, self.num_features, where="LayerNorm's input", finite=True)
        mean = mean_node(row, "μ", Op.MEAN)
        variance = _variance_node(row, mean.data, "σ²", Op.VARIANCE)
        return [g * _normalised(v, mean, variance, self.eps) + b
                for v, g, b in zip(row, self.gamma, self.beta, strict=True)]

    def normalise_batch(self, rows: Sequence[Sequence[Feature]]) -> list[list[Value]]:
        """Each example of a batch normalised on its own."""
        return [self(row) for row in rows]

    def __repr__(self) -> str:
        return f"LayerNorm({self.num_features}, eps={self.eps:g})"
