"""Rendered size of batch pictures (points), constants shown and hidden: the table in
docs/rendering.md. Run from the repository root: python benchmarks/picture_sizes.py"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from micrograd_batch import MLP, batch_mean  # noqa: E402
from micrograd_batch.engine import topological_order
from micrograd_batch.viz import available_renderer, draw_dot, svg_from_dot  # noqa: E402


def size(svg: str) -> str:
    """'width x height' of a rendered SVG, in points."""
    return "{} x {}".format(*re.search(r'width="(\d+)pt" height="(\d+)pt"', svg).groups())  # type: ignore[union-attr]


def main() -> None:
    print(f"renderer: {available_renderer()}")
    print("| net | examples | Values | default | `hide_constants=True` |")
    print("|---|---|---|---|---|")
    for sizes in ([2, 2, 1], [3, 4, 4, 1]):
        for m in (2, 3, 4):
            model = MLP(sizes[0], sizes[1:], seed=0)
            xs = [[0.1 * (i + 1) * (j + 1) - 0.3 for j in range(sizes[0])] for i in range(m)]
            loss = batch_mean([(model(x) - 0.5) ** 2 for x in xs])
            loss.backward()
            shown = [size(svg_from_dot(draw_dot(loss, hide_constants=h).source)) for h in (False, True)]
            net = "-".join(map(str, sizes))
            print(f"| {net} | {m} | {len(topological_order(loss))} | {shown[0]} | {shown[1]} |")


if __name__ == "__main__":
    main()
