#!/usr/bin/env python3
"""What data parallelism costs and gains (`micrograd_batch.parallel.DataParallel`), in one run.

    python3 benchmarks/parallel.py startup     # pool start-up: forkserver against spawn
    python3 benchmarks/parallel.py overhead    # batch 256: serial, local pool, Dask; the job's size
    python3 benchmarks/parallel.py speedup     # 2 workers against serial at batch 1,024 and 4,096
    python3 benchmarks/parallel.py fit         # issue 22: fit(workers=1 | 2 | Dask) at batch 1,024 and 256

The workload is bench.py's: two moons, MLP(2, [16, 16, 1]) ReLU, hinge loss; a step is the
batch's gradient (forward, backward) only. Times are medians of runs interleaved between the
variants; the load average before the run is printed, because other busy processes take cores
from the workers. Every parallel gradient is checked against the serial one (1e-12) first.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from collections.abc import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout of micrograd_batch, installed or not

from micrograd_batch import MLP, SGD, batch_mean, compile_loss, fit  # noqa: E402
from micrograd_batch.data import make_moons  # noqa: E402
from micrograd_batch._checks import gc_paused  # noqa: E402
from micrograd_batch.losses import hinge  # noqa: E402
from micrograd_batch.parallel import DataParallel, job_of  # noqa: E402

STARTUP = """
import multiprocessing, sys, time
from concurrent.futures import ProcessPoolExecutor
t0 = time.perf_counter()
from micrograd_batch import MLP, DataParallel, hinge, make_moons
model, batch = MLP(2, [16, 16, 1], seed=1), make_moons(2, noise=0.1, seed=0)
times = []
for _ in range(2):
    t = time.perf_counter()
    context = multiprocessing.get_context(sys.argv[1])
    with ProcessPoolExecutor(2, mp_context=context) as pool, DataParallel(model, hinge, pool) as parallel:
        parallel.grad(batch)  # both workers started, each has unpickled the model
    times.append(time.perf_counter() - t)
