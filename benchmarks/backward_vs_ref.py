"""Backward time of this working tree against a git ref, side by side in one run.

    python benchmarks/backward_vs_ref.py [REF]      (REF defaults to main)

Builds a 2-16-16-1 ReLU MLP's hinge-loss graph for a batch of 64 two-moons examples and times
`loss.backward()` (the graph built once, the pass repeated), plus the forward pass that builds
the graph. Each version runs in its own process, alternately, seven times; the best of all its
40 timings counts (the minimum is the time least disturbed by other load).
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TIMER = r"""
import time
from micrograd_batch import MLP, batch_mean, hinge, make_moons
model = MLP(2, [16, 16, 1], seed=0)
data = make_moons(64, noise=0.1, seed=0)
def forward():
    return batch_mean([hinge(model(x), y) for x, y in data])
loss = forward()
best_b = best_f = float("inf")
for _ in range(40):
    t = time.perf_counter()
    loss.backward()
    best_b = min(best_b, time.perf_counter() - t)
    t = time.perf_counter()
    forward()
    best_f = min(best_f, time.perf_counter() - t)
print(best_b, best_f)
"""


def timed(path: Path) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", TIMER], env={"PYTHONPATH": str(path)},
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def main(ref: str = "main") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "micrograd_batch"],
                                 capture_output=True, check=True).stdout
        tarfile.open(fileobj=BytesIO(archive)).extractall(tmp)
        best = {"ref": [float("inf")] * 2, "tree": [float("inf")] * 2}
        for _ in range(7):
            for name, path in (("ref", Path(tmp)), ("tree", ROOT)):
                best[name] = [min(a, b) for a, b in zip(best[name], timed(path), strict=True)]
    for i, what in enumerate(("backward", "forward")):
        ref_t, tree_t = best["ref"][i], best["tree"][i]
        print(f"{what:8s} {ref}: {ref_t * 1e3:7.3f} ms   this tree: {tree_t * 1e3:7.3f} ms   "
              f"ratio tree/ref {tree_t / ref_t:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
