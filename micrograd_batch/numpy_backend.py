"""The numpy backend: a library model and loss as matrix code, one matmul per layer over the batch.

`compile_loss(model, loss_fn, backend="numpy")` writes numpy source (`MatrixLoss.source`) for the
whole batch at once, the matrix form of `python -m micrograd_batch matrix-form`: Zˡ = Aˡ⁻¹ Wˡᵀ + bˡ,
Δˡ = (Δˡ⁺¹ Wˡ⁺¹) ⊙ g'(Zˡ), ∇Wˡ = Δˡᵀ Aˡ⁻¹. Its numbers equal the scalar path's to rounding (1e-12
relative). `Trainer` keeps the parameters and the optimiser's state in arrays during an epoch of
`fit`. Only this module imports numpy (`micrograd_batch[fast]`). See docs/performance.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

try:
    import numpy as np
except ModuleNotFoundError:  # the optional `fast` extra: backend="numpy" says so in one line
    raise ModuleNotFoundError("backend='numpy' needs numpy: pip install 'micrograd_batch[fast]'") from None

from ._structure import (LOSSES, NotCompilable, _batch_inputs, _check_outputs, _inspect, _named, _parameter_values,
                         _state, _target, _unchanged)
from .engine import Value
from .optim import SGD, Adam, Optimizer


def sigmoid(Z: np.ndarray) -> np.ndarray:
    """1/(1 + e^-z) entrywise without overflow: engine.stable_sigmoid's two branches."""
    e = np.exp(-np.abs(Z))
    return np.where(Z >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


# activation -> (A from Z, "⊙ g'(Z)" from Z and A: nothing for the identity)
_ACTIVATIONS = {
    "relu": ("np.maximum({Z}, 0.0)", " * ({Z} > 0.0)"),
    "tanh": ("np.tanh({Z})", " * (1.0 - {A} * {A})"),
    "sigmoid": ("sigmoid({Z})", " * {A} * (1.0 - {A})"),
    "linear": ("{Z}", ""),
}
# loss -> lines giving `losses` (Lᵢ, one per row) and dA = ∂Lᵢ/∂A from the output A and targets Y
_LOSSES = {
    "mse": ("E = A - Y", "losses = (E * E).mean(axis=1)", "dA = (2.0 / E.shape[1]) * E"),
    "hinge": ("M = 1.0 - Y * A", "losses = np.maximum(M, 0.0)[:, 0]", "dA = -Y * (M > 0.0)"),
    "bce_with_logits": ("losses = (np.logaddexp(0.0, A) - Y * A)[:, 0]", "dA = sigmoid(A) - Y"),  # softplus - y·z
    "softmax_cross_entropy": ("top = A.max(axis=1, keepdims=True)", "E = np.exp(A - top)", "T = E.sum(axis=1)",
                              "losses = top[:, 0] + np.log(T) - (A * Y).sum(axis=1)", "dA = E / T[:, None] - Y"),
}


def _source(name: str, sizes: list[int], activations: list[str], loss: str, loss_lines: tuple[str, ...]) -> str:
    """The numpy source of `forward` and `loss_and_grad` for these layers and this loss."""
    L = len(activations)
    each = lambda template: ", ".join(template.format(k=k) for k in range(1, L + 1))  # noqa: E731
    derivative = lambda k: _ACTIVATIONS[activations[k - 1]][1].format(Z=f"Z{k}", A=f"A{k}")  # noqa: E731
    weights, every = each("W{k}, b{k}"), each("Z{k}, A{k}")
    code = [(f"def forward(A0, {weights}):", ""),
            (f'    """{name} {"-".join(map(str, sizes))} on a batch A0 (m × {sizes[0]}, one row per example)."""', "")]
    for k, act in enumerate(activations, start=1):
        code += [(f"    Z{k} = A{k - 1} @ W{k}.T + b{k}", f"m × {sizes[k]}: one matmul for the batch"),
                 (f"    A{k} = " + _ACTIVATIONS[act][0].format(Z=f"Z{k}"), act)]
    code += [(f"    return {every}\n\n\ndef loss_and_grad(A0, Y, seed, {weights}, {each('gW{k}, gb{k}')}):", ""),
             (f'    """{loss} Lᵢ of each row, the outputs; the gradient of seed · Σᵢ Lᵢ into the g arrays."""', ""),
             (f"    {every} = forward(A0, {weights})", ""), (f"    A = A{L}", ""),
             *((f"    {line}", "") for line in loss_lines),
             (f"    D{L} = seed * dA{derivative(L)}", f"Δ{L} = ∂L/∂Z{L}, row i from example i")]
    for k in range(L, 0, -1):
        code += [(f"    gW{k}[...] = D{k}.T @ A{k - 1}", f"∇W{k} = Δ{k}ᵀ A{k - 1}: a sum over the examples"),
                 (f"    gb{k}[...] = D{k}.sum(axis=0)", f"∇b{k} = the column sums of Δ{k}")]
        if k > 1:
            code.append((f"    D{k - 1} = (D{k} @ W{k}){derivative(k - 1)}", f"Δ{k - 1} = (Δ{k} W{k}) ⊙ g'(Z{k - 1})"))
    code.append((f"    return losses, A{L}", ""))
    return "".join(f"{line:<40}# {note}\n" if note else f"{line}\n" for line, note in code)


class MatrixLoss:
    """A library model and loss compiled to numpy matrix code (see the module docstring), with
    the interface of `compile.CompiledLoss`: `source`, `grad`, `run`, `outputs`."""

    def __init__(self, model: Any, loss_fn: Callable[..., Value], backend: str = "numpy") -> None:
        if backend != "numpy":
            raise ValueError(f"backend must be 'python' or 'numpy', got {backend!r:.40}")
        (nin, shape), self.params, self._modules = _inspect(model)  # compile's checks: a library MLP, Layer, Neuron
        if any(len(set(layer)) != 1 for layer in shape):
            raise NotCompilable("the numpy backend needs one activation per layer (a matrix of neurons)")
        self.sizes, activations = [nin, *map(len, shape)], [layer[0] for layer in shape]
        self.loss = _named(LOSSES, loss_fn, "losses")
        _check_outputs(self.loss, self.sizes[-1])
        self.model, self.loss_fn, self._state = model, loss_fn, _state(self._modules)
        self.source = _source(type(model).__name__, self.sizes, activations, self.loss, _LOSSES[self.loss])
        namespace: dict[str, Any] = {"np": np, "sigmoid": sigmoid}
        exec(compile(self.source, f"<numpy backend: {self.loss}>", "exec"), namespace)
        self._forward, self._loss_and_grad = namespace["forward"], namespace["loss_and_grad"]

    def views(self, flat: np.ndarray) -> list[np.ndarray]:
        """W1, b1, W2, b2, ...: views into a flat vector in `model.parameters()` order (each
        neuron's weights, then its bias: layer l is an nₗ × (nₗ₋₁ + 1) block [Wˡ | bˡ])."""
        views, start = [], 0
        for n_in, n_out in zip(self.sizes, self.sizes[1:], strict=False):
            block = flat[start:start + n_out * (n_in + 1)].reshape(n_out, n_in + 1)
            views += [block[:, :n_in], block[:, n_in]]
            start += n_out * (n_in + 1)
        return views

    def inputs(self, examples: Sequence[tuple]) -> np.ndarray:
        """The examples' inputs, m × nin, refused where the scalar path refuses them."""
        return np.array(_batch_inputs(examples, self.sizes[0]), dtype=float)

    def targets(self, examples: Sequence[tuple]) -> np.ndarray:
        """The examples' targets, m × outputs (one-hot rows for softmax_cross_entropy), refused
        with the loss's own error where the loss refuses them."""
        k, ys = self.sizes[-1], [_target(self.loss, y, self.sizes[-1]) for _, y in examples]
        return np.eye(k)[ys] if self.loss == "softmax_cross_entropy" else np.array(ys, float).reshape(len(ys), k)

    def check_unchanged(self) -> None:
        """NotCompilable if any module of the model has changed (its class, layers, activations or Values)."""
        if not _unchanged(self._modules, self._state):
            raise NotCompilable("the model changed after it was compiled: compile it again")

    def run(self, examples: Sequence[tuple], params: Sequence[float] | None = None,
            seed: float | None = None) -> tuple[list[float], list[float], list]:
        """(per-example losses, the gradient of seed · Σᵢ Lᵢ in parameters() order, per-example
        outputs), seed 1/m by default; `params` default to the model's; touches no Value."""
        self.check_unchanged()
        X, Y = self.inputs(examples), self.targets(examples)
        theta = np.array(_parameter_values(params, self.params))
        grad = np.empty_like(theta)
        with np.errstate(all="ignore"):  # a NaN or infinity shows in the numbers returned
            losses, A = self._loss_and_grad(X, Y, 1.0 / len(X) if seed is None else seed,
                                            *self.views(theta), *self.views(grad))
        return losses.tolist(), grad.tolist(), _scores(A)

    def grad(self, examples: Sequence[tuple]) -> float:
        """As `batch_mean([loss_fn(model(x), y) ...]).backward()` to rounding: adds the batch
        gradient into each parameter's `.grad` and returns the batch loss."""
        losses, grad, _ = self.run(examples)
        for p, g in zip(self.params, grad, strict=True):
            p.grad += g
        return sum(losses) / len(losses)

    def outputs(self, examples: Sequence[tuple]) -> list:
        """Each example's model output as plain numbers, by the forward pass alone (no targets read)."""
        self.check_unchanged()
        X, theta = self.inputs(examples), np.array([p.data for p in self.params])
        with np.errstate(all="ignore"):
            return _scores(self._forward(X, *self.views(theta))[-1])


def _scores(A: np.ndarray) -> list:
    """The outputs A as `model(x)` gives them: a float per example, or a list for several outputs."""
    return (A[:, 0] if A.shape[1] == 1 else A).tolist()


def _sgd(opt: SGD, S: np.ndarray, grad: np.ndarray, new: np.ndarray) -> None:
    """optim.SGD's step from S = [parameters, velocity] into `new`: the same operations in the same order."""
    g = grad + opt.weight_decay * S[0]
    new[1] = opt.momentum * S[1] + g if opt.momentum else S[1]
    np.subtract(S[0], opt.lr * (new[1] if opt.momentum else g), out=new[0])


def _adam(opt: Adam, S: np.ndarray, grad: np.ndarray, new: np.ndarray) -> None:
    """optim.Adam's step number opt.t + 1 from S = [parameters, m, v] into `new`: the same operations."""
    g, t = grad + opt.weight_decay * S[0], opt.t + 1
    new[1] = opt.beta1 * S[1] + (1.0 - opt.beta1) * g
    new[2] = opt.beta2 * S[2] + (1.0 - opt.beta2) * g * g
    new[0] = S[0] - opt.lr * (new[1] / (1.0 - opt.beta1**t)) / (np.sqrt(new[2] / (1.0 - opt.beta2**t)) + opt.eps)


_STEPS: dict[type, Callable[[Any, np.ndarray, np.ndarray, np.ndarray], None]] = {SGD: _sgd, Adam: _adam}


class Trainer:
    """Steps on arrays: the examples converted once; during `epoch()`, the parameters and the
    optimiser's state in one array S, updated all at once or not at all, and written back to
    the Values and the optimiser when the epoch ends, normally or by an exception."""

    def __init__(self, loss: MatrixLoss, examples: Sequence[tuple], optimizer: Optimizer, l2: float = 0.0) -> None:
        if type(optimizer) not in _STEPS:
            raise NotCompilable(f"the numpy backend steps SGD and Adam, not {type(optimizer).__name__}")
        index = {id(p): i for i, p in enumerate(loss.params)}
        if sorted(index.get(id(p), -1) for p in optimizer.params) != list(range(len(index))):
            raise ValueError("the optimiser must update exactly the model's parameters")
        self.loss, self.optimizer, self.l2 = loss, optimizer, l2
        self.state = [name for name in optimizer.STATE if name != "t"]  # its lists: rows of S below the parameters
        self._step = _STEPS[type(optimizer)]
        self.order = np.array([index[id(p)] for p in optimizer.params])  # the optimiser's i-th is S[:, order[i]]
        self.X, self.Y = loss.inputs(examples), loss.targets(examples)
        self.examples, self.rows = examples, {id(example): i for i, example in enumerate(examples)}
        self.S, self.new = np.zeros((1 + len(self.state), len(index))), np.zeros((1 + len(self.state), len(index)))
        self.grad = np.empty(len(index))
        self.views = [*loss.views(self.S[0]), *loss.views(self.grad)]

    @contextmanager
    def epoch(self) -> Iterator[Callable[[Sequence[tuple]], float]]:
        """`with trainer.epoch() as step:` reads the Values and the optimiser's state into S;
        `step(batch)` -> the batch loss; at the end S is written back."""
        self.loss.check_unchanged()
        self.S[0] = [p.data for p in self.loss.params]
        for row, name in enumerate(self.state, start=1):
            self.S[row, self.order] = getattr(self.optimizer, name)
        try:
            with np.errstate(all="ignore"):  # `step` refuses non-finite numbers itself
                yield self.step
        finally:
            try:
                self._write_back()
            except BaseException:  # interrupted in the middle: finish the writes, then go on
                self._write_back()
                raise

    def _write_back(self) -> None:
        """S into the Values and the optimiser's lists (in the optimiser's order)."""
        for p, x in zip(self.loss.params, self.S[0].tolist(), strict=True):
            p.data = x
        for row, name in enumerate(self.state, start=1):
            setattr(self.optimizer, name, self.S[row, self.order].tolist())

    def _rows(self, examples: Sequence[tuple]) -> np.ndarray:
        """The rows of X and Y that hold `examples` (examples given to the trainer)."""
        return np.fromiter(map(self.rows.__getitem__, map(id, examples)), np.intp, len(examples))

    def step(self, batch: Sequence[tuple]) -> float:
        """One step on `batch` (examples given to the trainer): its mean loss (+ l2·Σp²);
        FloatingPointError, with nothing changed, if anything would become non-finite."""
        rows = self._rows(batch)
        losses, _ = self.loss._loss_and_grad(self.X.take(rows, 0), self.Y.take(rows, 0), 1.0 / len(rows), *self.views)
        loss = float(losses.sum()) / len(rows)
        if self.l2:
            loss += self.l2 * float(self.S[0] @ self.S[0])
            self.grad += (2.0 * self.l2) * self.S[0]
        self._step(self.optimizer, self.S, self.grad, self.new)
        if not (np.isfinite(loss) and np.isfinite(self.new).all()):
            raise FloatingPointError(f"the batch loss is {loss}, or the step would make a parameter or the "
                                     "optimiser's state non-finite: no parameter was updated")
        self.S[...] = self.new  # one copy: all new, or (interrupted before it) all old
        if isinstance(self.optimizer, Adam):
            self.optimizer.t += 1
        return loss

    def outputs(self, examples: Sequence[tuple]) -> list:
        """The model's outputs for `examples` (given to the trainer) as plain numbers, in one pass."""
        self.S[0], weights = [p.data for p in self.loss.params], self.views[:len(self.views) // 2]
        X = self.X if examples is self.examples else self.X.take(self._rows(examples), 0)
        with np.errstate(all="ignore"):
            return _scores(self.loss._forward(X, *weights)[-1])
