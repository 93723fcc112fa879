#!/usr/bin/env python3
"""The compiled loss against fit's graph step and two hand-written pure-Python references (run by hand).

    python3 benchmarks/compiled.py            # batch 16 .. 4,096, 7 interleaved repeats (a few minutes)
    python3 benchmarks/compiled.py --quick    # batch 16, 64 and 256, 5 repeats
    python3 benchmarks/compiled.py --consecutive   # each sample: 4,096/batch steps in a row (a minute)

The workload of benchmarks/bench.py: two moons, MLP(2, [16, 16, 1]) with ReLU, the hinge loss
plus 1e-4·Σp², one SGD step (lr 0.05) per batch. Six ways to take that step:

    graph        fit's step on the graph path (per-example graphs, batch_mean, backward; gc paused)
    graph/64     the same, the batch backpropagated in micro-batches of 64 (weight k/m each)
    compiled     the same step with `compile_loss(model, hinge).grad`: fit's default now
    compiled .grad   `compiled.grad(batch)` alone: no l2 term, no optimiser step (what is per example)
    listcomp     hand-written pure Python: lists of weights, list comprehensions, no autograd objects
    straight     hand-written pure Python generated straight-line code: a local variable per weight,
                 no checks (the pure-Python limit)

The two hand-written ones backpropagate every example, also those whose hinge loss is 0 (whose
δ is 0), as the graph and the compiled code do: the same arithmetic, so the times compare.

All of them start from the same weights; the script checks that their losses and gradients agree
(the compiled step bit for bit with the graph step, the others to 1e-12 relative) before timing.
Each repeat runs every variant once, in turn (interleaved, so all see the same machine load);
the tables give the median time per example. A sample is one step; with `--consecutive` it is
4,096/batch steps of the same variant in a row, as a training loop takes them. One step alone
starts with caches cold from the other variants (its code, the 337 parameters): at batch 16
that costs every variant, the straight-line code too, a few µs per example more. Times are
this process's CPU time (`time.process_time`) unless `--wall`: on a machine shared with other busy processes, a step
longer than a scheduler time slice is always interrupted, so wall-clock time grows with the
batch for every variant (2x from batch 256 to 1,024 at load 4 on 2 cores, even for the
straight-line code) although the work per example does not. Compare ratios within one run,
and read the load average printed with them.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout

from micrograd_batch import MLP, SGD, batch_mean, compile_loss, hinge, make_moons  # noqa: E402
from micrograd_batch._checks import gc_paused  # noqa: E402
from micrograd_batch.losses import l2_penalty  # noqa: E402
from micrograd_batch.train import _step, batch_gradient  # noqa: E402

SIZES = [16, 64, 256, 1024, 4096]
ALPHA, LR, MICRO = 1e-4, 0.05, 64
Weights = list[list[list[float]]]  # layer -> neuron -> [w_1, ..., w_n, b]


# ---- the library's steps ---------------------------------------------------------------------

def step_with(gradient: Callable[[list], float], model: MLP, optimizer: SGD, batch: list) -> float:
    """fit's step itself (train._step): l2's gradient 2αp (no node), then the batch's (from
    `gradient`), then the optimiser step."""
    return _step(gradient, batch, optimizer, model.parameters(), ALPHA)


def graph_step(model: MLP, optimizer: SGD, batch: list) -> float:
    return step_with(lambda b: batch_gradient(model, b, hinge), model, optimizer, batch)


def micro_batched_step(model: MLP, optimizer: SGD, batch: list) -> float:
    """The graph step with at most MICRO examples' graphs alive at a time: each chunk of k
    examples is backpropagated from batch_mean with seed k/m, so the grads sum to the mean."""
    optimizer.zero_grad()
    m = len(batch)
    with gc_paused():
        penalty = l2_penalty(model.parameters(), ALPHA)
        penalty.backward()
        total = penalty.data
        for start in range(0, m, MICRO):
            chunk = batch[start:start + MICRO]
            loss = batch_mean([hinge(model(x), y) for x, y in chunk])
            loss.backward(len(chunk) / m)
            total += loss.data * len(chunk) / m
    optimizer.step()
    return total


def compiled_step_for(model: MLP) -> Callable[[MLP, SGD, list], float]:
    compiled = compile_loss(model, hinge)

    def compiled_step(model: MLP, optimizer: SGD, batch: list) -> float:
        return step_with(compiled.grad, model, optimizer, batch)

    return compiled_step


# ---- hand-written pure Python ------------------------------------------------------------------

def weights_of(model: MLP) -> Weights:
    return [[[w.data for w in n.w] + [n.b.data] for n in layer.neurons] for layer in model.layers]


def listcomp_grads(weights: Weights, batch: list) -> tuple[float, Weights]:
    """Mean hinge loss + α·Σp² and its gradient, with lists and list comprehensions."""
    m = len(batch)
    grads = [[[0.0] * len(row) for row in layer] for layer in weights]
    last = len(weights) - 1
    loss_sum = 0.0
    for x, y in batch:
        activations, pre = [x], []
        a = x
        for li, layer in enumerate(weights):
            z = [row[-1] + sum([w * ai for w, ai in zip(row, a)]) for row in layer]  # noqa: B905 (row ends with b)
            pre.append(z)
            a = [zi if zi > 0.0 else 0.0 for zi in z] if li < last else z
            activations.append(a)
        margin = 1.0 - y * a[0]
        loss_sum += margin if margin > 0.0 else 0.0
        delta = [-y / m if margin > 0.0 else 0.0]  # backpropagated even when 0, as the others do
        for li in range(last, -1, -1):
            a_in = activations[li]
            layer_grads = grads[li]
            for j, d in enumerate(delta):
                row = layer_grads[j]
                layer_grads[j] = [g + d * ai for g, ai in zip(row, a_in)] + [row[-1] + d]  # noqa: B905
            if li:
                back = [sum([weights[li][j][k] * d for j, d in enumerate(delta)]) for k in range(len(a_in))]
                delta = [b if z > 0.0 else 0.0 for b, z in zip(back, pre[li - 1], strict=True)]
    penalty = ALPHA * sum(w * w for layer in weights for row in layer for w in row)
    grads = [[[g + 2.0 * ALPHA * w for g, w in zip(grow, wrow, strict=True)]
              for grow, wrow in zip(glayer, wlayer, strict=True)]
             for glayer, wlayer in zip(grads, weights, strict=True)]
    return loss_sum / m + penalty, grads


def sgd(weights: Weights, grads: Weights) -> Weights:
    return [[[w - LR * g for w, g in zip(wrow, grow, strict=True)] for wrow, grow in zip(wl, gl, strict=True)]
            for wl, gl in zip(weights, grads, strict=True)]


def straight_line_source(sizes: list[int]) -> str:
    """Straight-line code for this MLP and the hinge loss: a local variable per weight."""
    names = [[[f"w{l}_{j}_{k}" for k in range(sizes[l] + 1)] for j in range(sizes[l + 1])]
             for l in range(len(sizes) - 1)]
    flat = [n for layer in names for row in layer for n in row]
    lines = ["def run(batch, weights):", f"    {', '.join(flat)}, = weights",
             f"    {', '.join('g' + n for n in flat)}, = [0.0] * {len(flat)}",
             "    inv_m = 1.0 / len(batch)", "    loss_sum = 0.0", "    for (a0_0, a0_1), y in batch:"]
    last = len(sizes) - 2
    for l, layer in enumerate(names):
        for j, row in enumerate(layer):
            terms = " + ".join(f"{w} * a{l}_{k}" for k, w in enumerate(row[:-1]))
            lines.append(f"        z{l + 1}_{j} = {row[-1]} + {terms}")
            if l < last:
                lines.append(f"        a{l + 1}_{j} = z{l + 1}_{j} if z{l + 1}_{j} > 0.0 else 0.0")
    lines += [f"        margin = 1.0 - y * z{last + 1}_0", "        if margin > 0.0:",
              "            loss_sum += margin", f"            d{last + 1}_0 = -y * inv_m",
              "        else:  # backpropagated even when 0, as the other variants do",
              f"            d{last + 1}_0 = 0.0"]
    for l in range(last, -1, -1):
        for j, row in enumerate(names[l]):
            for k, w in enumerate(row[:-1]):
                lines.append(f"        g{w} += d{l + 1}_{j} * a{l}_{k}")
            lines.append(f"        g{row[-1]} += d{l + 1}_{j}")
        if l:
            for k in range(sizes[l]):
                back = " + ".join(f"{names[l][j][k]} * d{l + 1}_{j}" for j in range(sizes[l + 1]))
                lines.append(f"        d{l}_{k} = ({back}) if z{l}_{k} > 0.0 else 0.0")
    lines.append(f"    return loss_sum * inv_m, [{', '.join('g' + n for n in flat)}]")
    return "\n".join(lines) + "\n"


def straight_step_for(sizes: list[int]) -> Callable[[list[float], list], tuple[float, list[float]]]:
    namespace: dict = {}
    exec(straight_line_source(sizes), namespace)
    run = namespace["run"]

    def straight_step(flat: list[float], batch: list) -> tuple[float, list[float]]:
        loss, grads = run(batch, flat)
        loss += ALPHA * sum([w * w for w in flat])
        grads = [g + 2.0 * ALPHA * w for g, w in zip(grads, flat, strict=True)]
        return loss, [w - LR * g for w, g in zip(flat, grads, strict=True)]

    return straight_step


# ---- checks and timing -------------------------------------------------------------------------

def check_agreement(batch: list) -> None:
    """Every variant's loss and gradient on one step from the same weights (exit if they differ)."""
    def fresh() -> tuple[MLP, SGD]:
        model = MLP(2, [16, 16, 1], seed=1)
        return model, SGD(model.parameters(), lr=LR)

    (a, oa), (b, ob), (c, oc) = fresh(), fresh(), fresh()
    loss = graph_step(a, oa, batch)
    want = [p.data for p in a.parameters()]
    if compiled_step_for(b)(b, ob, batch) != loss or [p.data for p in b.parameters()] != want:
        sys.exit("the compiled step differs from the graph step")
    micro = micro_batched_step(c, oc, batch)
    ref_loss, ref_grads = listcomp_grads(weights_of(fresh()[0]), batch)
    flat_grads = [g for layer in ref_grads for row in layer for g in row]
    fresh_model = fresh()[0]
    graph_grads = [(w0 - w1) / LR for w0, w1 in zip([p.data for p in fresh_model.parameters()], want, strict=True)]
    straight_loss, straight_new = straight_step_for([2, 16, 16, 1])([p.data for p in fresh_model.parameters()], batch)
    start = [p.data for p in fresh_model.parameters()]
    straight_grads = [(w0 - w1) / LR for w0, w1 in zip(start, straight_new, strict=True)]
    for name, value, reference in [("graph/64", [micro], [loss]), ("listcomp", [ref_loss], [loss]),
                                   ("straight", [straight_loss], [loss]), ("listcomp grads", flat_grads, graph_grads),
                                   ("straight grads", straight_grads, graph_grads)]:
        worst = max(abs(v - r) / max(abs(r), 1e-3) for v, r in zip(value, reference, strict=True))
        if not worst <= 1e-9:  # gradients recovered from an SGD step lose a few digits
            sys.exit(f"{name} differs from the graph step by {worst:.2g} (relative)")