print(*times)
"""


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(step: Callable[[], object]) -> float:
    """Seconds one call of `step` takes."""
    t = time.perf_counter()
    step()
    return time.perf_counter() - t


def serial_grads(model: MLP, batch: list) -> list[float]:
    """The serial batch gradient, as `fit` computes it."""
    model.zero_grad()
    with gc_paused():
        batch_mean([hinge(model(x), y) for x, y in batch]).backward()
    return [p.grad for p in model.parameters()]


def parallel_grads(model: MLP, parallel: DataParallel, batch: list) -> list[float]:
    """The same gradient from `parallel`."""
    model.zero_grad()
    parallel.grad(batch)
    return [p.grad for p in model.parameters()]


def compare(variants: dict[str, Callable[[], list[float]]], repeats: int) -> dict[str, float]:
    """Check every variant's gradient against the first one's, then time them interleaved."""
    reference = None
    for name, step in variants.items():
        grads = step()
        reference = reference or grads
        worst = max(abs(a - b) for a, b in zip(grads, reference, strict=True))
        if not worst <= 1e-12:
            sys.exit(f"{name}: gradients differ from serial ones by {worst:.3g}")
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, step in variants.items():
            times[name].append(timed(step))
    return {name: statistics.median(t) for name, t in times.items()}


def startup(repeats: int = 3) -> None:
    """Pool start-up to the first gradient, in fresh interpreters: forkserver against spawn."""
    print(f"Pool start-up, 2 workers, to the first gradient (load before: {load()}):\n")
    print("| start method | first pool in a process, s | second pool, s |")
    print("|---|---:|---:|")
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    results: dict[str, list[list[float]]] = {"forkserver": [], "spawn": []}
    for _ in range(repeats):
        for method in results:
            out = subprocess.run([sys.executable, "-c", STARTUP, method], env=env, check=True,
                                 capture_output=True, text=True).stdout
            results[method].append([float(t) for t in out.split()])
    for method, runs in results.items():
        first, second = (statistics.median(run[k] for run in runs) for k in (0, 1))
        print(f"| {method} | {first:.3f} | {second:.3f} |")


def overhead(m: int = 256, repeats: int = 15) -> None:
    """Batch 256: serial against a local 2-process pool and a 2-process Dask LocalCluster, and
    what the job a worker keeps costs to send (once per structure)."""
    model, batch = MLP(2, [16, 16, 1], seed=1), make_moons(m, noise=0.1, seed=m)
    job = job_of((compile_loss(model, hinge), batch))  # what a worker is sent once per structure
    unpickle = statistics.median(timed(lambda: pickle.loads(job)) for _ in range(50))
    dumps = statistics.median(timed(lambda: pickle.dumps((model, hinge))) for _ in range(50))
    print(f"Batch {m} (load before: {load()}). The pickled compiled loss + training set: {len(job):,} bytes, "
          f"pickled in {dumps * 1e3:.2f} ms, unpickled in {unpickle * 1e3:.2f} ms.\n")
    variants = {"serial": lambda: serial_grads(model, batch)}
    with DataParallel(model, hinge, 2) as local:
        variants["local pool, 2 processes"] = lambda: parallel_grads(model, local, batch)
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            print("(distributed is not installed: no Dask row)")
            medians = compare(variants, repeats)
        else:
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                    Client(cluster) as client, DataParallel(model, hinge, client.get_executor()) as dask:
                variants["Dask LocalCluster, 2 processes"] = lambda: parallel_grads(model, dask, batch)
                medians = compare(variants, repeats)
    print("| batch 256 gradient | ms | vs serial |")
    print("|---|---:|---:|")
    for name, seconds in medians.items():
        print(f"| {name} | {seconds * 1e3:.1f} | {medians['serial'] / seconds:.2f}x |")


def speedup(sizes: tuple[int, ...] = (1024, 4096), repeats: int = 5) -> None:
    """2 local worker processes against serial, at large batches."""
    print(f"2 worker processes against serial, gradient of one batch (load before: {load()}):\n")
    print("| batch | serial s | 2 workers s | speed-up |")
    print("|---:|---:|---:|---:|")
    model = MLP(2, [16, 16, 1], seed=1)
    with DataParallel(model, hinge, 2) as parallel:
        for m in sizes:
            batch = make_moons(m, noise=0.1, seed=m)
            medians = compare({"serial": lambda batch=batch: serial_grads(model, batch),
                               "parallel": lambda batch=batch: parallel_grads(model, parallel, batch)}, repeats)
            s, p = medians["serial"], medians["parallel"]
            print(f"| {m:,} | {s:.3f} | {p:.3f} | {s / p:.2f}x |", flush=True)
    print(f"\n(load after: {load()})")


def fit_run(batch_size: int, workers: object, examples: list) -> tuple[float, float, list[float]]:
    """Wall and CPU seconds (this process) of one fit of 3 epochs, pool start-up included, and the
    parameters it ends with."""
    model = MLP(2, [16, 16, 1], seed=1)
    wall, cpu = time.perf_counter(), time.process_time()
    fit(model, examples, hinge, SGD(model.parameters(), lr=0.05), epochs=3, batch_size=batch_size,
        workers=workers)  # type: ignore[arg-type]
    return time.perf_counter() - wall, time.process_time() - cpu, [p.data for p in model.parameters()]


def fit_speed(sizes: tuple[int, ...] = (1024, 256), repeats: int = 5) -> None:
    """Issue 22's goal: fit(workers=2) against fit(workers=1) on 4,096 moons, MLP 2-16-16-1, hinge,
    SGD, 3 epochs (each fit starts its pool: one process, the parent computing the other chunk); and
    with a running 1-process pool and a running Dask LocalCluster of 1 worker process, each passed
    as `workers` (their start-up not counted; the parent computes one of the 2 chunks, as with
    workers=2)."""
    examples = make_moons(4096, noise=0.1, seed=0)
    print(f"fit, 4,096 moons, MLP(2, [16, 16, 1]), hinge, SGD lr 0.05, 3 epochs; {os.cpu_count()} cores; "
          f"medians of {repeats} interleaved runs (load before: {load()}):\n")
    print("| batch | workers=1 s | workers=2 s | 2 vs 1 | running pool of 1 s | pool vs 1 | Dask, 1 worker s "
          "| Dask vs 1 |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    context = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods()
                                          else "spawn")
    if context.get_start_method() == "forkserver":  # as DataParallel does: workers start with the library imported
        context.set_forkserver_preload(["micrograd_batch.parallel"])
    pool = ProcessPoolExecutor(1, mp_context=context)
    for future in [pool.submit(time.sleep, 0.2)]:  # its process started
        future.result()
    try:
        from distributed import Client, LocalCluster
        cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        dask: object = client.get_executor()
    except ImportError:
        dask = None
    for m in sizes:
        variants = {"1": 1, "2": 2, "pool": pool, **({"dask": dask} if dask is not None else {})}
        times: dict[str, list[float]] = {name: [] for name in variants}
        reference = None
        for _ in range(repeats):
            for name, workers in variants.items():
                wall, _, params = fit_run(m, workers, examples)
                reference = reference or params
                worst = max(abs(a - b) for a, b in zip(params, reference, strict=True))
                if not worst <= 1e-12:
                    sys.exit(f"workers={name}: parameters differ from serial ones by {worst:.3g}")
                times[name].append(wall)
        med = {name: statistics.median(t) for name, t in times.items()}
        dask_cells = f"{med['dask']:.3f} | {med['1'] / med['dask']:.2f}x" if "dask" in med else "- | -"
        print(f"| {m:,} | {med['1']:.3f} | {med['2']:.3f} | {med['1'] / med['2']:.2f}x | {med['pool']:.3f} | "
              f"{med['1'] / med['pool']:.2f}x | {dask_cells} |", flush=True)
    pool.shutdown()
    if dask is not None:
        client.close()
        cluster.close()
    print(f"\n(load after: {load()})")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("startup", "overhead", "speedup", "fit"):
        sys.exit(__doc__)
    {"startup": startup, "overhead": overhead, "speedup": speedup, "fit": fit_speed}[sys.argv[1]]()
