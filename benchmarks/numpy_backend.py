#!/usr/bin/env python3
"""The numpy backend against PyTorch tensors, the compiled loss and the graph path (run by hand).

    OPENBLAS_NUM_THREADS=1 python3 benchmarks/numpy_backend.py           # steps and digits epochs
    OPENBLAS_NUM_THREADS=1 python3 benchmarks/numpy_backend.py --quick   # batch 16, 64, 256; fewer rounds

Needs numpy (`pip install 'micrograd_batch[fast]'`), PyTorch (`pip install torch`, CPU build: the
optional `bench` extra; without it the torch column is left out) and, for the digits table,
scikit-learn (the `digits` extra). Everything runs in float64 on one thread
(`torch.set_num_threads(1)`; set OPENBLAS_NUM_THREADS=1 yourself, before numpy loads).

1. A step: two moons, MLP(2, [16, 16, 1]) with ReLU, mean hinge loss + 1e-4·Σp², SGD (lr 0.05):
   graph (fit's step on `batch_gradient`), compiled (on `compile_loss(...).grad`), numpy (a step of
   `fit(backend="numpy")`: `numpy_backend.Trainer`, parameters in arrays) and torch (`nn.Sequential`
   of Linear/ReLU, `torch.optim.SGD`, the batch gathered from one tensor by index as numpy's is).
   All start from the same weights; the losses are checked to agree first (1e-12 relative for
   numpy against the graph path, 1e-9 for torch). Samples are single steps, the variants
   interleaved; the table gives the median µs per example.
2. A digits epoch: scikit-learn's digits (1,437 training images of 64 pixels), MLP(64, [32, 10]),
   softmax cross-entropy, batch 32, SGD (lr 0.05, momentum 0.9): `fit(backend="numpy")` and
   `fit()` (compiled) per epoch (between `on_epoch` calls: the steps, fit's training-accuracy
   pass, its bookkeeping), and torch's epoch loop with the same accuracy pass (a forward pass
   over the training set, argmax). Rounds of a few epochs each, the variants interleaved.
Times are this process's CPU time (`time.process_time`); the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout

from micrograd_batch import MLP, SGD, compile_loss, fit, hinge, make_moons, softmax_cross_entropy  # noqa: E402
from micrograd_batch.numpy_backend import MatrixLoss, Trainer, np  # noqa: E402
from micrograd_batch.train import batch_gradient  # noqa: E402

from compiled import step_with  # noqa: E402  (benchmarks/compiled.py: fit's step, the l2 term first)

try:
    import torch
except ImportError:  # the optional `bench` extra
    torch = None

ALPHA, LR = 1e-4, 0.05
Step = Callable[[list], float]


def torch_mlp(model: MLP) -> Any:
    """A torch.nn.Sequential with `model`'s weights: Linear layers, ReLU between them."""
    layers: list = []
    for i, layer in enumerate(model.layers):
        linear = torch.nn.Linear(len(layer.neurons[0].w), len(layer.neurons)).double()
        with torch.no_grad():
            linear.weight.copy_(torch.tensor([[w.data for w in n.w] for n in layer.neurons], dtype=torch.float64))
            linear.bias.copy_(torch.tensor([n.b.data for n in layer.neurons], dtype=torch.float64))
        layers += [linear] + ([torch.nn.ReLU()] if i < len(model.layers) - 1 else [])
    return torch.nn.Sequential(*layers)


# ---- 1. a step on two moons --------------------------------------------------------------------

def moons_steps(examples: list) -> dict[str, Step]:
    """Each variant's step function, each on its own model with the same starting weights."""
    def fresh() -> tuple[MLP, SGD]:
        model = MLP(2, [16, 16, 1], seed=1)
        return model, SGD(model.parameters(), lr=LR)

    (graph, graph_opt), (comp, comp_opt), (mat, mat_opt) = fresh(), fresh(), fresh()
    compiled = compile_loss(comp, hinge)
    trainer = Trainer(MatrixLoss(mat, hinge), examples, mat_opt, ALPHA)
    steps: dict[str, Step] = {
        "graph": lambda batch: step_with(lambda b: batch_gradient(graph, b, hinge), graph, graph_opt, batch),
        "compiled": lambda batch: step_with(compiled.grad, comp, comp_opt, batch),
    }
    trainer.epoch().__enter__()  # the arrays stay loaded from here on, as during an epoch of fit
    steps["numpy"] = trainer.step
    if torch is not None:
        net = torch_mlp(fresh()[0])
        opt = torch.optim.SGD(net.parameters(), lr=LR)
        X = torch.tensor([x for x, _ in examples], dtype=torch.float64)
        Y = torch.tensor([float(y) for _, y in examples], dtype=torch.float64)
        row = {id(e): i for i, e in enumerate(examples)}

        def torch_step(batch: list) -> float:
            index = torch.tensor([row[id(e)] for e in batch])
            opt.zero_grad()
            loss = torch.relu(1.0 - Y[index] * net(X[index])[:, 0]).mean()
            loss = loss + ALPHA * sum((p * p).sum() for p in net.parameters())
            loss.backward()
            opt.step()
            return loss.item()

        steps["torch"] = torch_step
    return steps


def check_moons(examples: list) -> None:
    """One step of every variant from the same weights: the losses agree (exit if not)."""
    batch = examples[:64]
    losses = {name: step(batch) for name, step in moons_steps(examples).items()}
    for name, tolerance in [("compiled", 0.0), ("numpy", 1e-12), ("torch", 1e-9)]:
        if name in losses and abs(losses[name] - losses["graph"]) > tolerance * abs(losses["graph"]):
            sys.exit(f"{name}'s loss {losses[name]!r} differs from the graph path's {losses['graph']!r}")