def fixed_costs(model: MLP, compiled: object, example: tuple, repeats: int, clock: Callable[[], float]) -> None:
    """What a compiled step pays once per batch, whatever its size (median µs)."""
    optimizer = SGD(model.parameters(), lr=LR)
    parts: dict[str, Callable[[], object]] = {
        "per-call check: every module's class and attributes compared with the last inspected":
            lambda: compiled._current(),  # type: ignore[attr-defined]
        "l2 node (l2_penalty over 337 parameters; fit no longer builds it)":
            lambda: l2_penalty(model.parameters(), ALPHA).backward(),
        "l2 without a node, as fit adds it (p.grad += 2αp over 337 parameters)":
            lambda: [setattr(p, "grad", p.grad + 2.0 * ALPHA * p.data) for p in model.parameters()],
        "optimiser step (SGD over 337 Values)": optimizer.step,
    }
    print("\nFixed costs of a compiled step (paid once per batch):\n")
    print("| part | µs |")
    print("|---|---:|")
    for name, part in parts.items():
        times = []
        for _ in range(repeats):
            t = clock()
            part()
            times.append(clock() - t)
        print(f"| {name} | {statistics.median(times) * 1e6:.0f} |")


def ratio_cells(t: dict[str, float], ratios: bool) -> str:
    """The three ratios of a table row (empty when a variant is missing)."""
    if not ratios:
        return ""
    return (f" {t['graph'] / t['compiled']:.1f}x | {t['compiled'] / t['listcomp']:.2f} "
            f"| {t['compiled'] / t['straight']:.2f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 16, 64 and 256; 5 repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--variants", default=None,
                        help="comma-separated subset (compiled,straight,...); ratios need graph, compiled, "
                             "listcomp and straight")
    parser.add_argument("--consecutive", action="store_true",
                        help="time each variant over 4,096/batch steps in a row (as a training loop runs "
                             "them) instead of one step: warm caches, every sample the same examples")
    parser.add_argument("--wall", action="store_true",
                        help="time by the wall clock instead of this process's CPU time")
    args = parser.parse_args(argv)
    clock = time.perf_counter if args.wall else time.process_time
    sizes = [16, 64, 256] if args.quick else SIZES
    repeats = args.repeats or (5 if args.quick else 7)
    data = make_moons(max(sizes), noise=0.1, seed=0)
    check_agreement(data[:64])
    load_before = os.getloadavg()
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average before: {', '.join(f'{x:.2f}' for x in load_before)}; "
          f"{'wall-clock' if args.wall else 'CPU'} time; "
          f"{'consecutive steps per sample' if args.consecutive else 'one step per sample'}\n")
    names = ["graph", "graph/64", "compiled", "compiled .grad", "listcomp", "straight"]
    if args.variants:
        names = [n for n in names if n in args.variants.split(",")]
    ratios = all(n in names for n in ("graph", "compiled", "listcomp", "straight"))
    ratio_header = " graph / compiled | compiled / listcomp | compiled / straight |" if ratios else ""
    print("| batch | " + " | ".join(f"{n} µs/ex" for n in names) + " |" + ratio_header)
    print("|---:|" + "---:|" * (len(names) + (3 if ratios else 0)))
    per_example: dict[str, dict[int, float]] = {n: {} for n in names}
    best: dict[str, dict[int, float]] = {n: {} for n in names}
    for m in sizes:
        batch = data[:m]
        models = {n: MLP(2, [16, 16, 1], seed=1) for n in ("graph", "graph/64", "compiled", "compiled .grad")}
        optimizers = {n: SGD(model.parameters(), lr=LR) for n, model in models.items()}
        compiled_step = compiled_step_for(models["compiled"])
        steps: dict[str, Callable[[], object]] = {
            "graph": lambda: graph_step(models["graph"], optimizers["graph"], batch),
            "graph/64": lambda: micro_batched_step(models["graph/64"], optimizers["graph/64"], batch),
            "compiled": lambda: compiled_step(models["compiled"], optimizers["compiled"], batch),
            "compiled .grad": lambda: gradient_only.grad(batch),  # no l2, no optimiser: the per-example part
        }
        gradient_only = compile_loss(models["compiled .grad"], hinge)
        gradient_only.grad(batch)
        state = {"listcomp": weights_of(MLP(2, [16, 16, 1], seed=1)),
                 "straight": [p.data for p in MLP(2, [16, 16, 1], seed=1).parameters()]}
        straight = straight_step_for([2, 16, 16, 1])

        def listcomp() -> None:
            state["listcomp"] = sgd(state["listcomp"], listcomp_grads(state["listcomp"], batch)[1])

        def straight_line() -> None:
            state["straight"] = straight(state["straight"], batch)[1]

        steps["listcomp"], steps["straight"] = listcomp, straight_line
        steps["compiled"]()  # the first call traces and compiles: not timed (reported below)
        times: dict[str, list[float]] = {n: [] for n in names}
        calls = max(sizes) // m if args.consecutive else 1  # then every sample is max(sizes) examples
        for _ in range(repeats):
            for n in names:
                t = clock()
                for _ in range(calls):
                    steps[n]()
                times[n].append((clock() - t) / calls)
        medians = {n: statistics.median(times[n]) / m * 1e6 for n in names}
        for n in names:
            per_example[n][m] = medians[n]
            best[n][m] = min(times[n]) / m * 1e6
        print(f"| {m} | " + " | ".join(f"{medians[n]:.1f}" for n in names) + " |" + ratio_cells(medians, ratios),
              flush=True)
    print("\nBest of the repeats (least disturbed by other processes), µs per example:\n")
    print("| batch | " + " | ".join(names) + " |" + ratio_header)
    print("|---:|" + "---:|" * (len(names) + (3 if ratios else 0)))
    for m in sizes:
        b = {n: best[n][m] for n in names}
        print(f"| {m} | " + " | ".join(f"{b[n]:.1f}" for n in names) + " |" + ratio_cells(b, ratios))
    print("\nPer-example cost, max/min over the batch sizes (target: flat within 20%, i.e. <= 1.20):\n")
    print("| variant | median | best |")
    print("|---|---:|---:|")
    for n in names:
        med, top = per_example[n].values(), best[n].values()
        print(f"| {n} | {max(med) / min(med):.2f} | {max(top) / min(top):.2f} |")
    model = MLP(2, [16, 16, 1], seed=1)
    t = time.perf_counter()
    compiled = compile_loss(model, hinge)
    compiled.grad(data[:64])
    print(f"\nFirst call (inspect, generate, exec, run batch 64): {(time.perf_counter() - t) * 1e3:.1f} ms")
    fixed_costs(model, compiled, data[0], repeats=max(repeats, 21), clock=clock)
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
