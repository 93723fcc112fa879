#!/usr/bin/env python3
"""micrograd_batch against micrograd 0.1.0 (PyPI) on the same training step, in one process.

    python3 benchmarks/bench.py           # the full run (a few minutes)
    python3 benchmarks/bench.py --quick   # batch 16 and 64 only, smaller graphs (under a minute)

The workload, identical for both libraries: two moons (`data.make_moons`, seeded), an
`MLP(2, [16, 16, 1])` with ReLU hidden layers, loss = mean over the batch of the hinge losses
relu(1 - y·score) + 1e-4·Σp², and one step = forward over the batch, backward, and SGD
(p.data -= lr·p.grad). micrograd runs it as its own demo notebook does (loss =
sum(losses) * (1/m), a chain of additions); micrograd_batch with `batch_mean`, `l2_penalty`
and `gc_paused`. Both models start from the same weights (copied), and the script checks that
loss and gradients agree to 1e-9 before timing.

micrograd 0.1.0 is installed on first use with `pip install --target` into
benchmarks/.micrograd-0.1.0/ (needs network access to PyPI once) and imported from there.
Step times are medians of runs interleaved between the two libraries.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any
from collections.abc import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout of micrograd_batch, installed or not

from micrograd_batch import MLP, Value, batch_mean  # noqa: E402
from micrograd_batch.engine import topological_order  # noqa: E402
from micrograd_batch.data import make_moons  # noqa: E402
from micrograd_batch._checks import gc_paused  # noqa: E402
from micrograd_batch.losses import hinge, l2_penalty  # noqa: E402
from micrograd_batch.parallel import DataParallel  # noqa: E402

MICROGRAD_DIR = HERE / ".micrograd-0.1.0"
SIZES = [16, 64, 256, 1024, 4096]
ALPHA, LR, TOL = 1e-4, 0.05, 1e-9


def load_micrograd() -> Any:
    """micrograd 0.1.0, pip-installed into MICROGRAD_DIR on first use, imported from there."""
    if not (MICROGRAD_DIR / "micrograd" / "engine.py").exists():
        print(f"installing micrograd 0.1.0 into {MICROGRAD_DIR} ...", flush=True)
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                               "--disable-pip-version-check", "--target", str(MICROGRAD_DIR),
                               "micrograd==0.1.0"])
    sys.path.insert(0, str(MICROGRAD_DIR))
    import micrograd.engine
    import micrograd.nn

    sys.path.pop(0)
    if not any(MICROGRAD_DIR.glob("micrograd-0.1.0.dist-info")):
        sys.exit(f"{MICROGRAD_DIR} does not hold micrograd 0.1.0; delete it and run again")
    return micrograd


# ---- one training step in each library ----------------------------------------------------

def ours_loss(model: MLP, batch: list) -> Value:
    """micrograd_batch: per-example hinge losses -> one batch_mean node, plus one L2 node."""
    losses = [hinge(model(x), y) for x, y in batch]
    return batch_mean(losses) + l2_penalty(model.parameters(), ALPHA)


def ours_step(model: MLP, batch: list) -> Value:
    """One SGD step with micrograd_batch; returns the loss (its graph still attached)."""
    with gc_paused():  # Values form no cycles: reference counting frees every graph
        loss = ours_loss(model, batch)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= LR * p.grad
    return loss


def micrograd_loss(mg: Any, model: Any, batch: list) -> Any:
    """micrograd 0.1.0, as in its demo notebook: sum(losses) * (1/m) + alpha * Σ p*p."""
    Value_ = mg.engine.Value
    scores = [model(list(map(Value_, x))) for x, _ in batch]
    losses = [(1 + -y * score).relu() for (_, y), score in zip(batch, scores, strict=True)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = ALPHA * sum(p * p for p in model.parameters())
    return data_loss + reg_loss


def micrograd_step(mg: Any, model: Any, batch: list) -> Any:
    """One SGD step with micrograd 0.1.0 (garbage collector as it comes: its graphs have cycles)."""
    loss = micrograd_loss(mg, model, batch)
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data -= LR * p.grad
    return loss


def twin_models(mg: Any, seed: int = 1) -> tuple[MLP, Any]:
    """Our MLP and a micrograd MLP with the same weights (ours copied into micrograd's)."""
    ours = MLP(2, [16, 16, 1], seed=seed)
    theirs = mg.nn.MLP(2, [16, 16, 1])
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        b.data = a.data
    return ours, theirs


def micrograd_nodes(root: Any) -> int:
    """Number of Values in a micrograd graph (iteratively: it is deep)."""
    seen, stack = {id(root)}, [root]
    while stack:
        for child in stack.pop()._prev:
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return len(seen)


def check_agreement(mg: Any, batch: list) -> float:
    """Max |difference| in loss and gradients between the libraries on one step (must be < TOL)."""
    ours, theirs = twin_models(mg)
    a = ours_loss(ours, batch)
    ours.zero_grad()
    a.backward()
    b = micrograd_loss(mg, theirs, batch)
    theirs.zero_grad()
    b.backward()
    diffs = [abs(a.data - b.data)]
    diffs += [abs(p.grad - q.grad) for p, q in zip(ours.parameters(), theirs.parameters(), strict=True)]
    worst = max(diffs)
    if not worst <= TOL:
        sys.exit(f"loss/gradients differ by {worst:.3g} at batch {len(batch)} (tolerance {TOL})")
    return worst


def timed(step: Callable[[], object]) -> float:
    """Wall time of one call of `step` (the graph is dropped before the clock stops)."""
    t = time.perf_counter()
    step()
    return time.perf_counter() - t


# ---- memory ------------------------------------------------------------------------------

def peak_bytes(build: Callable[[], Any]) -> tuple[int, Any]:
    """Peak traced memory while `build()` runs (graph + backward), and what it returned."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        out = build()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, out


def ours_forward_backward(model: MLP, batch: list) -> Value:
    """Build our graph for `batch` and backpropagate it; return the loss."""
    with gc_paused():
        loss = ours_loss(model, batch)
        loss.backward()
    return loss


def micrograd_forward_backward(mg: Any, model: Any, batch: list) -> Any:
    """Build micrograd's graph for `batch` and backpropagate it; return the loss."""
    loss = micrograd_loss(mg, model, batch)
    loss.backward()
    return loss


# ---- the report --------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its tables (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run: batch 16 and 64")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps per batch size")
    args = parser.parse_args(argv)
    mg = load_micrograd()
    sizes = [16, 64] if args.quick else SIZES
    repeats = args.repeats or (3 if args.quick else 7)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs "
          f"(load average {load});"
          f" recursion limit {sys.getrecursionlimit()}; {'quick' if args.quick else 'full'} run\n")

    print("| batch | micrograd 0.1.0 s/step | micrograd_batch s/step | speed-up | ours µs/example (best run) "
          "| ours nodes | micrograd nodes | max |Δ| loss, grads |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    per_example: dict[int, float] = {}
    for m in sizes:
        batch = make_moons(m, noise=0.1, seed=m)
        ours, theirs = twin_models(mg)
        ours_nodes = len(topological_order(ours_loss(ours, batch)))
        mg_runs = m <= 256  # beyond, micrograd's recursive topological sort overflows
        if mg_runs:
            worst = check_agreement(mg, batch)
            mg_nodes = micrograd_nodes(micrograd_loss(mg, theirs, batch))
        ours_times, mg_times = [], []
        reps = repeats if m <= 1024 else max(3, repeats // 2)
        for _ in range(reps):  # interleaved, so both see the same machine load
            ours_times.append(timed(lambda: ours_step(ours, batch)))
            if mg_runs and len(mg_times) < (reps if m <= 64 else 3):
                mg_times.append(timed(lambda: micrograd_step(mg, theirs, batch)))
        t_ours = statistics.median(ours_times)
        per_example[m] = min(ours_times) / m * 1e6  # the best run: least disturbed by load
        if mg_runs:
            t_mg = statistics.median(mg_times)
            print(f"| {m} | {t_mg:.3f} | {t_ours:.4f} | {t_mg / t_ours:.0f}x | {per_example[m]:.0f} "
                  f"| {ours_nodes:,} | {mg_nodes:,} | {worst:.1e} |", flush=True)
        else:
            failure = micrograd_failure(mg, theirs, batch) if m == 1024 else "not run"
            print(f"| {m} | {failure} | {t_ours:.4f} | – | {per_example[m]:.0f} | {ours_nodes:,} "
                  "| – | – |", flush=True)
    flat = max(per_example.values()) / min(per_example.values())
    print(f"\nour cost per example (best run), batch {sizes[0]}..{sizes[-1]}: max/min = {flat:.2f} "
          f"(target: within 20%, i.e. <= 1.20)\n")

    memory_report(mg, quick=args.quick)
    parallel_report(sizes=[1024] if args.quick else [1024, 4096], repeats=3 if args.quick else 5)


def micrograd_failure(mg: Any, model: Any, batch: list) -> str:
    """What happens when micrograd 0.1.0 tries this batch under the default recursion limit."""
    try:
        micrograd_step(mg, model, batch)
    except RecursionError:
        return "RecursionError"
    return "ran"


def memory_report(mg: Any, quick: bool) -> None:
    """Peak traced memory per graph node and per example, and our million-node graph."""
    m = 64 if quick else 256
    batch = make_moons(m, noise=0.1, seed=m)
    ours, theirs = twin_models(mg)
    ours_peak, loss = peak_bytes(lambda: ours_forward_backward(ours, batch))
    ours_n = len(topological_order(loss))
    del loss
    mg_peak, loss = peak_bytes(lambda: micrograd_forward_backward(mg, theirs, batch))
    mg_n = micrograd_nodes(loss)
    del loss
    gc.collect()
    print(f"Peak memory of forward + backward at batch {m} (tracemalloc):\n")
    print("| library | nodes | peak MB | bytes/node | KB/example |")
    print("|---|---:|---:|---:|---:|")
    for name, peak, n in [("micrograd 0.1.0", mg_peak, mg_n), ("micrograd_batch", ours_peak, ours_n)]:
        print(f"| {name} | {n:,} | {peak / 1e6:.1f} | {peak / n:.0f} | {peak / m / 1e3:.1f} |")

    target = 100_000 if quick else 1_000_000
    print(f"\nGraphs of {target:,}+ nodes, forward + backward under the default recursion limit:\n")
    print("| graph | nodes | forward+backward s | peak MB | bytes/node |")
    print("|---|---:|---:|---:|---:|")
    small = [len(topological_order(ours_loss(ours, batch[:k]))) for k in (8, 16)]
    per_example = (small[1] - small[0]) / 8  # nodes each further example adds
    big = make_moons(16 + math.ceil((target - small[1]) / per_example), noise=0.1, seed=0)
    t = time.perf_counter()
    peak, loss = peak_bytes(lambda: ours_forward_backward(ours, big))
    seconds = time.perf_counter() - t
    n = len(topological_order(loss))
    del loss
    print(f"| MLP workload, batch {len(big):,} | {n:,} | {seconds:.1f} (traced) | {peak / 1e6:.0f} "
          f"| {peak / n:.0f} |")

    def chain() -> Value:
        x = Value(1.0)
        y = x
        with gc_paused():
            for _ in range(target):
                y = y + x
            y.backward()
        assert x.grad == target + 1
        return y

    t = time.perf_counter()
    peak, y = peak_bytes(chain)
    seconds = time.perf_counter() - t
    del y
    print(f"| chain y = y + x | {target + 1:,} | {seconds:.1f} (traced) | {peak / 1e6:.0f} "
          f"| {peak / (target + 1):.0f} |\n")


def parallel_report(sizes: list[int], repeats: int) -> None:
    """Serial step against a 2-process DataParallel step; same gradients to 1e-12."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print("Data parallelism, 2 worker processes (`parallel.DataParallel`), whole SGD step "
          f"(load average before: {load}; other busy processes take cores from the workers):\n")
    print("| batch | serial s/step | 2 workers s/step | speed-up | max |Δ| grads |")
    print("|---:|---:|---:|---:|---:|")
    for m in sizes:
        batch = make_moons(m, noise=0.1, seed=m)
        serial = MLP(2, [16, 16, 1], seed=1)
        parallel = MLP(2, [16, 16, 1], seed=1)
        with DataParallel(parallel, hinge, workers=2) as workers:

            def parallel_step() -> list[float]:
                parallel.zero_grad()
                workers.grad(batch)  # p.grad = (1/m) Σ_i ∂L_i/∂θ, from two partial sums
                with gc_paused():
                    l2_penalty(parallel.parameters(), ALPHA).backward()  # + the L2 term's grad
                grads = [p.grad for p in parallel.parameters()]
                for p in parallel.parameters():
                    p.data -= LR * p.grad
                return grads

            grads = parallel_step()
            ours_step(serial, batch)
            worst = max(abs(g - p.grad) for g, p in zip(grads, serial.parameters(), strict=True))
            if not worst <= 1e-12:
                sys.exit(f"parallel gradients differ from serial ones by {worst:.3g}")
            t_serial, t_parallel = [], []
            for _ in range(repeats):
                t_serial.append(timed(lambda: ours_step(serial, batch)))
                t_parallel.append(timed(parallel_step))
        s, p = statistics.median(t_serial), statistics.median(t_parallel)
        print(f"| {m} | {s:.3f} | {p:.3f} | {s / p:.2f}x | {worst:.1e} |", flush=True)


if __name__ == "__main__":
    main()