def time_moons(sizes: list[int], rounds: int) -> dict[int, dict[str, float]]:
    """Median µs per example of one step, per batch size and variant (interleaved samples)."""
    examples = make_moons(max(sizes), seed=0)
    check_moons(examples)
    results = {}
    for m in sizes:
        steps = moons_steps(examples)
        batch = examples[:m]
        samples: dict[str, list[float]] = {name: [] for name in steps}
        repeats = {name: max(1, (4096 if name in ("numpy", "torch") else 256) // m) for name in steps}
        for _ in range(rounds):
            for name, step in steps.items():
                step(batch)  # warm
                start = time.process_time()
                for _ in range(repeats[name]):
                    step(batch)
                samples[name].append((time.process_time() - start) / repeats[name] / m * 1e6)
        results[m] = {name: statistics.median(times) for name, times in samples.items()}
        print(f"  batch {m}: " + ", ".join(f"{k} {v:.2f}" for k, v in results[m].items()), flush=True)
    return results


# ---- 2. a digits epoch --------------------------------------------------------------------------

def digits_examples() -> list:
    """scikit-learn's digits, pixels scaled to [0, 1], shuffled (seed 0); the first 1,437."""
    import random

    from sklearn.datasets import load_digits

    digits = load_digits()
    pairs = zip(digits.data.tolist(), digits.target.tolist(), strict=True)
    examples = [([v / 16.0 for v in row], int(t)) for row, t in pairs]
    random.Random(0).shuffle(examples)
    return examples[:1437]


def fit_epochs(examples: list, backend: str, epochs: int) -> list[float]:
    """CPU seconds of each epoch after the first of one `fit` call (between on_epoch calls)."""
    model = MLP(64, [32, 10], seed=0)
    stamps: list[float] = []
    fit(model, examples, softmax_cross_entropy, SGD(model.parameters(), lr=LR, momentum=0.9), epochs=epochs + 1,
        batch_size=32, backend=backend, on_epoch=lambda *_: stamps.append(time.process_time()))
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)]


def torch_epochs(examples: list, epochs: int) -> list[float]:
    """CPU seconds of each torch epoch: shuffled batches of 32, then the training accuracy."""
    net = torch_mlp(MLP(64, [32, 10], seed=0))
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=0.9)
    X = torch.tensor([x for x, _ in examples], dtype=torch.float64)
    Y = torch.tensor([y for _, y in examples])
    generator = torch.Generator().manual_seed(0)
    times = []
    for _ in range(epochs):
        start = time.process_time()
        order = torch.randperm(len(examples), generator=generator)
        for i in range(0, len(examples), 32):
            index = order[i:i + 32]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(X[index]), Y[index])
            loss.backward()
            opt.step()
        with torch.no_grad():
            float((net(X).argmax(dim=1) == Y).double().mean())
        times.append(time.process_time() - start)
    return times


def time_digits(rounds: int, epochs: int) -> dict[str, float]:
    """Median CPU ms per digits epoch of each variant."""
    examples = digits_examples()
    samples: dict[str, list[float]] = {"numpy": [], "compiled": [], "torch": []}
    for _ in range(rounds):
        samples["numpy"] += fit_epochs(examples, "numpy", epochs)
        samples["compiled"] += fit_epochs(examples, "python", max(1, epochs // 4))
        if torch is not None:
            samples["torch"] += torch_epochs(examples, epochs)
    return {name: statistics.median(times) * 1e3 for name, times in samples.items() if times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 16, 64, 256 and fewer rounds")
    args = parser.parse_args()
    if torch is not None:
        torch.set_num_threads(1)
    print(f"Python {platform.python_version()}, numpy {np.__version__}, torch "
          f"{torch.__version__ if torch else '(not installed)'}, {platform.machine()}, {os.cpu_count()} cores, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, load average {os.getloadavg()[0]:.1f}")
    sizes = [16, 64, 256] if args.quick else [16, 64, 256, 1024, 4096]
    print("\n1. µs per example of one step, MLP 2-16-16-1, hinge + 1e-4·Σp², SGD (median):")
    moons = time_moons(sizes, 5 if args.quick else 7)
    names = list(moons[sizes[0]])
    print("\n| batch | " + " | ".join(names) + " | numpy / torch |\n|---:|" + "---:|" * (len(names) + 1))
    for m, row in moons.items():
        ratio = f"{row['numpy'] / row['torch']:.2f}" if "torch" in row else "–"
        print(f"| {m:,} | " + " | ".join(f"{row[n]:.2f}" for n in names) + f" | {ratio} |")
    try:
        digits = time_digits(2 if args.quick else 3, 8)
    except ImportError:
        print("\n2. digits: skipped (scikit-learn is not installed: pip install 'micrograd_batch[digits]')")
        return
    print("\n2. ms per digits epoch, MLP 64-32-10, softmax cross-entropy, batch 32, SGD momentum 0.9 (median):")
    print("\n| numpy | compiled | torch | numpy / torch |\n|---:|---:|---:|---:|")
    ratio = f"{digits['numpy'] / digits['torch']:.2f}" if "torch" in digits else "–"
    print(f"| {digits['numpy']:.1f} | {digits['compiled']:.1f} | {digits.get('torch', float('nan')):.1f} | {ratio} |")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
